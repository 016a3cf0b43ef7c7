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


async def changed_one(session: AsyncSession, stmt: Any, params: Any = None) -> bool:
    """Run a conditional UPDATE (or DELETE) and say whether it changed exactly one row.

    This is how every race is decided: the WHERE clause states what must still be
    true, the database applies it atomically, and the loser sees ``False``.
    """
    result = await session.execute(stmt, params)
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def changed_count(session: AsyncSession, stmt: Any, params: Any = None) -> int:
    """Run an UPDATE or DELETE and return how many rows it changed."""
    result = await session.execute(stmt, params)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
