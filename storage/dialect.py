"""The few places where SQLite and PostgreSQL need different SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession


def is_postgres(session: AsyncSession) -> bool:
    bind = session.bind
    return bind is not None and bind.dialect.name == "postgresql"


def upsert_insert(session: AsyncSession, table: Any) -> Any:
    """INSERT that supports ``.on_conflict_do_nothing`` on both databases."""
    return pg_insert(table) if is_postgres(session) else sqlite_insert(table)
