"""The nearest-K index agrees with brute-force haversine on random stations, with
kind and amenity filters, open-now and temporary closures, pages, a radius, and
after stations change (moved, closed, reopened, added)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from storage.geo import distance_km
from storage.stations import AMENITIES, KINDS, StationData, StationKind
from storage.stations_hours import SHANGHAI, parse_hours
from storage.stations_index import Query, StationIndex

SCHEDULES = [parse_hours(h) for h in ("24h", "daily 08:00-20:00", "daily 22:00-06:00", "mon-fri 09:00-17:00")]
T0 = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)


def _station(i: int, lat: float, lon: float, kind: int, amen: int, sched: int, closed: int) -> StationData:
    # closed: 0 open, 1 closed until further notice, 2 closed until T0-1h (over), 3 until T0+1h
    until = {2: T0 - timedelta(hours=1), 3: T0 + timedelta(hours=1)}.get(closed)
    return StationData(
        id=i + 1,
        ref=f"r{i}",
        kind=KINDS[kind],
        name=f"s{i}",
        address="",
        district="",
        latitude=lat,
        longitude=lon,
        amenities=tuple(a for b, a in enumerate(AMENITIES) if amen >> b & 1),
        hours=SCHEDULES[sched],
        phone="",
        note="",
        closed=closed != 0,
        closed_until=until,
        closed_reason="",
        sample=False,
        version=1,
    )


stations_st = st.lists(
    st.tuples(
        st.floats(-89.9, 89.9),
        st.floats(-180, 180),
        st.integers(0, 3),
        st.integers(0, 2 ** len(AMENITIES) - 1),
        st.integers(0, len(SCHEDULES) - 1),
        st.integers(0, 3),
    ),
    min_size=0,
    max_size=120,
)
query_st = st.builds(
    Query,
    latitude=st.floats(-90, 90),
    longitude=st.floats(-180, 180),
    k=st.integers(1, 7),
    offset=st.integers(0, 6),
    kinds=st.frozensets(st.sampled_from(list(StationKind)), max_size=2),
    amenities=st.lists(st.sampled_from(AMENITIES), max_size=2, unique=True).map(tuple),
    open_now=st.booleans(),
    at=st.sampled_from([T0, T0 + timedelta(hours=9), T0 + timedelta(days=3, hours=15)]),
    max_km=st.sampled_from([math.inf, 500.0, 5000.0]),
)


def brute(items: list[StationData], q: Query) -> list[tuple[float, int]]:
    at = q.at or T0
    out = []
    for s in items:
        if q.kinds and s.kind not in q.kinds:
            continue
        if not set(q.amenities) <= set(s.amenities):
            continue
        if q.open_now and not s.open_at(at.astimezone(SHANGHAI)):
            continue
        km = distance_km(q.latitude, q.longitude, s.latitude, s.longitude)
        if km <= q.max_km:
            out.append((km, s.id))
    out.sort()
    return out[q.offset : q.offset + q.k]


def agree(index: StationIndex, items: list[StationData], q: Query) -> None:
    got = [(h.km, h.station_id) for h in index.nearest(q)]
    want = brute(items, q)
    assert len(got) == len(want), (got, want)
    for (gk, gi), (wk, wi) in zip(got, want, strict=True):
        assert math.isclose(gk, wk, rel_tol=1e-6, abs_tol=1e-6), (got, want)
        if gi != wi:  # only a tie in distance may swap two stations
            assert math.isclose(dict((i, k) for k, i in want).get(gi, gk), wk, abs_tol=1e-6) or any(
                math.isclose(k, gk, abs_tol=1e-6) for k, i in want if i == gi
            ), (got, want)


@settings(max_examples=150, deadline=None)
@given(raw=stations_st, queries=st.lists(query_st, min_size=1, max_size=5))
def test_index_agrees_with_brute_force(raw: list[tuple], queries: list[Query]) -> None:
    items = [_station(i, *r) for i, r in enumerate(raw)]
    index = StationIndex(items)
    for q in queries:
        agree(index, items, q)


@settings(max_examples=60, deadline=None)
@given(
    raw=stations_st.filter(lambda r: len(r) > 3),
    changes=st.lists(
        st.tuples(
            st.integers(0, 1000),
            st.sampled_from(["move", "close", "reopen", "kind", "add"]),
            st.floats(-89, 89),
            st.floats(-179, 179),
        ),
        min_size=1,
        max_size=30,
    ),
    q=query_st,
)
def test_index_stays_correct_as_stations_change(raw: list[tuple], changes: list[tuple], q: Query) -> None:
    items = {s.id: s for s in (_station(i, *r) for i, r in enumerate(raw))}
    index = StationIndex(items.values())
    version = 1
    for n, what, lat, lon in changes:
        version += 1
        sid = list(items)[n % len(items)]
        s = items[sid]
        if what == "move":
            new = replace(s, latitude=lat, longitude=lon, version=version)
        elif what == "close":
            new = replace(s, closed=True, closed_until=None, version=version)
        elif what == "reopen":
            new = replace(s, closed=False, closed_until=None, version=version)
        elif what == "kind":
            new = replace(s, kind=KINDS[(KINDS.index(s.kind) + 1) % 4], version=version)
        else:
            new = replace(s, id=max(items) + 1, latitude=lat, longitude=lon, version=version)
        items[new.id] = new
        index.apply([new])
        assert index.version == version
    agree(index, list(items.values()), q)
    agree(StationIndex(items.values()), list(items.values()), q)


def test_many_moves_rebuild_the_tree_and_stay_correct() -> None:
    items = [_station(i, 30 + i * 1e-3, 114 + i * 1e-3, i % 4, i, i % 4, 0) for i in range(3000)]
    index = StationIndex(items)
    moved = [replace(s, latitude=s.latitude + 0.5, version=2) for s in items]
    index.apply(moved)
    q = Query(30.6, 114.1, k=5, at=T0)
    agree(index, moved, q)
    assert len(index) == 3000
