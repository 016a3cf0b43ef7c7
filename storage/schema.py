"""Schema management: Alembic migrations for real databases, create_all for quick tests."""

from __future__ import annotations

import importlib
import pkgutil
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlmodel import SQLModel

import storage
from storage.engine import Database

# A PostgreSQL advisory lock key for migrations, apart from the leader's (storage.leader):
# "linlimg" in ASCII.
MIGRATE_LOCK_KEY = 0x6C696E6C696D67


def load_tables() -> None:
    """Import every storage module, so each feature's tables are on SQLModel.metadata.

    A feature's tables live beside its record operations (storage/<feature>.py);
    nothing needs to list them for migrations and create_all to see them.
    """
    for module in pkgutil.iter_modules(storage.__path__):
        if module.name != "migrations":
            importlib.import_module(f"storage.{module.name}")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("storage") / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def _run(db: Database, fn: Any, *args: str) -> None:
    """Run an Alembic command on the engine's own connection (async drivers included)."""

    load_tables()

    def run(connection: Any) -> None:
        config = alembic_config(db.url)
        config.attributes["connection"] = connection
        fn(config, *args)

    # BEGIN IMMEDIATE on SQLite and DDL in a transaction on both: all or nothing.
    async with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several processes starting at once (webhook workers) would otherwise all find
            # the schema behind and all migrate it. A transaction-level lock: the second
            # waits here, then reads the version the first committed and has nothing to do.
            # SQLite needs none: BEGIN IMMEDIATE already lets one writer in at a time.
            await connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATE_LOCK_KEY})
        await connection.run_sync(run)


async def upgrade(db: Database, revision: str = "head") -> None:
    await _run(db, command.upgrade, revision)


async def downgrade(db: Database, revision: str) -> None:
    await _run(db, command.downgrade, revision)


async def current(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def read(connection: Any) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with db.engine.connect() as connection:
        return await connection.run_sync(read)


async def create_schema(db: Database) -> None:
    """Tables straight from the models: for tests that are not about migrations."""
    load_tables()
    async with db.engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.create_all)
