"""No one stalls everyone: other people's wait for /help while one person floods.

One person sends ``--messages`` messages at once; Telegram's limits are enforced by the
fake Bot API (``enforce_limits``: 1 message/s per chat after a burst of 3, 30/s overall,
429 with ``retry_after`` beyond), in real time, no scaling. While the flooder's answers
drain, ``--people`` other people each send /help every ``--every`` seconds and wait for
the answer. Reported: their waits, and the flooder's drain time.

    python bench/fairness.py [--messages 200] [--people 5] [--every 5] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import SecretStr

from bench.common import on_databases
from bot.app import Linli
from bot.settings import Settings
from bot.telegram.runner import make_bot, run_telegram
from tests.fakes.telegram_api import FakeTelegramServer, FakeUser

HELP = "Commands:"


async def run(url: str, label: str, args: argparse.Namespace) -> None:
    async with FakeTelegramServer() as tg:
        tg.enforce_limits = True
        settings = Settings(
            telegram_token=SecretStr(tg.token),
            telegram_api_base=tg.base_url,
            database_url=url,
            polling_timeout=1,
        )
        app, bot, stop = Linli(settings), make_bot(settings), asyncio.Event()
        task = asyncio.create_task(run_telegram(app, bot=bot, stop=stop))
        try:
            await tg.wait_polling(timeout=60)
            flooder = tg.user(7000, "Flood", language_code="en")
            others = [tg.user(7001 + i, f"Other {i}", language_code="en") for i in range(args.people)]
            waits: list[float] = []
            drained = asyncio.Event()

            async def other(person: FakeUser) -> None:
                while not drained.is_set():
                    since = len(tg.sent)
                    t0 = time.perf_counter()
                    tg.send_text(person, "/help")
                    await tg.wait_for_text(person, HELP, since=since, timeout=120)
                    waits.append(time.perf_counter() - t0)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(drained.wait(), args.every)

            start = time.perf_counter()
            for i in range(args.messages):
                tg.send_text(flooder, f"hello {i}")
            askers = [asyncio.create_task(other(p)) for p in others]
            await asyncio.sleep(0.05)
            while len(tg.messages_to(flooder)) < args.messages:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            drain = time.perf_counter() - start
            drained.set()
            await asyncio.gather(*askers)
        finally:
            stop.set()
            await task
            await bot.close()

    refused = tg.refused(flooder)
    lat = sorted(waits)
    print(f"{label}: flood of {args.messages} messages from one person, {args.people} others asking /help")
    rate = args.messages / drain
    print(f"  flooder: all answers delivered after {drain:.1f} s ({rate:.2f}/s), 429s: {refused}")
    p50, p99 = statistics.median(lat) * 1000, lat[max(int(len(lat) * 0.99) - 1, 0)] * 1000
    print(
        f"  others:  {len(lat)} /help answered while it drained,"
        f" wait p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {lat[-1] * 1000:.0f} ms"
    )
    print(f"  limit breaches seen by the fake Bot API (direct + outbox together): {tg.flood_violations}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--people", type=int, default=5)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between one person's /help")
    parser.add_argument("--postgres", action="store_true", help="also run on a throwaway PostgreSQL")
    args = parser.parse_args()
    asyncio.run(on_databases(lambda url, label: run(url, label, args), postgres=args.postgres))


if __name__ == "__main__":
    main()
