"""An in-loop stand-in for aiosqlite, used by SQLAlchemy's aiosqlite dialect.

aiosqlite runs every call on a worker thread: each cursor creation, execute,
fetch and close is a thread hop and an event-loop wake-up, which made one small
transaction cost about a millisecond. SQLite itself answers these calls in
microseconds from the page cache, so here they run directly on the event loop.

What this trades: a call blocks the loop while SQLite works. Linli's SQLite
transactions are a handful of indexed statements (no network I/O inside a
transaction), and the engine keeps a single connection, so the only long wait
is for the write lock when *another process* (``linli admin …``, a second
``linli run``) holds it. That wait must not block the loop (polling, sending and
timers would stop with it), so the connection's busy timeout is short
(``INLINE_BUSY_MS``): a statement that finds the database locked gives up after
that, and is tried again after an ``asyncio.sleep`` with backoff — the same
sleep-and-retry SQLite's busy handler does, but with the loop free — until
``timeout`` seconds (30) have passed; then "database is locked" is raised as
before. A statement is retried only where SQLite says that is safe: outside an
explicit transaction (this covers ``BEGIN IMMEDIATE``, where every Linli
transaction waits for the lock) and ``COMMIT``. Inside a write transaction in WAL
mode the lock is already held and nothing else waits. ``LINLI_SQLITE_DRIVER=aiosqlite``
(storage/engine.py) goes back to aiosqlite's worker thread.

Only the surface SQLAlchemy's adapter touches is implemented (see
sqlalchemy/dialects/sqlite/aiosqlite.py and connectors/asyncio.py).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

# How long one attempt may block the event loop waiting for another process's lock.
INLINE_BUSY_MS = 20
# Sleeps between attempts, seconds; the last one repeats.
_BACKOFF = (0.002, 0.005, 0.01, 0.02, 0.05)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:  # pragma: no cover -- Python < 3.11 has no error codes
        return "database is locked" in str(exc)
    # BUSY_SNAPSHOT means the transaction must start over; retrying the statement won't do.
    return code & 0xFF == sqlite3.SQLITE_BUSY and code != sqlite3.SQLITE_BUSY_SNAPSHOT


class _Cursor:
    def __init__(self, cursor: sqlite3.Cursor, owner: InlineConnection) -> None:
        self._cursor = cursor
        self._owner = owner

    async def __aenter__(self) -> _Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> _Cursor:
        owner = self._owner
        # A busy statement outside a transaction did nothing; a busy COMMIT leaves the
        # transaction open: both can be tried again. Inside a transaction SQLite wants a
        # rollback instead, so the error goes up.
        safe = not owner._conn.in_transaction or sql.lstrip()[:6].upper() in ("COMMIT", "END")
        await owner._run(lambda: self._cursor.execute(sql, parameters or ()), retry=safe)
        return self

    async def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> _Cursor:
        # Never retried: some rows may have gone in before the error. SQLAlchemy runs
        # executemany inside a transaction that already holds the write lock.
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
    def __init__(self, conn: sqlite3.Connection, *, timeout: float = 30.0) -> None:
        self._conn = conn
        self._connection: sqlite3.Connection | None = conn
        self._tx = _RunNow()
        self._timeout = timeout

    async def _run(self, call: Callable[[], T], *, retry: bool) -> T:
        """``call()`` now; while the database is locked by someone else, again after a
        short sleep (the loop runs meanwhile), for up to ``timeout`` seconds."""
        try:
            return call()
        except sqlite3.OperationalError as exc:
            if not (retry and _is_busy(exc)):
                raise
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        attempt = 0
        while True:
            await asyncio.sleep(_BACKOFF[min(attempt, len(_BACKOFF) - 1)])
            attempt += 1
            try:
                return call()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or loop.time() >= deadline:
                    raise

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> _Cursor:
        return _Cursor(self._conn.cursor(), self)

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> _Cursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        await self._run(self._conn.commit, retry=True)

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
    """An ``async_creator`` for create_async_engine that opens ``path`` in-loop; a locked
    database is waited for up to ``timeout`` seconds without blocking the loop."""

    async def connect() -> InlineConnection:
        conn = sqlite3.connect(
            path, timeout=INLINE_BUSY_MS / 1000, isolation_level=None, check_same_thread=False
        )
        return InlineConnection(conn, timeout=timeout)

    return connect
