"""Conversation state: one row per person per chat, the flow state as JSON."""

from __future__ import annotations

import json
from typing import cast

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.data import ConversationState
from storage.dialect import changed_one, is_postgres
from storage.models import Conversation, utcnow

# Prebuilt Core statements: these run on every message (see storage/updates.py).
_T = cast(Table, Conversation.__table__)  # type: ignore[attr-defined]
_LOAD = select(_T.c.flow, _T.c.step, _T.c.data, _T.c.version).where(_T.c.key == bindparam("key"))
_LOAD_LOCKED = _LOAD.with_for_update()
_INSERT = insert(_T)
_UPDATE = (
    update(_T)
    .where(_T.c.key == bindparam("k"), _T.c.version == bindparam("old_version"))
    .values(
        flow=bindparam("flow"),
        step=bindparam("step"),
        data=bindparam("data"),
        version=bindparam("new_version"),
        updated_at=bindparam("at"),
    )
)


class ConcurrentUpdate(RuntimeError):
    """Another worker changed this conversation since it was read."""


async def load(session: AsyncSession, key: str) -> ConversationState:
    """Read the state, locking the row on PostgreSQL so two workers serialise per chat."""
    stmt = _LOAD_LOCKED if is_postgres(session) else _LOAD
    row = (await session.execute(stmt, {"key": key})).one_or_none()
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
        values = {"key": old.key, "user_id": user_id, "flow": flow, "step": step, "data": raw}
        await session.execute(_INSERT, {**values, "version": 1, "updated_at": utcnow()})
        return
    changed = await changed_one(
        session,
        _UPDATE,
        {
            "k": old.key,
            "old_version": old.version,
            "flow": flow,
            "step": step,
            "data": raw,
            "new_version": old.version + 1,
            "at": utcnow(),
        },
    )
    if not changed:
        raise ConcurrentUpdate(old.key)


async def clear_for_user(session: AsyncSession, user_id: int) -> None:
    await session.execute(delete(Conversation).where(col(Conversation.user_id) == user_id))


async def delete_key(session: AsyncSession, key: str) -> None:
    await session.execute(delete(Conversation).where(col(Conversation.key) == key))
