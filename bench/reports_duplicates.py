"""The "same problem?" look-up with 100,000 open reports: p50/p99 per look-up.

    python bench/reports_duplicates.py              # SQLite
    python bench/reports_duplicates.py --postgres   # also PostgreSQL (a throwaway server)

Reports are spread over Wuhan's urban area (about 40 × 40 km) in 11 categories, all open
and filed within the last 14 days, plus hot spots where many reports of one kind sit close
together (a street of broken lights). Each look-up is the one the summary step runs:
`storage.reports.nearby_open` for a random category around a random point, in its own
transaction, as the dialog does.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert

from bench import common
from dialogs.reports.categories import CATEGORIES
from storage import reports
from storage.engine import Database
from storage.models import utcnow
from storage.reports import Report
from storage.schema import create_schema

SOUTH, NORTH, WEST, EAST = 30.40, 30.76, 114.10, 114.52


async def fill(db: Database, count: int, rng: random.Random) -> None:
    now = utcnow()
    keys = [c.key for c in CATEGORIES]
    hot = [(rng.uniform(SOUTH, NORTH), rng.uniform(WEST, EAST), rng.choice(keys)) for _ in range(50)]
    batch: list[dict[str, object]] = []
    for i in range(count):
        if i % 10 == 0:  # a tenth of them in hot spots, within ~150 m
            lat, lon, category = rng.choice(hot)
            lat, lon = lat + rng.uniform(-0.0013, 0.0013), lon + rng.uniform(-0.0015, 0.0015)
        else:
            lat, lon, category = rng.uniform(SOUTH, NORTH), rng.uniform(WEST, EAST), rng.choice(keys)
        created = now - timedelta(minutes=rng.uniform(0, 14 * 24 * 60))
        batch.append(
            {
                "category": category,
                "description": "",
                "latitude": lat,
                "longitude": lon,
                "address": "",
                "reporter_hidden": False,
                "reporter_gig": False,
                "caller_name": "",
                "status": rng.choice(["submitted", "accepted", "in_progress"]),
                "reason": "",
                "due_from": created,
                "accept_due": created + timedelta(hours=2),
                "resolve_due": created + timedelta(hours=24),
                "reopened": 0,
                "points": 0,
                "version": 0,
                "created_at": created,
                "updated_at": created,
            }
        )
        if len(batch) == 5000:
            async with db.transaction() as session:
                await session.execute(insert(Report), batch)
            batch = []
    if batch:
        async with db.transaction() as session:
            await session.execute(insert(Report), batch)


async def bench(url: str, label: str, *, count: int, lookups: int) -> None:
    db = Database(url)
    rng = random.Random(7)
    try:
        await create_schema(db)
        started = time.perf_counter()
        await fill(db, count, rng)
        print(f"{label}: {count:,} open reports inserted in {time.perf_counter() - started:.1f} s")
        latencies: list[float] = []
        found = 0
        since = utcnow() - timedelta(days=14)
        for _ in range(lookups):
            category = rng.choice(CATEGORIES)
            lat, lon = rng.uniform(SOUTH, NORTH), rng.uniform(WEST, EAST)
            t0 = time.perf_counter()
            async with db.transaction() as session:
                near = await reports.nearby_open(
                    session,
                    category=category.key,
                    latitude=lat,
                    longitude=lon,
                    metres=category.radius_m,
                    since=since,
                )
            latencies.append(time.perf_counter() - t0)
            found += bool(near)
        common.report(f"{label} look-up", sum(latencies), latencies, unit="lookups")
        print(f"  look-ups that found a nearby report: {found}/{lookups}")
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--reports", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=2_000)
    args = parser.parse_args()

    async def run(url: str, label: str) -> None:
        await bench(url, label, count=args.reports, lookups=args.lookups)

    asyncio.run(common.on_databases(run, postgres=args.postgres))


if __name__ == "__main__":
    main()
