"""Conversation state: one row per person per chat, the flow state as JSON."""

from __future__ import annotations

import json

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.data import ConversationState
from storage.dialect import is_postgres
from storage.models import Conversation, utcnow


class ConcurrentUpdate(RuntimeError):
    """Another worker changed this conversation since it was read."""


async def load(session: AsyncSession, key: str) -> ConversationState:
    """Read the state, locking the row on PostgreSQL so two workers serialise per chat."""
    stmt = select(Conversation).where(col(Conversation.key) == key)
    if is_postgres(session):
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).scalar_one_or_none()
    if row is None:
        return ConversationState(key=key, flow=None, step=None, data={}, version=0)
    return ConversationState(
        key=key, flow=row.flow, step=row.step, data=json.loads(row.data), version=row.version
    )


async def save(
    session: AsyncSession,
    *,
    old: ConversationState,
    flow: str | None,
    step: str | None,
    data: dict[str, object],
    user_id: int | None,
) -> None:
    """Write the new state if it changed; the version check catches lost updates.

    JSON encoding here is the gate that keeps anything unserialisable out of state.
    """
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    if (flow, step) == (old.flow, old.step) and data == old.data and old.version > 0:
        return
    if old.version == 0:
        if flow is None and not data:
            return  # nothing to remember
        session.add(Conversation(key=old.key, user_id=user_id, flow=flow, step=step, data=raw, version=1))
        await session.flush()
        return
    result = await session.execute(
        update(Conversation)
        .where(col(Conversation.key) == old.key, col(Conversation.version) == old.version)
        .values(flow=flow, step=step, data=raw, version=old.version + 1, updated_at=utcnow())
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ConcurrentUpdate(old.key)


async def clear_for_user(session: AsyncSession, user_id: int) -> None:
    await session.execute(delete(Conversation).where(col(Conversation.user_id) == user_id))


async def delete_key(session: AsyncSession, key: str) -> None:
    await session.execute(delete(Conversation).where(col(Conversation.key) == key))
