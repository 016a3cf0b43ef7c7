"""Idempotency: remember which platform updates were handled."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.dialect import is_postgres
from storage.models import ProcessedUpdate, utcnow

# Built once: this runs for every update, and a prebuilt Core statement skips
# SQLAlchemy's per-call construction and cache-key work.
_TABLE = cast(Table, ProcessedUpdate.__table__)  # type: ignore[attr-defined]
_VALUES: dict[str, Any] = {"key": bindparam("key"), "processed_at": bindparam("at")}
_CLAIM = {
    "sqlite": sqlite_insert(_TABLE).values(_VALUES).on_conflict_do_nothing(index_elements=["key"]),
    "postgresql": pg_insert(_TABLE).values(_VALUES).on_conflict_do_nothing(index_elements=["key"]),
}


async def claim(session: AsyncSession, key: str) -> bool:
    """Mark an update handled in the current transaction; False if it already was.

    The row commits together with the update's effects, so a crash before the
    commit leaves the update unclaimed and a redelivery is handled in full.
    """
    stmt = _CLAIM["postgresql" if is_postgres(session) else "sqlite"]
    result = await session.execute(stmt, {"key": key, "at": utcnow()})
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def prune(session: AsyncSession, older_than: datetime) -> int:
    result = await session.execute(
        delete(ProcessedUpdate).where(col(ProcessedUpdate.processed_at) < older_than)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
