"""Nearest-K rest-station search at 1,000 / 100,000 / 1,000,000 stations, against
brute-force haversine over the same stations in the same run; and importing 100,000
stations from CSV (read + validate + write) into SQLite (and PostgreSQL with --postgres).

    python bench/stations.py [--postgres] [--queries 2000]

Stations are clustered like a city (Wuhan's districts, a Gaussian around each centre)
with random kinds, amenities and schedules; queries are random points in the same area.
Every indexed answer is checked against brute force for the queries brute force runs.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import on_databases, report
from storage import (
    schema,
    stations_io,
)
from storage import stations as store
from storage.engine import Database
from storage.geo import EARTH_RADIUS_KM
from storage.stations import AMENITIES, StationKind
from storage.stations_index import Query, StationIndex

CENTRES = [(30.60, 114.30), (30.59, 114.27), (30.55, 114.23), (30.55, 114.32), (30.63, 114.39),
           (30.51, 114.35), (30.49, 114.43), (30.63, 114.14), (30.38, 114.32), (30.85, 114.37)]  # fmt: skip


def city(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    which = rng.integers(0, len(CENTRES), n)
    centres = np.array(CENTRES)[which]
    lat = centres[:, 0] + rng.normal(0, 0.04, n)
    lon = centres[:, 1] + rng.normal(0, 0.05, n)
    return lat, lon


def brute_force(lat: np.ndarray, lon: np.ndarray, qlat: float, qlon: float, k: int) -> np.ndarray:
    """Haversine to every station (vectorised), then the k smallest: what no index does."""
    p1, p2 = np.radians(qlat), np.radians(lat)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon - qlon) / 2) ** 2
    km = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(1.0, a)))
    part = np.argpartition(km, k)[:k]
    return part[np.argsort(km[part])]


def bench_queries(n: int, queries: int, rng: np.random.Generator) -> None:
    lat, lon = city(n, rng)
    kinds = rng.integers(0, 4, n)
    amen = rng.integers(0, 2 ** len(AMENITIES), n)
    t0 = time.perf_counter()
    index = StationIndex.from_arrays(np.arange(n), lat, lon, kinds=kinds, amenities=amen)
    built = time.perf_counter() - t0
    print(f"\n{n:,} stations (index built in {built * 1000:.0f} ms)")
    qlat, qlon = city(queries, rng)
    lat_ix: list[float] = []
    for i in range(queries):
        t = time.perf_counter()
        index.nearest(Query(float(qlat[i]), float(qlon[i]), k=5))
        lat_ix.append(time.perf_counter() - t)
    report("k-d tree, K=5", None, lat_ix, unit="queries")
    filtered: list[float] = []
    for i in range(queries):
        q = Query(float(qlat[i]), float(qlon[i]), k=5, kinds=frozenset({StationKind.CANTEEN}),
                  amenities=("microwave", "phone_charge"))  # fmt: skip
        t = time.perf_counter()
        index.nearest(q)
        filtered.append(time.perf_counter() - t)
    report("k-d tree, K=5, kind + 2 amenities", None, filtered, unit="queries")
    brute_n = min(queries, max(20, 20_000_000 // n))
    lat_bf: list[float] = []
    for i in range(brute_n):
        t = time.perf_counter()
        want = brute_force(lat, lon, float(qlat[i]), float(qlon[i]), 5)
        lat_bf.append(time.perf_counter() - t)
        got = [h.station_id for h in index.nearest(Query(float(qlat[i]), float(qlon[i]), k=5))]
        assert got == want.tolist(), (got, want)
    report("brute-force haversine (numpy), K=5", None, lat_bf, unit="queries")


def csv_text(n: int) -> str:
    rnd = random.Random(7)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["ref", "kind", "name", "address", "district", "latitude", "longitude", "amenities", "hours"]
    )
    hours = ["24h", "daily 08:00-20:00", "mon-fri 22:00-06:00", "daily 10:30-13:30,16:30-20:00"]
    for i in range(n):
        c = rnd.choice(CENTRES)
        writer.writerow([
            f"b{i}", rnd.choice(["outdoor", "driver", "truck", "canteen"]), f"驿站{i}号", f"{i}号", "洪山区",
            f"{c[0] + rnd.gauss(0, 0.04):.6f}", f"{c[1] + rnd.gauss(0, 0.05):.6f}",
            ";".join(rnd.sample(AMENITIES, 3)), rnd.choice(hours),
        ])  # fmt: skip
    return out.getvalue()


async def bench_import(n: int, postgres: bool) -> None:
    text = csv_text(n)

    async def run(url: str, label: str) -> None:
        db = Database(url)
        try:
            await schema.upgrade(db)
            t0 = time.perf_counter()
            result = stations_io.read(text, name="b.csv")
            t1 = time.perf_counter()
            assert result.ok, result.errors[:3]
            async with db.transaction() as session:
                done = await store.upsert_many(session, result.stations)
            t2 = time.perf_counter()
            assert done.created == n
            print(f"  import {n:,} stations, {label:<10} read+validate {t1 - t0:5.2f} s, "
                  f"write {t2 - t1:5.2f} s, total {t2 - t0:5.2f} s")  # fmt: skip
        finally:
            await db.dispose()

    print(f"\nimport of {n:,} stations from CSV")
    await on_databases(run, postgres=postgres)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--sizes", default="1000,100000,1000000")
    args = parser.parse_args()
    rng = np.random.default_rng(11)
    for n in (int(s) for s in args.sizes.split(",")):
        bench_queries(n, args.queries, rng)
    asyncio.run(bench_import(100_000, args.postgres))


if __name__ == "__main__":
    main()
