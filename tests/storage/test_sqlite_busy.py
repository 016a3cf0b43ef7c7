"""Another process holding SQLite's write lock must not stop the event loop.

Linli's single SQLite connection waits for the write lock at BEGIN IMMEDIATE. The
in-loop driver shim used to wait there inside sqlite3 (up to the 30 s busy timeout), so
polling, sending and timers all stopped while e.g. ``linli admin`` held the lock.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.engine import Database

pytestmark = pytest.mark.slow  # seconds per test: outside the fast loop

HOLD = 2.0  # how long the other connection keeps the write lock, seconds
# A liveness bound, not a performance figure: before the fix the loop stopped for the
# whole HOLD; after it, each attempt blocks it for about 20 ms.
MAX_GAP = 0.5


def _hold_write_lock(path: Path, acquired: threading.Event, releasing: threading.Event) -> None:
    """Another writer (as ``linli admin`` in another process would be) for HOLD seconds."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (who) VALUES ('other')")
        acquired.set()
        time.sleep(HOLD)  # the other process's work, not synchronisation
        releasing.set()
        conn.execute("COMMIT")
    finally:
        conn.close()


@pytest.mark.parametrize("driver", ["inline", "aiosqlite"])
async def test_the_loop_runs_while_another_writer_holds_the_lock(tmp_path: Path, driver: str) -> None:
    path = tmp_path / "linli.db"
    db = Database(f"sqlite+aiosqlite:///{path}", sqlite_driver=driver)
    async with db.transaction() as session:
        await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT)"))

    acquired, releasing = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(path, acquired, releasing))
    holder.start()
    ticks: list[float] = []
    stop = asyncio.Event()

    async def tick() -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    try:
        await asyncio.to_thread(acquired.wait)
        start = time.monotonic()
        async with db.transaction() as session:  # BEGIN IMMEDIATE waits for the other writer
            await session.execute(text("INSERT INTO t (who) VALUES ('linli')"))
        end = time.monotonic()
        assert releasing.is_set()  # it did wait for the other writer
    finally:
        stop.set()
        await ticker
        await asyncio.to_thread(holder.join)

    during = [start, *(t for t in ticks if start < t < end), end]
    gaps = [b - a for a, b in itertools.pairwise(during)]
    assert max(gaps) < MAX_GAP, f"the loop stood still for {max(gaps):.2f} s"
    async with db.transaction() as session:
        rows = (await session.execute(text("SELECT who FROM t ORDER BY id"))).scalars().all()
    assert rows == ["other", "linli"]
    await db.dispose()


async def test_unknown_driver_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="LINLI_SQLITE_DRIVER"):
        Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", sqlite_driver="nope")


@pytest.mark.parametrize(("env", "module"), [(None, "storage.sqlite_inline"), ("aiosqlite", "aiosqlite")])
async def test_driver_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str | None, module: str
) -> None:
    if env is None:
        monkeypatch.delenv("LINLI_SQLITE_DRIVER", raising=False)
    else:
        monkeypatch.setenv("LINLI_SQLITE_DRIVER", env)
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    try:
        async with db.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            assert type(raw.driver_connection).__module__.startswith(module)
    finally:
        await db.dispose()
