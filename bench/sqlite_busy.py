"""How long the event loop stands still while another process holds SQLite's write lock.

Another process (``linli admin …``, a second ``linli run``) takes the write lock and
keeps it for ``--hold`` seconds; meanwhile Linli's engine starts a write transaction
(BEGIN IMMEDIATE waits for the lock) and a ticker task on the same loop records a
timestamp every millisecond. Reported per driver: the longest gap between ticks while
the write waited (how long polling, sending and timers stood still), and how long the
write took. The driver is chosen by LINLI_SQLITE_DRIVER, so the script also runs on a
checkout from before that setting existed (it then measures the old in-loop shim).

    python bench/sqlite_busy.py                          # inline and aiosqlite, 5 rounds
    python bench/sqlite_busy.py --driver inline --hold 2
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text

from storage.engine import Database

HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT INTO t (who) VALUES ('other')")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


async def one_round(path: Path, hold: float) -> tuple[float, float, int]:
    db = Database(f"sqlite+aiosqlite:///{path}")
    async with db.transaction() as session:
        await session.execute(text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, who TEXT)"))
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, str(path), str(hold), stdout=asyncio.subprocess.PIPE
    )
    assert holder.stdout is not None
    assert (await holder.stdout.readline()).strip() == b"locked"
    ticks: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.001)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    start = time.perf_counter()
    async with db.transaction() as session:
        await session.execute(text("INSERT INTO t (who) VALUES ('linli')"))
    end = time.perf_counter()
    done.set()
    await ticker
    await holder.wait()
    await db.dispose()
    during = [start, *(t for t in ticks if start < t < end), end]
    longest = max(b - a for a, b in itertools.pairwise(during))
    return longest, end - start, len(during) - 2


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--driver", action="append", choices=["inline", "aiosqlite"])
    parser.add_argument("--hold", type=float, default=2.0, help="seconds the other process holds the lock")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"another process holds the write lock for {args.hold:.1f} s; {args.rounds} rounds per driver")
    for driver in args.driver or ["inline", "aiosqlite"]:
        os.environ["LINLI_SQLITE_DRIVER"] = driver
        results = []
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.rounds):
                results.append(await one_round(Path(tmp) / "bench.db", args.hold))
        worst = max(r[0] for r in results)
        waits = sorted(r[1] for r in results)
        ticks = min(r[2] for r in results)
        print(
            f"  {driver:<10} loop stood still up to {worst * 1000:7.1f} ms;"
            f" the write took {waits[0]:.2f}-{waits[-1]:.2f} s; at least {ticks} ticks while it waited"
        )


if __name__ == "__main__":
    asyncio.run(main())
