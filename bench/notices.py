"""Notice delivery through the fake Bot API with Telegram's limits enforced.

    python -m bench.notices --messages 10000

One fake server (tests/fakes/telegram_api.py, ``telegram_limits()``: at most 30
messages in any one-second window, 1/s per chat, 429 with retry_after beyond) and one
audience of N private chats. First Linli: a notice to N people, expanded into the
outbox (SQLite) and delivered by the OutboxSender with its default RateLimiter through
aiogram. Then, against the same server and the same chats, python-telegram-bot's
AIORateLimiter (the reference most bots use): N ``send_message`` calls gathered, as its
documentation suggests. Each reports the achieved rate (messages delivered per second,
first request to last delivery) as a fraction of Telegram's 30/s, and the 429s met.

Needs the "bench" extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlmodel import col

from bot.telegram.runtime_aiogram import AiogramApi
from bot.telegram.transport import TelegramTransport
from dialogs.feature import Env
from dialogs.notices import delivery
from scheduler.sender import OutboxSender
from storage import communities, notices
from storage.engine import Database
from storage.models import OutboxMessage, User, utcnow
from storage.notices import Audience, NoticeDraft, Topic
from storage.schema import create_schema
from tests.fakes.telegram_api import FakeTelegramServer

TELEGRAM_RATE = 30.0
FIRST_ID = 1_000_000
AFTERNOON = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


async def linli(tg: FakeTelegramServer, n: int, workdir: Path) -> tuple[float, int]:
    db = Database(f"sqlite+aiosqlite:///{workdir / 'bench.db'}")
    await create_schema(db)
    async with db.transaction() as session:
        community = await communities.add_community(session, name="基准社区", buildings=["1栋"])
        now = utcnow()
        await session.execute(
            insert(User),
            [
                {
                    "channel": "telegram",
                    "external_id": str(FIRST_ID + i),
                    "chat_id": str(FIRST_ID + i),
                    "display_name": "",
                    "roles": "",
                    "community_id": community.id,
                    "onboarded_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(n)
            ],
        )
        await notices.create(
            session,
            author_user_id=1,
            draft=NoticeDraft(
                text="基准测试通知",
                community_id=community.id,
                building_id=None,
                audience=Audience.EVERYONE,
                topic=Topic.GENERAL,
                urgent=True,
                send_at=AFTERNOON,
            ),
        )
    env = Env(clock=lambda: AFTERNOON)
    (spec,) = await delivery.notice_jobs_for_tests(db, env)
    await delivery.send_notice(db, env, spec.arg)
    tg.telegram_limits()
    refused_before = tg.refusals()
    bot = AiogramApi(tg.make_bot())
    sender = OutboxSender(db, {"telegram": TelegramTransport(bot)})
    db.on_outbox_commit = sender.wake
    start = time.monotonic()
    task = asyncio.create_task(sender.run())
    try:
        while True:
            await asyncio.sleep(0.5)
            async with db.transaction() as session:
                pending = (
                    await session.execute(
                        select(func.count())
                        .where(col(OutboxMessage.status) == "pending")
                        .select_from(OutboxMessage)
                    )
                ).scalar_one()
            if pending == 0:
                break
        elapsed = _last_delivery(tg) - start
    finally:
        sender.stop()
        await task
        await bot.close()
        await db.dispose()
    return n / elapsed, tg.refusals() - refused_before


def _last_delivery(tg: FakeTelegramServer) -> float:
    return tg.last_sent_at


async def ptb(tg: FakeTelegramServer, n: int) -> tuple[float, int]:
    from telegram.ext import AIORateLimiter, ExtBot
    from telegram.request import HTTPXRequest

    tg.telegram_limits()
    refused_before = tg.refusals()
    bot: ExtBot[int] = ExtBot(
        tg.token,
        base_url=f"{tg.base_url}/bot",
        base_file_url=f"{tg.base_url}/file/bot",
        rate_limiter=AIORateLimiter(max_retries=10),
        request=HTTPXRequest(connection_pool_size=8),
    )
    await bot.initialize()
    start = time.monotonic()
    try:
        await asyncio.gather(*(bot.send_message(FIRST_ID + i, "基准测试通知") for i in range(n)))
        elapsed = _last_delivery(tg) - start
    finally:
        await bot.shutdown()
    return n / elapsed, tg.refusals() - refused_before


async def main(n: int, skip_ptb: bool) -> None:
    async with FakeTelegramServer() as tg:
        for i in range(n):
            tg.user(FIRST_ID + i, f"R{i}")
        with tempfile.TemporaryDirectory() as tmp:
            rate, refused = await linli(tg, n, Path(tmp))
        print(f"linli OutboxSender  {n} messages  {rate:.2f}/s  {rate / TELEGRAM_RATE:.1%}  429s: {refused}")
        if not skip_ptb:
            rate, refused = await ptb(tg, n)
            print(
                f"PTB AIORateLimiter  {n} messages  {rate:.2f}/s  {rate / TELEGRAM_RATE:.1%}  429s: {refused}"
            )
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--skip-ptb", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.skip_ptb))
