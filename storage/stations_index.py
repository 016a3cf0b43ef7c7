"""The in-memory nearest-K index of rest stations, kept in step with the database.

Points are placed on the unit sphere (x, y, z): the straight-line (chord) distance
between two such points grows with their great-circle distance, so a k-d tree over
them (scipy's ``cKDTree``) finds exactly the stations nearest by haversine, anywhere
on the earth, with no projection error near the poles or the date line.

Filters (kinds, amenities, open now, temporarily closed) are checked on the
candidates in distance order; when they let few through, the tree is asked for more,
and when they let almost none through, the few that match are measured directly.

Changes: every station change carries a version (storage/stations.py). ``StationCache``
asks the database for rows newer than the version it holds, on each search, so
another process's change is seen on the next search. Attribute changes (closures,
hours, amenities) are applied in place; moved and new stations wait in a small list
that is measured directly until the tree is rebuilt.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from storage import stations as store
from storage.geo import EARTH_RADIUS_KM
from storage.stations import AMENITIES, KINDS, StationData, StationKind, amenity_mask
from storage.stations_hours import SHANGHAI, Hours

NO_LIMIT = math.inf
# Moved or new stations measured directly before the tree is rebuilt.
PENDING_LIMIT = 2048
# Below this share of matching stations, measure the matching ones directly.
DIRECT_SHARE = 0.002


def unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    phi, lam = np.radians(lat), np.radians(lon)
    cos_phi = np.cos(phi)
    return np.column_stack((cos_phi * np.cos(lam), cos_phi * np.sin(lam), np.sin(phi)))


def chord_to_km(chord: np.ndarray | float) -> Any:
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.asarray(chord) / 2.0))


def km_to_chord(km: float) -> float:
    if km == math.inf or km >= math.pi * EARTH_RADIUS_KM:
        return math.inf
    return float(2.0 * math.sin(km / (2.0 * EARTH_RADIUS_KM)))


@dataclass(frozen=True, slots=True)
class Query:
    """What a search asks for. ``at`` (aware) is the moment for open-now and closures."""

    latitude: float
    longitude: float
    k: int = 5
    offset: int = 0
    kinds: frozenset[StationKind] = frozenset()  # empty: every kind
    amenities: tuple[str, ...] = ()  # all of these
    open_now: bool = False
    at: datetime | None = None
    max_km: float = NO_LIMIT


@dataclass(frozen=True, slots=True)
class Hit:
    station_id: int
    km: float


class StationIndex:
    """Nearest-K over a snapshot of stations, with in-place updates."""

    def __init__(self, items: Iterable[StationData] = ()) -> None:
        self._slot: dict[int, int] = {}
        self._ids = np.zeros(0, dtype=np.int64)
        self._xyz = np.zeros((0, 3))
        self._kind = np.zeros(0, dtype=np.int8)
        self._amen = np.zeros(0, dtype=np.int32)
        self._hours_idx = np.zeros(0, dtype=np.int32)
        self._closed = np.zeros(0, dtype=bool)
        self._closed_until = np.zeros(0)  # epoch seconds; inf: until reopened
        self._alive = np.zeros(0, dtype=bool)
        self._hours: list[Hours] = []
        self._hours_by_text: dict[str, int] = {}
        self._tree_size = 0  # slots below this are in the tree; the rest are pending
        self._tree: cKDTree | None = None
        self.version = 0
        self.load(list(items))

    @classmethod
    def from_arrays(
        cls,
        ids: np.ndarray,
        lat: np.ndarray,
        lon: np.ndarray,
        *,
        kinds: np.ndarray | None = None,
        amenities: np.ndarray | None = None,
        hours: Hours | None = None,
    ) -> StationIndex:
        """A bare index for benchmarks: one schedule, no closures."""
        index = cls()
        n = len(ids)
        index._ids = np.asarray(ids, dtype=np.int64)
        index._xyz = unit_vectors(np.asarray(lat, float), np.asarray(lon, float))
        index._kind = np.zeros(n, np.int8) if kinds is None else np.asarray(kinds, np.int8)
        index._amen = np.zeros(n, np.int32) if amenities is None else np.asarray(amenities, np.int32)
        index._hours = [hours or Hours(tuple(((0, 1440),) for _ in range(7)))]
        index._hours_idx = np.zeros(n, np.int32)
        index._closed = np.zeros(n, bool)
        index._closed_until = np.zeros(n)
        index._alive = np.ones(n, bool)
        index._slot = {int(i): s for s, i in enumerate(index._ids)}
        index._rebuild_tree()
        return index

    def __len__(self) -> int:
        return int(self._alive.sum())

    # -- building and changing ----------------------------------------------------

    def load(self, items: Sequence[StationData]) -> None:
        """Replace everything with these stations."""
        self._slot = {}
        self._hours, self._hours_by_text = [], {}
        n = len(items)
        self._ids = np.fromiter((s.id for s in items), np.int64, n)
        lat = np.fromiter((s.latitude for s in items), float, n)
        lon = np.fromiter((s.longitude for s in items), float, n)
        self._xyz = unit_vectors(lat, lon) if n else np.zeros((0, 3))
        self._kind = np.fromiter((KINDS.index(s.kind) for s in items), np.int8, n)
        self._amen = np.fromiter((amenity_mask(s.amenities) for s in items), np.int32, n)
        self._hours_idx = np.fromiter((self._hours_slot(s.hours) for s in items), np.int32, n)
        self._closed = np.fromiter((s.closed for s in items), bool, n)
        self._closed_until = np.fromiter((_epoch(s.closed_until) for s in items), float, n)
        self._alive = np.ones(n, bool)
        self._slot = {s.id: i for i, s in enumerate(items)}
        self.version = max((s.version for s in items), default=0)
        self._rebuild_tree()

    def apply(self, changes: Sequence[StationData]) -> None:
        """Bring changed and new stations in (from ``storage.stations.changes_since``)."""
        moved: list[StationData] = []
        for s in changes:
            slot = self._slot.get(s.id)
            if slot is not None and self._same_point(slot, s):
                self._set_attributes(slot, s)
            else:
                if slot is not None:
                    self._alive[slot] = False
                moved.append(s)
            self.version = max(self.version, s.version)
        if moved:
            self._append(moved)
        pending = len(self._ids) - self._tree_size
        dead = int((~self._alive).sum())
        if pending > PENDING_LIMIT or dead > max(PENDING_LIMIT, len(self._ids) // 10):
            self._compact()

    def _same_point(self, slot: int, s: StationData) -> bool:
        # Equal up to rounding (a few µm on Earth): np.allclose's default tolerance is
        # about 6 cm, so a smaller move kept the old point and its distance.
        point = unit_vectors(np.array([s.latitude]), np.array([s.longitude]))[0]
        return bool(np.allclose(self._xyz[slot], point, rtol=0.0, atol=1e-12))

    def _set_attributes(self, slot: int, s: StationData) -> None:
        self._kind[slot] = KINDS.index(s.kind)
        self._amen[slot] = amenity_mask(s.amenities)
        self._hours_idx[slot] = self._hours_slot(s.hours)
        self._closed[slot] = s.closed
        self._closed_until[slot] = _epoch(s.closed_until)

    def _append(self, items: list[StationData]) -> None:
        start = len(self._ids)
        n = len(items)
        lat = np.array([s.latitude for s in items], float)
        lon = np.array([s.longitude for s in items], float)
        self._ids = np.concatenate((self._ids, np.array([s.id for s in items], np.int64)))
        self._xyz = np.vstack((self._xyz, unit_vectors(lat, lon)))
        self._kind = np.concatenate((self._kind, np.zeros(n, np.int8)))
        self._amen = np.concatenate((self._amen, np.zeros(n, np.int32)))
        self._hours_idx = np.concatenate((self._hours_idx, np.zeros(n, np.int32)))
        self._closed = np.concatenate((self._closed, np.zeros(n, bool)))
        self._closed_until = np.concatenate((self._closed_until, np.zeros(n)))
        self._alive = np.concatenate((self._alive, np.ones(n, bool)))
        for i, s in enumerate(items):
            self._slot[s.id] = start + i
            self._set_attributes(start + i, s)

    def _compact(self) -> None:
        keep = np.nonzero(self._alive)[0]
        for name in ("_ids", "_xyz", "_kind", "_amen", "_hours_idx", "_closed", "_closed_until", "_alive"):
            setattr(self, name, getattr(self, name)[keep])
        self._slot = {int(i): s for s, i in enumerate(self._ids)}
        self._rebuild_tree()

    def _rebuild_tree(self) -> None:
        self._tree_size = len(self._ids)
        self._tree = cKDTree(self._xyz, balanced_tree=False, compact_nodes=False) if self._tree_size else None

    def _hours_slot(self, hours: Hours) -> int:
        key = hours.text()
        slot = self._hours_by_text.get(key)
        if slot is None:
            slot = self._hours_by_text[key] = len(self._hours)
            self._hours.append(hours)
        return slot

    # -- searching ----------------------------------------------------------------

    def nearest(self, q: Query) -> list[Hit]:
        """The stations nearest to the point that pass the filters, nearest first:
        ``q.k`` of them after skipping ``q.offset``."""
        want = q.offset + q.k
        if want <= 0 or not len(self._ids):
            return []
        point = unit_vectors(np.array([q.latitude]), np.array([q.longitude]))[0]
        radius = km_to_chord(q.max_km)
        check = self._checker(q)
        hits = self._from_tree(point, want, radius, check)
        pending = np.arange(self._tree_size, len(self._ids))
        if len(pending):
            hits += self._direct(point, pending, radius, check)
            hits.sort()
        return [Hit(int(self._ids[slot]), float(chord_to_km(d))) for d, slot in hits[q.offset : want]]

    def _checker(self, q: Query) -> _Check:
        required = amenity_mask(q.amenities)
        kinds = np.array(sorted(KINDS.index(k) for k in q.kinds), np.int8) if q.kinds else None
        open_by_schedule = None
        now_epoch = None
        if q.open_now:
            at = (q.at or datetime.now(SHANGHAI)).astimezone(SHANGHAI)
            minute = at.hour * 60 + at.minute
            open_by_schedule = np.array([h.is_open_at(at.weekday(), minute) for h in self._hours], bool)
            now_epoch = at.timestamp()
        return _Check(self, kinds, required, open_by_schedule, now_epoch)

    def _from_tree(
        self, point: np.ndarray, want: int, radius: float, check: _Check
    ) -> list[tuple[float, int]]:
        if self._tree is None:
            return []
        n = self._tree_size
        asked = want if check.trivial else want * 4
        while True:
            asked = min(asked, n)
            if not check.trivial and asked > 64 * want and check.share(n) < DIRECT_SHARE:
                return self._direct(point, np.arange(n), radius, check)[:want]
            dist, slots = self._tree.query(point, k=asked, distance_upper_bound=radius)
            dist, slots = np.atleast_1d(dist), np.atleast_1d(slots)
            inside = slots < n
            dist, slots = dist[inside], slots[inside]
            ok = check.mask(slots)
            found = list(zip(dist[ok].tolist(), slots[ok].tolist(), strict=True))
            # Done when enough passed, or the tree has nothing more within the radius.
            if len(found) >= want or asked >= n or len(slots) < asked:
                return found[:want]
            asked *= 4

    def _direct(
        self, point: np.ndarray, slots: np.ndarray, radius: float, check: _Check
    ) -> list[tuple[float, int]]:
        slots = slots[check.mask(slots)]
        if not len(slots):
            return []
        chord = np.linalg.norm(self._xyz[slots] - point, axis=1)
        inside = chord <= radius
        order = np.argsort(chord[inside], kind="stable")
        return list(zip(chord[inside][order].tolist(), slots[inside][order].tolist(), strict=True))


@dataclass(slots=True)
class _Check:
    index: StationIndex
    kinds: np.ndarray | None
    required: int
    open_by_schedule: np.ndarray | None
    now_epoch: float | None

    @property
    def trivial(self) -> bool:
        return self.kinds is None and not self.required and self.open_by_schedule is None

    def mask(self, slots: np.ndarray) -> np.ndarray:
        ix = self.index
        ok = ix._alive[slots].copy()
        if self.kinds is not None:
            ok &= np.isin(ix._kind[slots], self.kinds)
        if self.required:
            ok &= (ix._amen[slots] & self.required) == self.required
        if self.open_by_schedule is not None and self.now_epoch is not None:
            ok &= self.open_by_schedule[ix._hours_idx[slots]]
            ok &= ~(ix._closed[slots] & (self.now_epoch < ix._closed_until[slots]))
        return ok

    def share(self, n: int) -> float:
        """The share of the tree's stations that pass (one vectorised pass)."""
        return float(self.mask(np.arange(n)).mean()) if n else 0.0


