"""Rest stations for outdoor workers: the table, the record operations, the version
counter the in-memory index follows, and the last search a person chose to keep.

Coordinates are WGS-84. Every change to a station takes the next value of one
counter (``stations_meta.version``, bumped in the changing transaction, which holds
its row lock until commit) and stamps the row with it, so any process can bring its
index up to date with ``changes_since(version)`` — see storage/stations_index.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, Text, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from storage.dialect import upsert_insert
from storage.models import utcnow
from storage.stations_hours import Hours, parse_hours


class StationKind(StrEnum):
    OUTDOOR = "outdoor"  # 户外劳动者驿站 / 户外工作者驿站
    DRIVER = "driver"  # 网约车司机之家
    TRUCK = "truck"  # 货车司机之家
    CANTEEN = "canteen"  # 小哥食堂


KINDS: tuple[StationKind, ...] = tuple(StationKind)
KIND_NAMES_ZH = {
    StationKind.OUTDOOR: ("户外劳动者驿站", "户外工作者驿站", "驿站"),
    StationKind.DRIVER: ("网约车司机之家", "司机之家"),
    StationKind.TRUCK: ("货车司机之家",),
    StationKind.CANTEEN: ("小哥食堂", "食堂"),
}

# Bit positions in the index are the order here: append, never reorder.
AMENITIES: tuple[str, ...] = (
    "water",  # drinking water
    "hot_water",
    "microwave",
    "phone_charge",
    "ebike_charge",  # e-bike charging or battery swap
    "toilet",
    "seats",
    "aircon",
    "first_aid",
    "shower",
    "truck_parking",
    "meals",  # cheap meals
)
AMENITY_NAMES_ZH = {
    "water": ("饮用水", "饮水", "喝水"),
    "hot_water": ("热水",),
    "microwave": ("微波炉", "热饭"),
    "phone_charge": ("手机充电", "充电"),
    "ebike_charge": ("电动车充电", "换电", "电瓶充电", "电单车充电"),
    "toilet": ("厕所", "卫生间", "洗手间"),
    "seats": ("座椅", "休息座椅", "座位"),
    "aircon": ("空调",),
    "first_aid": ("急救箱", "药箱", "急救"),
    "shower": ("淋浴", "洗澡"),
    "truck_parking": ("货车停车", "停车场"),
    "meals": ("平价餐", "餐食", "吃饭"),
}


def amenity_mask(amenities: Sequence[str]) -> int:
    mask = 0
    for name in amenities:
        mask |= 1 << AMENITIES.index(name)
    return mask


class Station(SQLModel, table=True):
    __tablename__ = "stations"
    __table_args__ = (Index("ix_stations_version", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    # The operator's own key (import updates the station with the same ref).
    ref: str = Field(max_length=64, unique=True)
    kind: str = Field(max_length=16)
    name: str = Field(max_length=100)
    address: str = Field(default="", max_length=200)
    district: str = Field(default="", max_length=50)
    latitude: float  # WGS-84
    longitude: float
    amenities: str = Field(default="", max_length=300)  # names from AMENITIES, comma-separated
    hours: str = Field(max_length=300)  # canonical text (storage.stations_hours)
    phone: str = Field(default="", max_length=40)
    note: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    # Temporarily closed: until ``closed_until`` (None: until staff reopen it).
    closed: bool = False
    closed_until: datetime | None = None
    closed_reason: str = Field(default="", max_length=200)
    # Sample data shipped with Linli (not real stations).
    sample: bool = False
    version: int = Field(default=0)
    updated_at: datetime = Field(default_factory=utcnow)
    # The staff member who last changed it in chat (cleared by /forget).
    updated_by: int | None = Field(default=None, foreign_key="users.id")


class StationsMeta(SQLModel, table=True):
    """One row: the newest station version handed out."""

    __tablename__ = "stations_meta"

    id: int = Field(default=1, primary_key=True)
    version: int = Field(default=0)


class StationSearch(SQLModel, table=True):
    """The last place and filters a person searched with, so /stations can offer
    "near <place> again". One row per person; /forget deletes it."""

    __tablename__ = "station_searches"

    user_id: int = Field(primary_key=True, foreign_key="users.id")
    place: str = Field(default="", max_length=100)
    latitude: float
    longitude: float
    kinds: str = Field(default="", max_length=100)
    amenities: str = Field(default="", max_length=300)
    searched_at: datetime = Field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class NewStation:
    """A station as an import or the sample data states it (already validated)."""

    ref: str
    kind: StationKind
    name: str
    latitude: float
    longitude: float
    hours: Hours
    address: str = ""
    district: str = ""
    amenities: tuple[str, ...] = ()
    phone: str = ""
    note: str = ""
    closed: bool = False
    closed_until: datetime | None = None
    closed_reason: str = ""
    sample: bool = False


@dataclass(frozen=True, slots=True)
class StationData:
    id: int
    ref: str
    kind: StationKind
    name: str
    address: str
    district: str
    latitude: float
    longitude: float
    amenities: tuple[str, ...]
    hours: Hours
    phone: str
    note: str
    closed: bool
    closed_until: datetime | None
    closed_reason: str
    sample: bool
    version: int

    def closed_at(self, now: datetime) -> bool:
        """Temporarily closed at ``now`` (an aware datetime)."""
        return self.closed and (self.closed_until is None or now < self.closed_until)

    def open_at(self, now: datetime) -> bool:
        return not self.closed_at(now) and self.hours.is_open(now)


@dataclass(frozen=True, slots=True)
class SearchData:
    place: str
    latitude: float
    longitude: float
    kinds: tuple[str, ...]
    amenities: tuple[str, ...]
    searched_at: datetime


@dataclass(frozen=True, slots=True)
class ImportResult:
    created: int = 0
    updated: int = 0


def auto_ref(kind: str, name: str, latitude: float, longitude: float) -> str:
    """A stable ref for rows that bring none: the same station imported twice is one."""
    digest = hashlib.blake2b(
        f"{kind}|{name}|{latitude:.5f}|{longitude:.5f}".encode(), digest_size=8
    ).hexdigest()
    return f"auto-{digest}"


def _split(raw: str) -> tuple[str, ...]:
    return tuple(a for a in raw.split(",") if a)


def to_data(row: Any) -> StationData:
    """A ``Station`` row (or a result row with its columns) → ``StationData``."""
    return StationData(
        id=row.id,
        ref=row.ref,
        kind=StationKind(row.kind),
        name=row.name,
        address=row.address,
        district=row.district,
        latitude=row.latitude,
        longitude=row.longitude,
        amenities=_split(row.amenities),
        hours=parse_hours(row.hours),
        phone=row.phone,
        note=row.note,
        closed=bool(row.closed),
        closed_until=row.closed_until,
        closed_reason=row.closed_reason,
        sample=bool(row.sample),
        version=row.version,
    )


def _columns(new: NewStation) -> dict[str, Any]:
    return {
        "ref": new.ref,
        "kind": new.kind.value,
        "name": new.name,
        "address": new.address,
        "district": new.district,
        "latitude": new.latitude,
        "longitude": new.longitude,
        "amenities": ",".join(a for a in AMENITIES if a in new.amenities),
        "hours": new.hours.text(),
        "phone": new.phone,
        "note": new.note,
        "closed": new.closed,
        "closed_until": new.closed_until,
        "closed_reason": new.closed_reason,
        "sample": new.sample,
    }


# -- the version counter ------------------------------------------------------------


async def bump_version(session: AsyncSession) -> int:
    """The next version, for the rows this transaction changes. The UPDATE locks the
    counter row until commit, so versions commit in the order they are handed out."""
    stmt = (
        update(StationsMeta)
        .where(col(StationsMeta.id) == 1)
        .values(version=col(StationsMeta.version) + 1)
        .returning(col(StationsMeta.version))
    )
    version = (await session.execute(stmt)).scalar_one_or_none()
    if version is None:  # a schema made from the models (tests) has no row yet
        await session.execute(
            upsert_insert(session, StationsMeta).values(id=1, version=0).on_conflict_do_nothing()
        )
        version = (await session.execute(stmt)).scalar_one()
    return int(version)


async def newest_version(session: AsyncSession) -> int:
    found = (await session.execute(select(func.max(col(Station.version))))).scalar_one_or_none()
    return int(found or 0)


async def changes_since(session: AsyncSession, version: int) -> list[StationData]:
    rows = (
        (
            await session.execute(
                select(Station).where(col(Station.version) > version).order_by(col(Station.id))
            )
        )
        .scalars()
        .all()
    )
    return [to_data(r) for r in rows]


# -- records --------------------------------------------------------------------------


async def upsert_many(session: AsyncSession, stations: Sequence[NewStation]) -> ImportResult:
    """Create or update (by ref) all these stations in the caller's transaction."""
    if not stations:
        return ImportResult()
    version = await bump_version(session)
    now = utcnow()
    refs = [s.ref for s in stations]
    existing: dict[str, int] = {}
    for i in range(0, len(refs), 5000):
        chunk = refs[i : i + 5000]
        found = await session.execute(
            select(col(Station.ref), col(Station.id)).where(col(Station.ref).in_(chunk))
        )
        existing.update({ref: sid for ref, sid in found.all() if sid is not None})
    inserts, updates = [], []
    for s in stations:
        values = _columns(s) | {"version": version, "updated_at": now}
        if s.ref in existing:
            updates.append(values | {"id": existing[s.ref]})
        else:
            inserts.append(values)
    for i in range(0, len(inserts), 5000):
        await session.execute(insert(Station), inserts[i : i + 5000])
    for i in range(0, len(updates), 5000):
        await session.execute(update(Station), updates[i : i + 5000])
    return ImportResult(created=len(inserts), updated=len(updates))


