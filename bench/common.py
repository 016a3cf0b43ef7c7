"""What the benchmarks share: printing a latency line, and running on SQLite then PostgreSQL."""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Awaitable, Callable


def report(name: str, elapsed: float | None, latencies: list[float], *, unit: str = "steps") -> float:
    """Print count, rate (unless elapsed is None: open-loop runs have no rate), p50 and p99."""
    lat = sorted(latencies)
    p50 = statistics.median(lat) * 1000
    p99 = lat[max(int(len(lat) * 0.99) - 1, 0)] * 1000
    rate = len(lat) / elapsed if elapsed else 0.0
    shown = f"{rate:>8.0f}/s" if elapsed else " " * 10
    print(f"  {name:<34} {len(lat):>6} {unit:<7} {shown}  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms")
    return rate


async def on_databases(bench: Callable[[str, str], Awaitable[None]], *, postgres: bool) -> None:
    """Run ``bench(url, label)`` on a temporary SQLite file, then on a throwaway PostgreSQL."""
    with tempfile.TemporaryDirectory() as tmp:
        await bench(f"sqlite+aiosqlite:///{tmp}/bench.db", "SQLite")
    if not postgres:
        return
    from tests.postgres_server import PostgresServer, find_pg_bindir

    bindir = find_pg_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL binaries not found")
    server = PostgresServer(bindir)
    server.start()
    try:
        await bench(server.create_database("bench"), "PostgreSQL")
    finally:
        server.stop()
