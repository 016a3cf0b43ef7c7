"""Idempotency: remember which platform updates were handled."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.dialect import upsert_insert
from storage.models import ProcessedUpdate, utcnow


async def claim(session: AsyncSession, key: str) -> bool:
    """Mark an update handled in the current transaction; False if it already was.

    The row commits together with the update's effects, so a crash before the
    commit leaves the update unclaimed and a redelivery is handled in full.
    """
    result = await session.execute(
        upsert_insert(session, ProcessedUpdate)
        .values(key=key, processed_at=utcnow())
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def prune(session: AsyncSession, older_than: datetime) -> int:
    result = await session.execute(
        delete(ProcessedUpdate).where(col(ProcessedUpdate.processed_at) < older_than)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
