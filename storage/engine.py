"""The async engine and sessions for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool

from storage import sqlite_inline

# The session-info flag storage.outbox sets (kept here: outbox imports this module).
QUEUED = "linli.outbox.queued"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


SQLITE_DRIVERS = ("inline", "aiosqlite")
SQLITE_DRIVER_ENV = "LINLI_SQLITE_DRIVER"
# How long a SQLite statement waits for another process's write lock, seconds.
SQLITE_BUSY_TIMEOUT = 30


def make_engine(url: str, *, echo: bool = False, sqlite_driver: str | None = None) -> AsyncEngine:
    """Create the engine. SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE.

    BEGIN IMMEDIATE takes the write lock when a transaction starts, so two
    transactions never deadlock upgrading a read lock (SQLite would fail one of
    them with "database is locked" instead of waiting).

    ``sqlite_driver`` (default: $LINLI_SQLITE_DRIVER, else "inline"): "inline" runs
    SQLite on the event loop (storage/sqlite_inline.py, the fast path), "aiosqlite"
    on aiosqlite's worker thread.
    """
    if not is_sqlite(url):
        return create_async_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True)

    driver = sqlite_driver or os.environ.get(SQLITE_DRIVER_ENV) or "inline"
    if driver not in SQLITE_DRIVERS:
        raise ValueError(f"{SQLITE_DRIVER_ENV} must be one of {', '.join(SQLITE_DRIVERS)}, got {driver!r}")
    path = make_url(url).database or ":memory:"
    options: dict[str, Any]
    if path == ":memory:":
        # One connection, or each would see its own empty database.
        options = {"poolclass": StaticPool}
    else:
        # One connection: SQLite allows one writer at a time anyway, and waiting in the
        # pool's FIFO queue is fair and immediate, where SQLite's busy handler sleeps
        # and retries (tens of milliseconds per collision under load).
        options = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60}
    if driver == "inline":
        options["async_creator"] = sqlite_inline.creator(path, timeout=SQLITE_BUSY_TIMEOUT)
        # One attempt blocks the loop this long at most; the shim retries off the loop.
        busy_ms = sqlite_inline.INLINE_BUSY_MS
    else:
        busy_ms = SQLITE_BUSY_TIMEOUT * 1000  # aiosqlite waits on its own thread
    engine = create_async_engine(url, echo=echo, **options)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, issue BEGIN (see the "begin" hook below).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives any process crash; only an OS crash or power
        # loss can drop the last commits. FULL would fsync every update.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


class Database:
    """The engine plus a session factory; created in main(), never at import time."""

    def __init__(self, url: str, *, echo: bool = False, sqlite_driver: str | None = None) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo, sqlite_driver=sqlite_driver)
        self.sessions = make_sessionmaker(self.engine)
        self.is_sqlite = is_sqlite(url)
        # Called after a transaction that queued outbox messages commits (wakes the sender).
        self.on_outbox_commit: Callable[[], None] | None = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One session in one transaction: committed on success, rolled back on error.

        Whoever queued outbox messages in it need not say so: once it commits, the
        ``on_outbox_commit`` callback runs, so the sender looks for them at once.
        """
        async with self.sessions() as session:
            async with session.begin():
                yield session
            if session.info.pop(QUEUED, False) and self.on_outbox_commit is not None:
                self.on_outbox_commit()

    async def dispose(self) -> None:
        await self.engine.dispose()
