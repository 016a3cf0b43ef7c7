"""No one stalls everyone: one person's flood, answered under Telegram's limits, does not
make other people wait. Assertions are on the order of events at the fake Bot API, not
on time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlmodel import col

from bot.app import Linli
from bot.settings import Settings
from bot.telegram.api import TelegramApi
from bot.telegram.runner import make_bot, run_telegram
from storage.models import OutboxMessage
from tests.fakes.telegram_api import FakeTelegramServer, FakeUser

pytestmark = pytest.mark.slow  # real-time rate limits: seconds per test, outside the fast loop

HELP = "Commands:"  # in the answer to /help


@dataclass
class Running:
    tg: FakeTelegramServer
    app: Linli
    bot: TelegramApi

    async def pending_replies(self, person: FakeUser) -> int:
        async with self.app.db.transaction() as session:
            stmt = select(func.count()).where(
                col(OutboxMessage.chat_id) == str(person.id), col(OutboxMessage.status) == "pending"
            )
            return int((await session.execute(stmt)).scalar_one())


@pytest_asyncio.fixture
async def running(fake_telegram: FakeTelegramServer, database_url: str) -> AsyncIterator[Running]:
    settings = Settings(
        telegram_token=SecretStr(fake_telegram.token),
        telegram_api_base=fake_telegram.base_url,
        database_url=database_url,
        polling_timeout=1,
    )
    app = Linli(settings)
    bot = make_bot(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(run_telegram(app, bot=bot, stop=stop), name="telegram")
    try:
        await fake_telegram.wait_polling(timeout=30)
        yield Running(fake_telegram, app, bot)
    finally:
        stop.set()
        try:
            async with asyncio.timeout(15):
                await task
        finally:
            await bot.close()


async def test_a_flood_under_429s_does_not_hold_up_others(running: Running) -> None:
    tg = running.tg
    flooder = tg.user(5000, "Flood", language_code="en")
    others = [tg.user(5001 + i, f"Other {i}", language_code="en") for i in range(5)]
    # Telegram lets three messages to the flooder through, then refuses every one.
    tg.limit_chat(flooder, allow=3, retry_after=1)

    flood = [tg.send_text(flooder, f"hello {i}") for i in range(200)]
    asks = [tg.send_text(person, "/help") for person in others]
    answers = [await tg.wait_for_text(person, HELP, timeout=30) for person in others]

    # Everyone else was answered, once, long before the flood was...
    assert len(tg.messages_to(flooder)) < len(flood)
    assert all(len(tg.messages_to(p)) == 1 for p in others)
    assert [a.chat_id for a in answers] == [p.id for p in others]
    # ...which is still being delivered after that, and refused.
    answered = len(tg.send_log)
    async with asyncio.timeout(30):
        while ("429", flooder.id) not in tg.send_log[answered:]:  # noqa: ASYNC110 - refusals fire no event
            await asyncio.sleep(0.05)

    # Every update of the flood was handled (and confirmed); each answer was sent or
    # waits in the outbox, none twice. Nothing was confirmed before it was handled.
    await tg.wait_confirmed(flood[-1], timeout=60)
    for ask in asks:
        await tg.wait_confirmed(ask, timeout=10)
    assert len(tg.messages_to(flooder)) + await running.pending_replies(flooder) == len(flood)
    assert tg.refused(flooder) >= 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_small_flood_drains_once_in_order(running: Running) -> None:
    """Real limits this time (1/s per chat after a burst of 3, by the fake's clock): the
    flood drains completely, each answer once and in order, and another person's /help
    is answered before the flood is through."""
    tg = running.tg
    tg.enforce_limits = True
    flooder = tg.user(5000, "Flood", language_code="en")
    other = tg.user(5001, "Other", language_code="en")
    texts = ["/help" if i % 2 == 0 else f"hello {i}" for i in range(8)]
    for text in texts:
        tg.send_text(flooder, text)
    tg.send_text(other, "/help")
    answer = await tg.wait_for_text(other, HELP, timeout=30)

    since = 0
    for _ in texts:
        reply = await tg.wait_for(lambda m: m.chat_id == flooder.id, since=since, timeout=30)
        since = reply.index + 1
    got = tg.messages_to(flooder)
    assert len(got) == len(texts)
    assert [HELP in (m.text or "") for m in got] == [t == "/help" for t in texts]
    assert answer.index < got[-1].index
    await asyncio.sleep(1.5)  # nothing more turns up
    assert len(tg.messages_to(flooder)) == len(texts)