async def get(session: AsyncSession, station_id: int) -> StationData | None:
    row = await session.get(Station, station_id)
    return None if row is None else to_data(row)


async def get_many(session: AsyncSession, ids: Sequence[int]) -> dict[int, StationData]:
    if not ids:
        return {}
    rows = (await session.execute(select(Station).where(col(Station.id).in_(list(ids))))).scalars().all()
    return {r.id: to_data(r) for r in rows if r.id is not None}


async def all_stations(session: AsyncSession) -> list[StationData]:
    rows = (await session.execute(select(Station).order_by(col(Station.id)))).scalars().all()
    return [to_data(r) for r in rows]


async def count(session: AsyncSession, *, sample: bool | None = None) -> int:
    stmt = select(func.count()).select_from(Station)
    if sample is not None:
        stmt = stmt.where(col(Station.sample) == sample)
    return int((await session.execute(stmt)).scalar_one())


async def _change(
    session: AsyncSession, station_id: int, by: int | None, **values: Any
) -> StationData | None:
    version = await bump_version(session)
    stmt = (
        update(Station)
        .where(col(Station.id) == station_id)
        .values(version=version, updated_at=utcnow(), updated_by=by, **values)
    )
    await session.execute(stmt)
    return await _fresh(session, station_id)


async def _fresh(session: AsyncSession, station_id: int) -> StationData | None:
    row = (await session.execute(select(Station).where(col(Station.id) == station_id))).scalar_one_or_none()
    if row is not None:
        await session.refresh(row)
    return None if row is None else to_data(row)


