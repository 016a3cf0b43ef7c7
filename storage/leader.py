"""Which process delivers the outbox and runs the scheduler.

Several Linli processes may share one PostgreSQL database (webhook workers). They all
handle messages, but only one may run the sender (or each message would go out once
per process, and the rate limits would be counted apart) and the scheduler. The one
holding a PostgreSQL advisory lock leads; the lock belongs to a connection, so a
leader that dies loses it at once and another process takes over. SQLite is one
process by nature: it always leads.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.engine import Database

log = logging.getLogger("linli.leader")

# Any fixed 64-bit number, the same for every Linli process ("linli" in ASCII).
LOCK_KEY = 0x6C696E6C69


class Leadership:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: AsyncConnection | None = None

    @property
    def leading(self) -> bool:
        return self.db.is_sqlite or self._conn is not None

    async def try_acquire(self) -> bool:
        if self.leading:
            return True
        conn = await self.db.engine.connect()
        # Autocommit: the lock is held by the session, not by a transaction left open.
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        got = bool((await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY})).scalar())
        if got:
            self._conn = conn
            log.info("this process leads: it runs the outbox sender and the scheduler")
        else:
            await conn.close()
        return got

    async def wait_to_lead(self) -> None:
        """Block until this process leads: PostgreSQL hands the lock over the moment the
        leader's connection goes, no polling."""
        if self.leading:
            return
        conn = await (await self.db.engine.connect()).execution_options(isolation_level="AUTOCOMMIT")
        try:
            await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
        except BaseException:
            # Cancelled while waiting (shutting down): the connection goes with the wait.
            await conn.close()
            raise
        self._conn = conn
        log.info("this process now leads: it runs the outbox sender and the scheduler")

    async def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
            finally:
                await conn.close()
