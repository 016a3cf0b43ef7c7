"""Claim latency with 50 drivers pressing "claim" on the same ride at once.

For each of N rides, 50 claimers start together; each press is one transaction
(storage.rides.claim: read, conditional UPDATE, event, commit), and its latency counts
from the common start to its commit, so waiting for the row lock or for SQLite's one
writer is included: it is what a driver waits for. Beside it, in the same run, the
baseline: 50 bare transactions started together (claim an update id, commit) through
the same engine. A third line runs the same presses through the whole handler (person,
conversation, role check, claim, group edit, private details and the parties' news in
the outbox) as real group button presses.

    python bench/claim.py                    # SQLite
    python bench/claim.py --postgres         # also PostgreSQL (starts a throwaway server)
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from dialogs.features import FEATURES
from dialogs.messages import ChatKind, Incoming, Kind, Sender
from handlers.entry import Handler
from handlers.registry import Registry
from storage import rides, updates, users
from storage.data import Role
from storage.engine import Database
from storage.models import utcnow
from storage.rides import ClaimResult, NewRide
from storage.schema import create_schema
from tests.storage.test_ride_claim_race import announce_delivered

GROUP = "-100900"
_ids = itertools.count(1)


async def setup(db: Database, drivers: int, count: int) -> tuple[list[int], list[int]]:
    async with db.transaction() as session:
        booker = await users.ensure_user(
            session, channel="telegram", external_id="1", chat_id="1", client_language="zh"
        )
        driver_ids = []
        for n in range(drivers):
            ext = str(5000 + n)
            user = await users.ensure_user(
                session, channel="telegram", external_id=ext, chat_id=ext, client_language="zh"
            )
            await users.grant_role(session, user.id, Role.DRIVER)
            driver_ids.append(user.id)
        group = await rides.bind_group(
            session, channel="telegram", chat_id=GROUP, title="司机群", community_ids=[], bound_by=booker.id
        )
        ride_ids = []
        for _ in range(count):
            ride = await rides.create(
                session,
                NewRide(
                    booker_user_id=booker.id,
                    rider_user_id=booker.id,
                    rider_name="王奶奶",
                    rider_phone="+8613812345678",
                    pickup_text="春和社区3栋",
                    dest_text="武汉市中心医院",
                    pickup_at=utcnow() + timedelta(hours=1),
                ),
                group_id=group.id,
            )
            ride_ids.append(ride.id)
    return driver_ids, ride_ids


async def rounds(count: int, claimers: int, press: Callable[[int, int], Awaitable[None]]) -> list[float]:
    """``count`` rounds of ``claimers`` presses started together; latency from the round's start."""
    latencies: list[float] = []
    for r in range(count):
        start = time.perf_counter()

        async def one(c: int, r: int = r, start: float = start) -> None:
            await press(r, c)
            latencies.append(time.perf_counter() - start)

        await asyncio.gather(*(one(c) for c in range(claimers)))
    return latencies


def report(name: str, latencies: list[float], elapsed: float) -> float:
    return common.report(name, elapsed, latencies, unit="presses")


async def timed(fn: Callable[[], Awaitable[list[float]]]) -> tuple[list[float], float]:
    start = time.perf_counter()
    latencies = await fn()
    return latencies, time.perf_counter() - start


async def bench(url: str, label: str, claimers: int, count: int) -> None:
    db = Database(url)
    await create_schema(db)
    driver_ids, ride_ids = await setup(db, claimers, count * 2)
    storage_rides, handler_rides = ride_ids[:count], ride_ids[count:]
    outcomes: Counter[ClaimResult] = Counter()

    async def bare(r: int, c: int) -> None:
        async with db.transaction() as session:
            await updates.claim(session, f"bare:{next(_ids)}")

    async def claim(r: int, c: int) -> None:
        async with db.transaction() as session:
            outcomes[await rides.claim(session, ride_id=storage_rides[r], driver_user_id=driver_ids[c])] += 1

    handler = Handler(db, Registry.build(FEATURES))
    # A claim counts only when pressed on the ride's post, as delivered to the group.
    posts = await announce_delivered(db, handler_rides)

    async def handled(r: int, c: int) -> None:
        incoming = Incoming(
            channel="telegram",
            sender=Sender(external_id=str(5000 + c), display_name=f"司机{c}", language_code="zh-hans"),
            chat_id=GROUP,
            chat_kind=ChatKind.GROUP,
            kind=Kind.CHOICE,
            update_id=f"bench-{next(_ids)}",
            choice=f"a:claim:{handler_rides[r]}",
            message_ref=posts[handler_rides[r]],
        )
        await handler.handle(incoming)

    print(f"{label}: {claimers} claimers at once on each of {count} rides")
    base = report("baseline (bare transaction)", *await timed(lambda: rounds(count, claimers, bare)))
    store = report("claim (storage, one tx per press)", *await timed(lambda: rounds(count, claimers, claim)))
    full = report("claim through the handler", *await timed(lambda: rounds(count, claimers, handled)))
    print(f"  claim / baseline rate: {store / base:.2f}   handler / baseline rate: {full / base:.2f}")
    assert outcomes[ClaimResult.WON] == count, outcomes  # one winner per ride, still
    assert outcomes[ClaimResult.TAKEN] == count * (claimers - 1), outcomes
    await db.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--claimers", type=int, default=50)
    parser.add_argument("--rides", type=int, default=100)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    await common.on_databases(
        lambda url, label: bench(url, label, args.claimers, args.rides), postgres=args.postgres
    )


if __name__ == "__main__":
    asyncio.run(main())
