"""Several processes on one database: one delivers the outbox and runs the scheduler;
when it goes, another takes over at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from bot.app import Linli
from bot.settings import Settings
from dialogs.messages import Outgoing
from storage import demo, outbox, schema
from storage.engine import Database
from storage.leader import FENCE_KEY, LOCK_KEY, Leadership
from tests.fakes.recording import RecordingTransport

pytestmark = pytest.mark.slow  # seconds per test: outside the fast loop


def _settings(url: str) -> Settings:
    return Settings(database_url=url, demo_data=False, _env_file=None)  # type: ignore[call-arg]


async def test_one_leader_and_a_hand_over(postgres_url: str) -> None:
    setup = Database(postgres_url)
    await schema.upgrade(setup)
    async with setup.transaction() as session:
        await demo.load(session)
    await setup.dispose()

    first, second = Linli(_settings(postgres_url)), Linli(_settings(postgres_url))
    sent_first, sent_second = RecordingTransport(), RecordingTransport()
    try:
        await first.start({"telegram": sent_first})
        await second.start({"telegram": sent_second})
        assert first.leadership.leading and first.sender is not None
        assert not second.leadership.leading and second.sender is None

        # A message queued by the follower is delivered by the leader, once.
        async with second.db.transaction() as session:
            await outbox.enqueue(session, channel="telegram", chat_id="1", payload=Outgoing("one").to_dict())
        first.wake_sender()
        async with asyncio.timeout(15):
            await sent_first.wait_for_deliveries(1)
        assert sent_second.deliveries == []

        # The leader stops: the follower leads at once and delivers what comes next.
        await first.stop()
        async with asyncio.timeout(15):
            await second.leads.wait()  # PostgreSQL hands the lock over when the leader's connection goes
        async with second.db.transaction() as session:
            await outbox.enqueue(session, channel="telegram", chat_id="2", payload=Outgoing("two").to_dict())
        second.wake_sender()
        async with asyncio.timeout(15):
            await sent_second.wait_for_deliveries(1)
        assert [d.item.payload["text"] for d in sent_second.deliveries] == ["two"]
    finally:
        await second.stop()
        if first.sender is not None and first.leadership.leading:
            await first.stop()


async def test_sqlite_always_leads(sqlite_url: str) -> None:
    app = Linli(_settings(sqlite_url))
    await app.prepare()
    try:
        await app.start({"telegram": RecordingTransport()})
        assert app.leadership.leading and app.sender is not None
    finally:
        await app.stop()


async def _terminate_holder(db: Database, key: int) -> int:
    """pg_terminate_backend on the session holding advisory lock ``key`` in this database."""
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND classid = :hi AND objid = :lo AND objsubid = 1"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"hi": key >> 32, "lo": key & 0xFFFFFFFF},
        )
        killed = rows.scalars().all()
        await conn.commit()
    return len(killed)


@pytest.mark.parametrize("key", [LOCK_KEY, FENCE_KEY], ids=["lock-backend", "fence-backend"])
async def test_a_leader_whose_backend_dies_stops_before_another_leads(postgres_url: str, key: int) -> None:
    setup = Database(postgres_url)
    await schema.upgrade(setup)

    first, second = Linli(_settings(postgres_url)), Linli(_settings(postgres_url))
    # What the old leader looked like at the moment the new one began to lead.
    seen: list[tuple[bool, bool]] = []
    wait_to_lead = second.leadership.wait_to_lead

    async def observed_wait_to_lead() -> None:
        await wait_to_lead()
        seen.append((first.leads.is_set(), first.sender is not None or first._sender_task is not None))

    second.leadership.wait_to_lead = observed_wait_to_lead  # type: ignore[method-assign]
    try:
        await first.start({"telegram": RecordingTransport()})
        await second.start({"telegram": RecordingTransport()})
        assert first.leads.is_set() and not second.leads.is_set()
        sender_task = first._sender_task
        assert sender_task is not None

        assert await _terminate_holder(setup, key) == 1

        async with asyncio.timeout(15):  # a guard against hanging, not a measurement
            await asyncio.wait([sender_task])  # the old leader's sender stops...
            await second.leads.wait()  # ...and the follower takes over
        assert not first.leads.is_set() and not first.leadership.leading and first.sender is None
        # The old leader had stopped before the new one began.
        assert seen == [(False, False)]
        assert second.leadership.leading and second.sender is not None

        # The old leader follows now: when the new one goes, it leads again.
        await second.stop()
        async with asyncio.timeout(15):
            await first.leads.wait()
        assert first.leadership.leading and first.sender is not None
    finally:
        await second.stop()
        await first.stop()
        await setup.dispose()


async def test_a_leader_whose_lock_connection_stops_answering_stops(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No socket closes (a network partition, a half-open connection): the heartbeat,
    unanswered, is what tells the leader."""
    setup = Database(postgres_url)
    await schema.upgrade(setup)
    first, second = Linli(_settings(postgres_url)), Linli(_settings(postgres_url))
    try:
        await first.start({"telegram": RecordingTransport()})
        await second.start({"telegram": RecordingTransport()})
        sender_task = first._sender_task
        assert first.leads.is_set() and sender_task is not None
        silent = first.leadership._lock
        fetchval = asyncpg.Connection.fetchval

        async def unanswered(self: asyncpg.Connection, query: str, *args: object, **kw: object) -> object:
            if self is silent and query == "SELECT 1":
                timeout = kw["timeout"]
                assert isinstance(timeout, int | float)
                await asyncio.wait_for(asyncio.Event().wait(), timeout)  # never answered
            return await fetchval(self, query, *args, **kw)

        monkeypatch.setattr(asyncpg.Connection, "fetchval", unanswered)
        async with asyncio.timeout(15):  # a guard against hanging, not a measurement
            await asyncio.wait([sender_task])
            await second.leads.wait()
        assert not first.leads.is_set() and first.sender is None
        assert silent is not None and silent.is_closed()  # closed, so the server freed its lock
    finally:
        await second.stop()
        await first.stop()
        await setup.dispose()


async def test_one_leader_per_sqlite_file(sqlite_url: str) -> None:
    first, second = Linli(_settings(sqlite_url)), Linli(_settings(sqlite_url))
    await first.prepare()
    try:
        await first.start({"telegram": RecordingTransport()})
        await second.start({"telegram": RecordingTransport()})
        # flock conflicts between two open file descriptions, even in one process.
        assert first.leadership.leading and first.sender is not None
        assert not second.leadership.leading and second.sender is None

        await first.stop()
        async with asyncio.timeout(15):
            await second.leads.wait()  # it tries the file lock every second
        assert second.leadership.leading and second.sender is not None
    finally:
        await second.stop()
        await first.stop()


async def test_sqlite_lock_is_per_file_and_released(tmp_path: Path) -> None:
    dbs = [Database(f"sqlite+aiosqlite:///{tmp_path / name}") for name in ("a.db", "a.db", "b.db")]
    a1, a2, b = (Leadership(db) for db in dbs)
    try:
        assert await a1.try_acquire()
        assert not await a2.try_acquire()
        assert await b.try_acquire()  # another file, another lock
        await a1.release()
        assert await a2.try_acquire()
        assert (tmp_path / "a.db.lock").exists()
    finally:
        for leadership in (a1, a2, b):
            await leadership.release()
        for db in dbs:
            await db.dispose()


async def test_in_memory_sqlite_always_leads() -> None:
    db = Database("sqlite+aiosqlite:///:memory:")
    try:
        one, two = Leadership(db), Leadership(db)
        assert await one.try_acquire() and await two.try_acquire()
        assert one.leading and two.leading
    finally:
        await db.dispose()
