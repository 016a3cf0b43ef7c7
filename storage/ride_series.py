"""Recurring rides: the series and what each occurrence copies."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Text, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from storage.dialect import changed_one
from storage.models import utcnow
from storage.rides import NewRide


class RideSeries(SQLModel, table=True):
    """A recurring ride (weekly dialysis): each occurrence becomes its own Ride."""

    __tablename__ = "ride_series"

    id: int | None = Field(default=None, primary_key=True)
    booker_user_id: int = Field(foreign_key="users.id", index=True)
    # JSON of the ride fields every occurrence copies (rider, places, needs…).
    template: str = Field(sa_column=Column(Text, nullable=False))
    weekdays: str = Field(max_length=20)  # "0,2,4" = Monday, Wednesday, Friday
    time_of_day: str = Field(max_length=5)  # "08:30", Asia/Shanghai
    until: datetime
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class SeriesData:
    id: int
    booker_user_id: int
    template: NewRide  # pickup_at in it is the first occurrence
    weekdays: tuple[int, ...]  # 0 = Monday
    time_of_day: str  # "HH:MM" Asia/Shanghai
    until: datetime
    active: bool


def _template_json(new: NewRide) -> str:
    data: dict[str, Any] = asdict(new)
    data["pickup_at"] = new.pickup_at.isoformat()
    return json.dumps(data, ensure_ascii=False)


def _template(raw: str) -> NewRide:
    data = json.loads(raw)
    data["pickup_at"] = datetime.fromisoformat(data["pickup_at"])
    data["needs"] = tuple(data.get("needs", ()))
    return NewRide(**data)


def _data(row: RideSeries) -> SeriesData:
    assert row.id is not None
    return SeriesData(
        id=row.id,
        booker_user_id=row.booker_user_id,
        template=_template(row.template),
        weekdays=tuple(int(d) for d in row.weekdays.split(",") if d),
        time_of_day=row.time_of_day,
        until=row.until,
        active=row.active,
    )


async def create(
    session: AsyncSession, *, template: NewRide, weekdays: tuple[int, ...], time_of_day: str, until: datetime
) -> SeriesData:
    row = RideSeries(
        booker_user_id=template.booker_user_id,
        template=_template_json(template),
        weekdays=",".join(str(d) for d in sorted(set(weekdays))),
        time_of_day=time_of_day,
        until=until,
    )
    session.add(row)
    await session.flush()
    return _data(row)


async def get(session: AsyncSession, series_id: int) -> SeriesData | None:
    row = await session.get(RideSeries, series_id)
    return None if row is None else _data(row)


async def active(session: AsyncSession) -> list[SeriesData]:
    rows = (await session.execute(select(RideSeries).where(col(RideSeries.active)))).scalars()
    return [_data(r) for r in rows]


async def stop(session: AsyncSession, *, series_id: int, booker_user_id: int) -> bool:
    return await changed_one(
        session,
        update(RideSeries)
        .where(col(RideSeries.id) == series_id, col(RideSeries.booker_user_id) == booker_user_id)
        .values(active=False),
    )


async def erase_person(session: AsyncSession, user_id: int) -> None:
    """/forget: the person's weekly rides stop, and the template (name, phone, places,
    note) is wiped so nothing can post them again."""
    rows = (await session.execute(select(RideSeries))).scalars()
    for row in rows:
        template = _template(row.template)
        if user_id not in (row.booker_user_id, template.rider_user_id):
            continue
        row.active = False
        row.template = _template_json(
            replace(
                template,
                rider_name="",
                rider_phone=None,
                pickup_text="",
                dest_text="",
                note="",
                pickup_lat=None,
                pickup_lon=None,
                dest_lat=None,
                dest_lon=None,
            )
        )
    await session.flush()
