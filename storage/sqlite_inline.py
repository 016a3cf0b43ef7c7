"""An in-loop stand-in for aiosqlite, used by SQLAlchemy's aiosqlite dialect.

aiosqlite runs every call on a worker thread: each cursor creation, execute,
fetch and close is a thread hop and an event-loop wake-up, which made one small
transaction cost about a millisecond. SQLite itself answers these calls in
microseconds from the page cache, so here they run directly on the event loop.

What this trades: a call blocks the loop while SQLite works. Linli's SQLite
transactions are a handful of indexed statements (no network I/O inside a
transaction), and the engine keeps a single connection, so the only long wait
is SQLite's busy timeout when *another process* (``linli admin …``) holds the
write lock for a moment. Deployments with real concurrency use PostgreSQL.

Only the surface SQLAlchemy's adapter touches is implemented (see
sqlalchemy/dialects/sqlite/aiosqlite.py and connectors/asyncio.py).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any


class _Cursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> _Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> _Cursor:
        self._cursor.execute(sql, parameters or ())
        return self

    async def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> _Cursor:
        self._cursor.executemany(sql, seq)
        return self

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _RunNow:
    """SQLAlchemy sets isolation_level by queueing (future, fn) on aiosqlite's
    private work queue; here the work runs at once."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:  # handed to the awaiting caller, as aiosqlite does
            future.set_exception(exc)


class InlineConnection:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._connection: sqlite3.Connection | None = conn
        self._tx = _RunNow()

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> _Cursor:
        return _Cursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> _Cursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kw: Any) -> None:
        self._conn.create_function(*args, **kw)

    async def close(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()


def creator(path: str, *, timeout: float) -> Callable[[], Any]:
    """An ``async_creator`` for create_async_engine that opens ``path`` in-loop."""

    async def connect() -> InlineConnection:
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
        return InlineConnection(conn)

    return connect
