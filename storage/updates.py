"""Idempotency: remember which platform updates were handled."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.dialect import changed_count, changed_one, is_postgres
from storage.models import OutboxMessage, ProcessedUpdate, utcnow

# Built once: this runs for every update, and a prebuilt Core statement skips
# SQLAlchemy's per-call construction and cache-key work.
_TABLE = cast(Table, ProcessedUpdate.__table__)  # type: ignore[attr-defined]
_VALUES: dict[str, Any] = {
    "key": bindparam("key"),
    "processed_at": bindparam("at"),
    "user_id": bindparam("user_id"),
    "replies": bindparam("replies"),
}
_CLAIM = {
    "sqlite": sqlite_insert(_TABLE).values(_VALUES).on_conflict_do_nothing(index_elements=["key"]),
    "postgresql": pg_insert(_TABLE).values(_VALUES).on_conflict_do_nothing(index_elements=["key"]),
}


async def claim(
    session: AsyncSession,
    key: str,
    *,
    user_id: int | None = None,
    replies: Sequence[dict[str, Any]] = (),
) -> bool:
    """Mark an update handled in the current transaction; False if it already was.

    The row commits together with the update's effects, so a crash before the
    commit leaves the update unclaimed and a redelivery is handled in full. On
    False the caller must roll back what it did for this update.
    """
    stmt = _CLAIM["postgresql" if is_postgres(session) else "sqlite"]
    raw = json.dumps(list(replies), ensure_ascii=False) if replies else None
    params = {"key": key, "at": utcnow(), "user_id": user_id, "replies": raw}
    return await changed_one(session, stmt, params)


async def stored_replies(session: AsyncSession, key: str) -> list[dict[str, Any]]:
    """The answer given to an update that was handled already (empty once expired)."""
    row = await session.get(ProcessedUpdate, key)
    if row is None or not row.replies:
        return []
    return list(json.loads(row.replies))


async def forget_replies(session: AsyncSession, user_id: int) -> None:
    await session.execute(
        update(ProcessedUpdate).where(col(ProcessedUpdate.user_id) == user_id).values(replies=None)
    )


async def forget_replies_for(session: AsyncSession, keys: Sequence[str]) -> None:
    if keys:
        await session.execute(
            update(ProcessedUpdate)
            .where(col(ProcessedUpdate.key).in_(list(keys)), col(ProcessedUpdate.replies).is_not(None))
            .values(replies=None)
        )


async def expire_replies(session: AsyncSession, older_than: datetime) -> None:
    await session.execute(
        update(ProcessedUpdate)
        .where(col(ProcessedUpdate.processed_at) < older_than, col(ProcessedUpdate.replies).is_not(None))
        .values(replies=None)
    )


async def prune(session: AsyncSession, older_than: datetime) -> int:
    return await changed_count(
        session, delete(ProcessedUpdate).where(col(ProcessedUpdate.processed_at) < older_than)
    )


async def replies_waiting(session: AsyncSession, *, channel: str, chat_id: str) -> bool:
    """Whether replies to this chat still wait in the outbox (pending, incl. in delivery).

    A channel that moved a chat's replies to the outbox sends that chat's later replies
    there too while this is true, so they cannot overtake the earlier ones.
    """
    stmt = (
        select(col(OutboxMessage.id))
        .where(
            col(OutboxMessage.status) == "pending",
            col(OutboxMessage.channel) == channel,
            col(OutboxMessage.chat_id) == chat_id,
            col(OutboxMessage.kind) == "reply",
        )
        .limit(1)
    )
    return (await session.execute(stmt)).first() is not None


async def forget_replies_mentioning(session: AsyncSession, needles: Sequence[str]) -> None:
    """/forget: answers kept for replay (anyone's: a driver's "claimed" answer shows the
    rider) that mention what identifies the person are dropped. Kept answers live an hour
    at most, so this scans few rows."""
    for needle in {n for n in needles if n and len(n) >= 2}:
        await session.execute(
            update(ProcessedUpdate)
            .where(
                col(ProcessedUpdate.replies).is_not(None),
                col(ProcessedUpdate.replies).contains(needle, autoescape=True),
            )
            .values(replies=None)
        )


async def keep_replies(session: AsyncSession, key: str, remaining: Sequence[dict[str, Any]]) -> None:
    """Some of an update's replies went out: keep only those still to deliver, so a
    redelivery of the update (after a crash) replays the rest, not what was sent."""
    raw = json.dumps(list(remaining), ensure_ascii=False) if remaining else None
    await session.execute(
        update(ProcessedUpdate)
        .where(col(ProcessedUpdate.key) == key, col(ProcessedUpdate.replies).is_not(None))
        .values(replies=raw)
    )