def _epoch(when: datetime | None) -> float:
    return math.inf if when is None else when.timestamp()


# -- keeping one index per database, in step with it ------------------------------------


class StationCache:
    """The index of one database, brought up to date before each search."""

    def __init__(self) -> None:
        self.index = StationIndex()
        self.names: dict[int, StationData] = {}  # for name search and result cards
        self._lock = asyncio.Lock()
        self._loaded = False

    async def fresh(self, session: store.AsyncSession) -> StationIndex:
        async with self._lock:
            newest = await store.newest_version(session)
            if self._loaded and newest == self.index.version:
                return self.index
            if not self._loaded or newest < self.index.version:  # first use, or a restored database
                items = await store.changes_since(session, 0)
                self.index = StationIndex(items)
                self.names = {s.id: s for s in items}
                self._loaded = True
            else:
                changes = await store.changes_since(session, self.index.version)
                self.index.apply(changes)
                self.names.update((s.id, s) for s in changes)
            return self.index


_CACHES: weakref.WeakKeyDictionary[Any, StationCache] = weakref.WeakKeyDictionary()


def cache_for(session: store.AsyncSession) -> StationCache:
    """The cache of the database this session talks to (one per engine, dropped with it)."""
    bind = session.bind
    engine = getattr(bind, "engine", bind)
    key = getattr(engine, "sync_engine", engine)
    cache = _CACHES.get(key)
    if cache is None:
        cache = _CACHES[key] = StationCache()
    return cache


async def search(session: store.AsyncSession, q: Query) -> list[tuple[StationData, float]]:
    """Nearest stations with their data, from an index that is up to date."""
    cache = cache_for(session)
    index = await cache.fresh(session)
    hits = index.nearest(q)
    return [(cache.names[h.station_id], h.km) for h in hits if h.station_id in cache.names]


async def known_stations(session: store.AsyncSession) -> list[StationData]:
    """Every station (from the up-to-date cache), for name search."""
    cache = cache_for(session)
    await cache.fresh(session)
    return list(cache.names.values())


__all__ = ["AMENITIES", "Hit", "Query", "StationCache", "StationIndex", "cache_for", "search"]
