"""Several processes on one PostgreSQL database: one delivers the outbox and runs the
scheduler; when it goes, another takes over at once."""

from __future__ import annotations

import asyncio

from bot.app import Linli
from bot.settings import Settings
from dialogs.messages import Outgoing
from storage import demo, outbox, schema
from storage.engine import Database
from tests.fakes.recording import RecordingTransport


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
