"""Which process delivers the outbox and runs the scheduler.

Several Linli processes may share one database. They all handle messages, but only one
may run the sender (or each message would go out once per process, and the rate limits
would be counted apart) and the scheduler.

PostgreSQL (webhook workers, several hosts)
-------------------------------------------
Two advisory locks, each held by its own connection opened for this alone:

- the *leader* lock: whoever holds it is the next leader;
- the *fence* lock: held for as long as this process may be sending. A leader that
  loses its leader lock (its backend killed, its connection broken) lets go of the
  fence only *after* its sender and scheduler have stopped.

A follower waits for the leader lock, then for the fence, then ``TAKEOVER_GRACE``
seconds more, and only then leads. So when one of the leader's connections is lost
(``pg_terminate_backend``, a pooler dropping one session), the new leader cannot start
before the old one has stopped: the fence is still held by the old leader's other
connection until it has stopped.

The leader notices the loss of either connection at once when the socket closes
(asyncpg's termination listener), and otherwise by a heartbeat query on both
connections every ``HEARTBEAT`` seconds that must answer within ``HEARTBEAT_TIMEOUT``.
The lock connections ask the server for TCP keepalives, so the server frees the locks of
a leader that vanished from the network in about ``SERVER_DETECTS`` seconds instead of
the OS default of two hours; by then the vanished leader's heartbeat has long failed.

The window that remains, honestly:

- Both connections lost at once while the leader lives (the server restarted, both
  backends terminated together): the locks are free at once. The old leader stops as
  soon as its event loop runs (the sockets closed); the new one waits
  ``TAKEOVER_GRACE`` (2 s) first. Only a leader whose event loop is stalled for longer
  than that overlaps with its successor.
- A process that finds both locks free at start-up leads without the grace wait (there
  is no sign anyone just lost them); it overlaps only if it starts within the window
  above.
- Deliveries in flight when the lead is lost are cancelled; a request already on the
  wire may still reach Telegram, and the new leader sends that row again (the sender
  is at-least-once anyway).
- A leader frozen whole (SIGSTOP, a paused VM) keeps its connections and nobody takes
  over; if the server drops it meanwhile (keepalives), it resumes sending until its
  next heartbeat, about one second.

The lock connections need real sessions: through a transaction-mode pooler (PgBouncer)
advisory locks mean nothing. Point the leader at the server or a session-mode pool.

SQLite (one host)
-----------------
An OS file lock (``flock``) on ``<database file>.lock``, taken without blocking. The
process holding it leads; another ``linli run`` on the same file handles messages
(its outbox rows are delivered by the leader's next poll) and tries the lock every
``SQLITE_POLL`` seconds, so it takes over about a second after the leader exits. The
kernel releases the lock when the holder dies, so it cannot go stale; the file itself
is left in place (removing it would race with the next locker). An in-memory database
belongs to one process: it always leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from storage.engine import Database

log = logging.getLogger("linli.leader")

# Any fixed 64-bit numbers, the same for every Linli process ("linli", "linlif" in ASCII).
LOCK_KEY = 0x6C696E6C69
FENCE_KEY = 0x6C696E6C6966

HEARTBEAT = 1.0  # seconds between heartbeat queries on the lock connections
HEARTBEAT_TIMEOUT = 1.0  # a heartbeat not answered within this counts as a lost connection
# A new leader waits this long after taking both locks: longer than the old leader needs
# to notice that its connections closed, so it has stopped by then.
TAKEOVER_GRACE = 2.0
RETRY = 2.0  # a follower whose wait failed (server restart) tries again after this
SQLITE_POLL = 1.0  # how often a SQLite follower tries the file lock

# Ask the server to probe an idle leader connection after 10 s, every 5 s, 3 times; and
# to drop it once data sent goes unacknowledged for 20 s (PostgreSQL 12+). A leader that
# vanished from the network loses its locks in about 25 s, not hours.
SERVER_DETECTS = 25
_KEEPALIVES = {
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "20000",
    "application_name": "linli-leader",
}


class Leadership:
    """Use: ``try_acquire()`` or ``wait_to_lead()``; once leading, start the work, then
    ``await wait_lost()``; when it returns, stop the work and call ``release()``."""

    def __init__(
        self,
        db: Database,
        *,
        heartbeat: float = HEARTBEAT,
        heartbeat_timeout: float = HEARTBEAT_TIMEOUT,
        grace: float = TAKEOVER_GRACE,
        sqlite_poll: float = SQLITE_POLL,
    ) -> None:
        self.db = db
        self.heartbeat = heartbeat
        self.heartbeat_timeout = heartbeat_timeout
        self.grace = grace
        self.sqlite_poll = sqlite_poll
        # PostgreSQL: the connections holding the leader lock and the fence.
        self._lock: asyncpg.Connection | None = None
        self._fence: asyncpg.Connection | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._leading = False
        self._lost = asyncio.Event()
        # SQLite: the lock file (None: in-memory, always leads) and its descriptor.
        self._lock_path: str | None = None
        self._fd: int | None = None
        if db.is_sqlite:
            database = make_url(db.url).database
            if database and database != ":memory:" and not database.startswith("file::memory:"):
                self._lock_path = database + ".lock"

    @property
    def leading(self) -> bool:
        if self.db.is_sqlite:
            return self._lock_path is None or self._fd is not None
        return self._leading

    async def try_acquire(self) -> bool:
        """Lead now if nobody does; False at once otherwise."""
        if self.leading:
            return True
        if self.db.is_sqlite:
            return self._try_file_lock()
        lock = await self._connect()
        try:
            if not await lock.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
                await lock.close()
                return False
            fence = await self._connect()
        except BaseException:
            lock.terminate()
            raise
        try:
            if not await fence.fetchval("SELECT pg_try_advisory_lock($1)", FENCE_KEY):
                # The last leader lost its lock but has not stopped yet: not our turn.
                await fence.close()
                await lock.close()
                return False
        except BaseException:
            fence.terminate()
            lock.terminate()
            raise
        self._hold(lock, fence)
        log.info("this process leads: it runs the outbox sender and the scheduler")
        return True

    async def wait_to_lead(self) -> None:
        """Block until this process leads."""
        if self.leading:
            return
        if self.db.is_sqlite:
            # No kernel notification for a released flock: try again every second.
            while True:
                if self._try_file_lock():
                    break
                await asyncio.sleep(self.sqlite_poll)
            log.info("this process now leads: it runs the outbox sender and the scheduler")
            return
        while True:
            try:
                if await self._wait_for_locks():
                    break
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("waiting for the lead failed (%r); trying again in %.0f s", exc, RETRY)
                await asyncio.sleep(RETRY)
        log.info("this process now leads: it runs the outbox sender and the scheduler")

    async def _wait_for_locks(self) -> bool:
        """Take both locks (PostgreSQL hands them over, no polling), then sit out the grace
        period; False if a connection went meanwhile."""
        lock = fence = None
        try:
            lock = await self._connect()
            await lock.fetchval("SELECT pg_advisory_lock($1)", LOCK_KEY)
            fence = await self._connect()
            # Held by the old leader until it has stopped sending.
            await fence.fetchval("SELECT pg_advisory_lock($1)", FENCE_KEY)
        except BaseException:
            # Cancelled while waiting (shutting down), or the server went: the
            # connections go with the wait.
            for conn in (fence, lock):
                if conn is not None:
                    conn.terminate()
            raise
        self._hold(lock, fence, watch_only=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._lost.wait(), self.grace)
        if self._lost.is_set():
            await self.release()
            return False
        self._leading = True
        return True

    async def wait_lost(self) -> None:
        """Return when this process no longer leads: a lock connection is gone. Never
        returns on SQLite (the file lock lasts as long as the process)."""
        await self._lost.wait()

    async def release(self) -> None:
        """Give up the lead (or what is left of it, after a loss). Call it only once the
        sender and the scheduler have stopped: that is when the fence opens."""
        self._leading = False
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        task, self._heartbeat_task = self._heartbeat_task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        conns = [c for c in (self._lock, self._fence) if c is not None]
        self._lock = self._fence = None
        for conn in conns:
            conn.remove_termination_listener(self._on_terminated)
            if conn.is_closed():
                continue
            try:
                # Closing ends the session, which frees its advisory locks.
                await asyncio.wait_for(conn.close(), self.heartbeat_timeout)
            except Exception:
                conn.terminate()
        self._lost = asyncio.Event()

    # -- PostgreSQL ------------------------------------------------------------------------

    async def _connect(self) -> asyncpg.Connection:
        """A connection of its own (not the engine's pool): the locks live and die with it."""
        url = make_url(self.db.url)
        _, kwargs = self.db.engine.dialect.create_connect_args(url)
        options: dict[str, Any] = dict(kwargs)
        for key in ("prepared_statement_cache_size", "prepared_statement_name_func", "async_fallback"):
            options.pop(key, None)
        settings = {**_KEEPALIVES, **options.pop("server_settings", {})}
        return await asyncpg.connect(**options, server_settings=settings)

    def _hold(self, lock: asyncpg.Connection, fence: asyncpg.Connection, *, watch_only: bool = False) -> None:
        self._lock, self._fence = lock, fence
        self._lost = asyncio.Event()
        for conn in (lock, fence):
            conn.add_termination_listener(self._on_terminated)
        self._heartbeat_task = asyncio.create_task(self._beat(), name="leader-heartbeat")
        self._leading = not watch_only

    def _on_terminated(self, conn: asyncpg.Connection) -> None:
        self._lose("its lock connection closed")

    def _lose(self, why: str) -> None:
        if self._lost.is_set():
            return
        if self._leading:
            log.error("this process lost the lead (%s): stopping the sender and the scheduler", why)
        self._leading = False
        self._lost.set()

    async def _beat(self) -> None:
        try:
            while not self._lost.is_set():
                await asyncio.sleep(self.heartbeat)
                for conn in (self._lock, self._fence):
                    if conn is None:
                        return
                    await conn.fetchval("SELECT 1", timeout=self.heartbeat_timeout)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            self._lose(f"heartbeat failed: {exc!r}")

    # -- SQLite ------------------------------------------------------------------------------

    def _try_file_lock(self) -> bool:
        assert self._lock_path is not None
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        # For people looking: who holds it.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        log.info("this process holds %s", self._lock_path)
        return True