async def close(
    session: AsyncSession, station_id: int, *, until: datetime | None, reason: str, by: int | None
) -> StationData | None:
    """Mark temporarily closed until ``until`` (None: until reopened)."""
    return await _change(session, station_id, by, closed=True, closed_until=until, closed_reason=reason)


async def reopen(session: AsyncSession, station_id: int, *, by: int | None) -> StationData | None:
    return await _change(session, station_id, by, closed=False, closed_until=None, closed_reason="")


async def set_hours(
    session: AsyncSession, station_id: int, hours: Hours, *, by: int | None
) -> StationData | None:
    return await _change(session, station_id, by, hours=hours.text())


async def erase_editor(session: AsyncSession, user_id: int) -> None:
    """/forget: stations keep their state but no longer name who changed them.
    Not a station change for the index (nothing it holds), so no new version."""
    await session.execute(update(Station).where(col(Station.updated_by) == user_id).values(updated_by=None))


# -- the last search ------------------------------------------------------------------


async def remember_search(
    session: AsyncSession,
    user_id: int,
    *,
    place: str,
    latitude: float,
    longitude: float,
    kinds: Sequence[str],
    amenities: Sequence[str],
    now: datetime,
) -> None:
    row = await session.get(StationSearch, user_id)
    if row is None:
        row = StationSearch(user_id=user_id, latitude=latitude, longitude=longitude)
        session.add(row)
    row.place = place[:100]
    row.latitude, row.longitude = latitude, longitude
    row.kinds = ",".join(kinds)
    row.amenities = ",".join(amenities)
    row.searched_at = now
    await session.flush()


async def last_search(session: AsyncSession, user_id: int) -> SearchData | None:
    row = await session.get(StationSearch, user_id)
    if row is None:
        return None
    return SearchData(
        place=row.place,
        latitude=row.latitude,
        longitude=row.longitude,
        kinds=_split(row.kinds),
        amenities=_split(row.amenities),
        searched_at=row.searched_at,
    )


async def forget_search(session: AsyncSession, user_id: int) -> None:
    await session.execute(delete(StationSearch).where(col(StationSearch.user_id) == user_id))
