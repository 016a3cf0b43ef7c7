"""Alembic migrations: up → down → up on SQLite and PostgreSQL, and no drift from the models."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from storage import demo, schema
from storage.engine import Database


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_up_down_up(database_url: str) -> None:
    db = Database(database_url)
    try:
        await schema.upgrade(db)
        assert await schema.current(db) is not None
        assert {"users", "conversations", "outbox", "role_applications"} <= await _tables(db)
        async with db.transaction() as session:
            await demo.load(session)  # the schema really holds data
        await schema.downgrade(db, "base")
        assert await _tables(db) <= {"alembic_version"}
        await schema.upgrade(db)
        async with db.transaction() as session:
            await demo.load(session)
            assert not await demo.is_empty(session)
    finally:
        await db.dispose()


async def test_models_and_migrations_agree(database_url: str) -> None:
    """A model change without a migration fails here, on both databases."""
    db = Database(database_url)
    try:
        await schema.upgrade(db)

        def diff(conn: Any) -> list[Any]:
            return compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)

        async with db.engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await db.dispose()
