"""Dialog steps per second and latency through handlers + dialogs + storage (no transport).

Each simulated person does onboarding (consent, language, community search, pick,
building, phone) and then keeps toggling lawyer specialties, a step that reads and
writes conversation state. Beside it, in the same run, a baseline: bare database
transactions (claim an update id) through the same engine, so the ratio says what
the dialog layer costs. Three measurements:

  throughput  50 people sending as fast as they can (closed loop): steps/s
  latency     one step at a time: p50/p99 of a single step
  open loop   steps arriving at a fixed rate (default 500/s, Poisson): p50/p99
              including any queueing, i.e. what a person waits at that load

    python bench/dialog_steps.py                 # SQLite
    python bench/dialog_steps.py --postgres      # also PostgreSQL (starts a throwaway server)
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import on_databases, report
from dialogs.features import FEATURES
from dialogs.messages import Incoming, Kind, Sender
from handlers.entry import Handler
from handlers.registry import Registry
from storage import demo, updates
from storage.engine import Database
from storage.schema import create_schema

_ids = itertools.count(1)


def msg(person: int, kind: Kind, **fields: object) -> Incoming:
    return Incoming(
        channel="telegram",
        sender=Sender(external_id=str(person), display_name=f"P{person}", language_code="zh-hans"),
        chat_id=str(person),
        kind=kind,
        update_id=str(next(_ids)),
        **fields,  # type: ignore[arg-type]
    )


def script(person: int, toggles: int) -> list[Incoming]:
    steps = [
        msg(person, Kind.COMMAND, command="start"),
        msg(person, Kind.CHOICE, choice="f:onboarding:consent:yes"),
        msg(person, Kind.CHOICE, choice="f:onboarding:language:zh"),
        msg(person, Kind.TEXT, text="春和"),
        msg(person, Kind.CHOICE, choice="f:onboarding:community:c1"),
        msg(person, Kind.TEXT, text="3栋"),
        msg(person, Kind.TEXT, text="13800138000"),
        msg(person, Kind.COMMAND, command="lawyer"),
        msg(person, Kind.TEXT, text="春和律师事务所"),
        msg(person, Kind.TEXT, text="12345678901234567"),
    ]
    toggle = itertools.cycle(["labour", "family", "injury", "elder"])
    steps += [msg(person, Kind.CHOICE, choice=f"f:lawyer:specialties:{next(toggle)}") for _ in range(toggles)]
    return steps


async def run_people(
    people: int, per_person: Callable[[int], Awaitable[list[float]]]
) -> tuple[float, list[float]]:
    start = time.perf_counter()
    results = await asyncio.gather(*(per_person(p) for p in range(people)))
    elapsed = time.perf_counter() - start
    return elapsed, [lat for r in results for lat in r]


async def open_loop(rate: float, total: int, step: Callable[[int], Awaitable[None]]) -> list[float]:
    """Start steps at Poisson arrival times; latency counts from the planned start."""
    rng = random.Random(7)
    latencies: list[float] = []
    start = time.perf_counter()
    planned = 0.0
    tasks = []

    async def one(i: int, at: float) -> None:
        await step(i)
        latencies.append(time.perf_counter() - (start + at))

    for i in range(total):
        planned += rng.expovariate(rate)
        delay = start + planned - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the load generator, not synchronising a test
        tasks.append(asyncio.create_task(one(i, planned)))
    await asyncio.gather(*tasks)
    return latencies


async def bench(url: str, label: str, people: int, toggles: int, rate: float) -> None:
    db = Database(url)
    await create_schema(db)
    async with db.transaction() as session:
        await demo.load(session)
    handler = Handler(db, Registry.build(FEATURES))
    scripts = {p: script(1000 + p, toggles) for p in range(people)}

    async def person(p: int) -> list[float]:
        out = []
        for incoming in scripts[p]:
            t0 = time.perf_counter()
            replies = await handler.handle(incoming)
            out.append(time.perf_counter() - t0)
            assert replies, incoming
        return out

    async def bare(p: int) -> list[float]:
        out = []
        for _ in scripts[p]:
            t0 = time.perf_counter()
            async with db.transaction() as session:
                await updates.claim(session, f"bare:{next(_ids)}")
            out.append(time.perf_counter() - t0)
        return out

    print(f"{label}: throughput, {people} people × {len(scripts[0])} steps at once")
    base_rate = report("baseline (bare transaction)", *await run_people(people, bare))
    dialog_rate = report("dialog steps", *await run_people(people, person))
    print(f"  dialog / baseline rate: {dialog_rate / base_rate:.2f}")

    print(f"{label}: latency, one step at a time")
    scripts[5000] = script(5000, toggles * 10)
    base_rate = report("baseline (bare transaction)", *await run_people(1, lambda _: bare(5000)))
    lat_rate = report("dialog steps", *await run_people(1, lambda _: person(5000)))
    print(f"  dialog / baseline rate: {lat_rate / base_rate:.2f}")

    print(f"{label}: open loop, {rate:.0f} steps/s offered")
    flat = [m for p in range(people) for m in script(9000 + p, toggles)]
    # People take turns, so each conversation still sees its own steps in order.
    by_person: dict[str, list[Incoming]] = {}
    for m in flat:
        by_person.setdefault(m.sender.external_id, []).append(m)
    order = [q for batch in zip(*by_person.values(), strict=False) for q in batch]

    async def dialog_step(i: int) -> None:
        await handler.handle(order[i])

    async def bare_step(i: int) -> None:
        async with db.transaction() as session:
            await updates.claim(session, f"open:{next(_ids)}")

    n = min(len(order), int(rate * 4))
    report("baseline (bare transaction)", None, await open_loop(rate, n, bare_step))
    report("dialog steps", None, await open_loop(rate, n, dialog_step))
    await db.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--toggles", type=int, default=30)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop steps/s")
    args = parser.parse_args()
    await on_databases(
        lambda url, label: bench(url, label, args.people, args.toggles, args.rate), postgres=args.postgres
    )


if __name__ == "__main__":
    asyncio.run(main())
