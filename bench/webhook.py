"""Updates/s and latency through `linli run` processes on PostgreSQL: one long-polling
process, one webhook worker, and three webhook workers behind a (random) load balancer,
in one run against the same in-process fake Bot API server.

    python bench/webhook.py [--people 60] [--messages 20] [--rate 1000]

Every configuration gets a fresh database on one throwaway PostgreSQL server and the
same closed-loop workload: each person, once onboarded, sends a message, waits for the
answer, sends the next. The message is free text no service matches ("今天天气不错"), a
full dialog step answered by one message. Telegram's overall send limit (30/s per bot,
counted per process) would otherwise be the figure, so ``LINLI_TELEGRAM_RATE`` lifts it;
per-chat limits stay (people wait for each answer, so they never bind).

The fake server, the people and the workers share this machine's cores: on a 2-core
machine three workers compete with each other, PostgreSQL and the fake for the same two
cores, so the 3-worker figure shows correctness under load balancing more than scaling.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from bench.common import report
from tests.fakes.telegram_api import FakeTelegramServer, FakeUser, SentMessage
from tests.postgres_server import PostgresServer, find_pg_bindir

SECRET = "bench-secret"
TEXT, EXPECT = "今天天气不错", "没听懂"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env, self.port, self.log = env, port, log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot.cli", "run", env={**os.environ, **self.env}, stdout=out, stderr=out
            )

    async def healthy(self) -> None:
        async with asyncio.timeout(120), aiohttp.ClientSession() as http:
            while True:
                assert self.proc is not None
                assert self.proc.returncode is None, self.log.read_text()
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"http://127.0.0.1:{self.port}/healthz") as r:
                        if r.status == 200:
                            return
                await asyncio.sleep(0.2)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(30):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


class Inboxes:
    """Per-chat queues of the bot's messages (one scan per message, not per waiter)."""

    def __init__(self, tg: FakeTelegramServer) -> None:
        self.queues: dict[int, asyncio.Queue[SentMessage]] = {}
        tg.observers.append(self._seen)

    def _seen(self, message: SentMessage) -> None:
        queue = self.queues.get(message.chat_id)
        if queue is not None:
            queue.put_nowait(message)

    def of(self, user: FakeUser) -> asyncio.Queue[SentMessage]:
        return self.queues.setdefault(user.id, asyncio.Queue())


async def until(queue: asyncio.Queue[SentMessage], wanted: str) -> SentMessage:
    async with asyncio.timeout(120):
        while True:
            message = await queue.get()
            if wanted in (message.text or "") or any(wanted == d for _, d in message.buttons):
                return message


async def onboard(tg: FakeTelegramServer, inboxes: Inboxes, user: FakeUser) -> None:
    queue = inboxes.of(user)
    tg.send_text(user, "/start")
    for data in (
        "f:onboarding:consent:yes",
        "f:onboarding:language:zh",
        "f:onboarding:community:none",
        "f:onboarding:phone:skip",
    ):
        message = await until(queue, data)
        tg.press(user, message, data)
    await until(queue, "设置完成")


async def workload(
    tg: FakeTelegramServer, inboxes: Inboxes, people: list[FakeUser], messages: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []

    async def person(user: FakeUser) -> None:
        queue = inboxes.of(user)
        while not queue.empty():
            queue.get_nowait()
        for _ in range(messages):
            t0 = time.perf_counter()
            tg.send_text(user, TEXT)
            await until(queue, EXPECT)
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(person(u) for u in people))
    return time.perf_counter() - start, latencies


async def configuration(
    label: str, server: PostgresServer, workers: int, args: argparse.Namespace, logs: Path
) -> float:
    database = server.create_database(f"bench_{label.replace(' ', '_').replace('-', '_')}")
    async with FakeTelegramServer() as tg:
        inboxes = Inboxes(tg)
        base = {
            "LINLI_TELEGRAM_TOKEN": tg.token,
            "LINLI_TELEGRAM_API_BASE": tg.base_url,
            "LINLI_DATABASE_URL": database,
            "LINLI_TELEGRAM_RATE": str(args.rate),
            "LINLI_POLLING_TIMEOUT": "1",
            "LINLI_LOG_LEVEL": "WARNING",
        }
        procs: list[Process] = []
        for n in range(workers):
            port = free_port()
            env = dict(base)
            if label.startswith("webhook"):
                env |= {
                    "LINLI_WEBHOOK_URL": "https://linli.example.org/hook",
                    "LINLI_WEBHOOK_LISTEN": f"127.0.0.1:{port}",
                    "LINLI_WEBHOOK_SECRET": SECRET,
                }
            else:
                env["LINLI_OPS_LISTEN"] = f"127.0.0.1:{port}"
            procs.append(Process(env, port, logs / f"{label}-{n}.log"))
        rng = random.Random(1)
        tg.webhook_route = lambda _url: f"http://127.0.0.1:{rng.choice(procs).port}/hook"
        try:
            for proc in procs:  # one after another: the first migrates and loads demo data
                await proc.start()
                await proc.healthy()
            people = [tg.user(50_000 + i, f"P{i}", language_code="zh-hans") for i in range(args.people)]
            await asyncio.gather(*(onboard(tg, inboxes, u) for u in people))
            return report(label, *await workload(tg, inboxes, people, args.messages), unit="updates")
        finally:
            for proc in procs:
                await proc.stop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=60)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--rate", type=float, default=1000.0, help="LINLI_TELEGRAM_RATE for every process")
    parser.add_argument("--only", choices=["polling", "webhook1", "webhook3"], action="append")
    args = parser.parse_args()
    bindir = find_pg_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL binaries not found")
    server = PostgresServer(bindir)
    server.start()
    cores = os.cpu_count()
    print(f"{args.people} people × {args.messages} messages each, closed loop, PostgreSQL, {cores} cores")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rates = {}
            for key, label, workers in (
                ("polling", "long polling", 1),
                ("webhook1", "webhook 1 worker", 1),
                ("webhook3", "webhook 3 workers", 3),
            ):
                if not args.only or key in args.only:
                    rates[key] = await configuration(label, server, workers, args, Path(tmp))
            if "webhook1" in rates and "webhook3" in rates:
                print(f"  webhook 3 workers / 1 worker: {rates['webhook3'] / rates['webhook1']:.2f}")
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
