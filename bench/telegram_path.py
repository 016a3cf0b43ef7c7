"""The full path: Telegram updates over HTTP, Linli's polling loop, handlers, dialogs and
storage, and the answer back over HTTP — on both Telegram runtimes, each beside that
library's own bare echo bot, all measured in one run against the same fake Bot API server:

- bare aiogram echo (a Dispatcher, updates handled as tasks) and Linli on aiogram;
- bare python-telegram-bot echo (an Application with concurrent updates) and Linli on
  python-telegram-bot (``LINLI_TELEGRAM_RUNTIME=ptb``).

Every bot polls the in-process fake server (tests/fakes/telegram_api.py), so all pay the
same HTTP and JSON costs; each ratio is what Linli's work adds on top of its library.
People send one message after another (closed loop), each waiting for the answer.

    python bench/telegram_path.py [--people 50] [--messages 20] [--database-url URL]

Linli's messages are free text that no service matches ("今天天气不错"): a full dialog
step (claim the update, load the person and conversation, fuzzy intent match over
every phrase, answer with the menu) that produces one message, like the echo.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiogram import Bot, Dispatcher
from aiogram.types import Message
from pydantic import SecretStr
from telegram import Update as PtbUpdate
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from bench.common import report
from bot.app import Linli
from bot.settings import Settings, TelegramRuntime
from bot.telegram.runner import make_bot, run_telegram
from scheduler.ratelimit import RateLimiter
from tests.fakes.telegram_api import FakeTelegramServer, FakeUser, SentMessage


async def drive(
    tg: FakeTelegramServer, people: list[FakeUser], messages: int, text: str, expect: str
) -> tuple[float, list[float]]:
    latencies: list[float] = []

    async def person(user: FakeUser) -> None:
        for _ in range(messages):
            since = len(tg.sent)
            t0 = time.perf_counter()
            tg.send_text(user, text)
            await tg.wait_for(
                lambda m: m.chat_id == user.id and expect in (m.text or ""), since=since, timeout=120
            )
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(person(u) for u in people))
    return time.perf_counter() - start, latencies


async def echo_bot(tg: FakeTelegramServer) -> tuple[Bot, Dispatcher, asyncio.Task[None]]:
    bot = tg.make_bot()
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}")

    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
    await tg.wait_polling(active=True, timeout=30)
    return bot, dp, task


async def ptb_echo_bot(tg: FakeTelegramServer) -> Application:
    application = (
        Application.builder()
        .token(tg.token)
        .base_url(f"{tg.base_url}/bot")
        .base_file_url(f"{tg.base_url}/file/bot")
        .concurrent_updates(True)  # as aiogram's Dispatcher and Linli: not one at a time
        .build()
    )

    async def echo(update: PtbUpdate, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text(f"echo: {update.message.text}")

    application.add_handler(MessageHandler(filters.TEXT, echo))
    await application.initialize()
    await application.start()
    assert application.updater is not None
    await application.updater.start_polling(poll_interval=0, timeout=1)
    await tg.wait_polling(active=True, timeout=30)
    return application


async def measure(
    label: str,
    start: Callable[[FakeTelegramServer], Awaitable[Callable[[], Awaitable[None]]]],
    args: argparse.Namespace,
    text: str,
    expect: str,
    warm: Callable[[FakeTelegramServer, FakeUser], Awaitable[None]] | None = None,
) -> float:
    async with FakeTelegramServer() as tg:
        stop = await start(tg)
        try:
            people = [tg.user(10_000 + i, f"P{i}") for i in range(args.people)]
            if warm is not None:
                await asyncio.gather(*(warm(tg, u) for u in people))
            return report(label, *await drive(tg, people, args.messages, text, expect), unit="msgs")
        finally:
            await stop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    args = parser.parse_args()

    async def start_echo(tg: FakeTelegramServer) -> Callable[[], Awaitable[None]]:
        bot, dp, task = await echo_bot(tg)

        async def stop() -> None:
            await dp.stop_polling()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await bot.session.close()

        return stop

    async def start_ptb_echo(tg: FakeTelegramServer) -> Callable[[], Awaitable[None]]:
        application = await ptb_echo_bot(tg)

        async def stop() -> None:
            assert application.updater is not None
            await application.updater.stop()
            await application.stop()
            await application.shutdown()

        return stop

    tmp = tempfile.TemporaryDirectory()

    def start_linli(
        runtime: TelegramRuntime,
    ) -> Callable[[FakeTelegramServer], Awaitable[Callable[[], Awaitable[None]]]]:
        return lambda tg: linli_on(tg, runtime)

    async def linli_on(tg: FakeTelegramServer, runtime: TelegramRuntime) -> Callable[[], Awaitable[None]]:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp.name}/bench-{time.monotonic_ns()}.db"
        settings = Settings(
            telegram_token=SecretStr(tg.token),
            telegram_api_base=tg.base_url,
            telegram_runtime=runtime,
            database_url=url,
            polling_timeout=1,
            _env_file=None,  # type: ignore[call-arg]
        )
        stopped = asyncio.Event()
        bot = make_bot(settings)
        app = Linli(settings)
        # The echo bot has no rate limiter; lift Linli's (Telegram's 30/s overall would
        # otherwise be the figure) so the comparison is of the work per message.
        app.limiter = RateLimiter(time.monotonic, global_per_second=1e9)
        task = asyncio.create_task(run_telegram(app, bot=bot, stop=stopped))
        await tg.wait_polling(active=True, timeout=60)

        async def stop() -> None:
            stopped.set()
            await task
            await bot.close()

        return stop

    async def onboard(tg: FakeTelegramServer, user: FakeUser) -> None:
        """Consent, language, name from the chat, skip community, skip phone: ready for
        steady-state steps."""

        async def step(act: Callable[[], object], expect: str) -> SentMessage:
            since = len(tg.sent)
            act()
            return await tg.wait_for(
                lambda m: m.chat_id == user.id and expect in (m.text or ""), since=since, timeout=60
            )

        def press(message: SentMessage, label: str) -> Callable[[], object]:
            data = next(d for t, d in message.buttons if label in t and d)
            return lambda: tg.press(user, message, data)

        consent = await step(lambda: tg.send_text(user, "/start"), "您同意吗")
        language = await step(press(consent, "同意"), "语言")
        name = await step(press(language, "中文"), "怎么称呼")
        community = await step(press(name, "就叫我"), "哪个社区")
        phone = await step(press(community, "跳过"), "跳过")
        await step(press(phone, "跳过"), "设置完成")

    print(f"{args.people} people × {args.messages} messages each, closed loop")
    ratios = []
    runtime: TelegramRuntime
    for runtime, label, start_bare in (
        ("aiogram", "aiogram", start_echo),
        ("ptb", "python-telegram-bot", start_ptb_echo),
    ):
        echo_rate = await measure(f"bare {label} echo", start_bare, args, "你好", "echo:")
        linli_rate = await measure(
            f"Linli on {label}", start_linli(runtime), args, "今天天气不错", "没听懂", warm=onboard
        )
        ratios.append(f"{label} {linli_rate / echo_rate:.2f}")
    print(f"  Linli / its library's echo: {', '.join(ratios)}")
    tmp.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
