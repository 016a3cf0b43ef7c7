"""Rides: booking, the atomic claim, status changes, cancellation, rating, driver groups.

Every change that two people could race on is one conditional UPDATE: the first
wins, the database decides, and the loser is told what happened instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Index, UniqueConstraint, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from storage import bound_groups
from storage.bound_groups import BoundGroup
from storage.dialect import changed_one
from storage.models import utcnow


class RideStatus(StrEnum):
    POSTED = "posted"  # open: waiting for a driver to claim it
    CLAIMED = "claimed"
    ON_THE_WAY = "on_the_way"
    ARRIVED = "arrived"  # the driver is at the pickup point, waiting
    PICKED_UP = "picked_up"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    EXPIRED = "expired"  # nobody came and the time passed


ACTIVE_RIDE = (
    RideStatus.POSTED,
    RideStatus.CLAIMED,
    RideStatus.ON_THE_WAY,
    RideStatus.ARRIVED,
    RideStatus.PICKED_UP,
)
DRIVER_HAS_RIDE = (RideStatus.CLAIMED, RideStatus.ON_THE_WAY, RideStatus.ARRIVED, RideStatus.PICKED_UP)
# "Rider not there" only after the driver said "arrived at pickup" and waited this long.
NO_SHOW_WAIT = timedelta(minutes=5)
NEEDS = ("wheelchair", "walker", "companion", "stairs")


@dataclass(frozen=True, slots=True)
class NewRide:
    """What a booking says; storage fills in the rest."""

    booker_user_id: int
    rider_user_id: int | None
    rider_name: str
    rider_phone: str | None
    pickup_text: str
    dest_text: str
    pickup_at: datetime
    is_now: bool = False
    relation: str = "self"
    rider_agreed: bool = True
    community_id: int | None = None
    pickup_lat: float | None = None
    pickup_lon: float | None = None
    dest_lat: float | None = None
    dest_lon: float | None = None
    passengers: int = 1
    needs: tuple[str, ...] = ()
    note: str = ""
    series_id: int | None = None


@dataclass(frozen=True, slots=True)
class RideData:
    id: int
    booker_user_id: int
    rider_user_id: int | None
    rider_name: str
    rider_phone: str | None
    relation: str
    community_id: int | None
    pickup_text: str
    pickup_lat: float | None
    pickup_lon: float | None
    dest_text: str
    dest_lat: float | None
    dest_lon: float | None
    pickup_at: datetime
    is_now: bool
    passengers: int
    needs: tuple[str, ...]
    note: str
    status: RideStatus
    driver_user_id: int | None
    claimed_at: datetime | None
    group_id: int | None
    announced_at: datetime | None
    escalated_at: datetime | None
    late_cancel: bool
    rating: int | None
    series_id: int | None
    created_at: datetime
    arrived_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DriverGroupData:
    id: int
    channel: str
    chat_id: str
    title: str
    community_ids: frozenset[int]  # empty: every community
    # How an approved driver joins (an invite link staff gave when binding).
    invite_link: str = ""


class DriverGroup(BoundGroup, table=True):
    """A chat where volunteer drivers see ride requests and claim them."""

    __tablename__ = "driver_groups"
    __table_args__ = (UniqueConstraint("channel", "chat_id"),)

    invite_link: str = Field(default="", max_length=200)


class Ride(SQLModel, table=True):
    """A ride request, from booking through claim to completion and rating."""

    __tablename__ = "rides"
    __table_args__ = (
        # One occurrence per series and time, however often the generator runs.
        UniqueConstraint("series_id", "pickup_at"),
        Index("ix_rides_status_pickup", "status", "pickup_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    booker_user_id: int = Field(foreign_key="users.id", index=True)
    # The person riding; None when booked for someone without an account.
    rider_user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    rider_name: str = Field(default="", max_length=100)
    rider_phone: str | None = Field(default=None, max_length=20)
    relation: str = Field(default="self", max_length=30)  # self|family|neighbour|staff|other
    rider_agreed: bool = True  # the booker confirmed the rider agreed
    community_id: int | None = Field(default=None, foreign_key="communities.id")
    pickup_text: str = Field(default="", max_length=300)
    pickup_lat: float | None = None
    pickup_lon: float | None = None
    dest_text: str = Field(default="", max_length=300)
    dest_lat: float | None = None
    dest_lon: float | None = None
    pickup_at: datetime = Field(index=True)
    is_now: bool = False
    passengers: int = 1
    needs: str = Field(default="", max_length=100)  # "wheelchair,stairs"
    note: str = Field(default="", max_length=500)
    # requested → posted → claimed → on_the_way → picked_up → completed;
    # or cancelled / no_show / expired.
    status: str = Field(default="posted", max_length=12)
    driver_user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    claimed_at: datetime | None = None
    group_id: int | None = Field(default=None, foreign_key="driver_groups.id")
    announced_at: datetime | None = None
    escalated_at: datetime | None = None
    arrived_at: datetime | None = None
    finished_at: datetime | None = None
    cancel_reason: str = Field(default="", max_length=200)
    late_cancel: bool = False
    rating: int | None = None
    rating_comment: str = Field(default="", max_length=500)
    series_id: int | None = Field(default=None, foreign_key="ride_series.id", index=True)
    version: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class RideEvent(SQLModel, table=True):
    """Every change to a ride, who made it and why: the ride's history for staff."""

    __tablename__ = "ride_events"

    id: int | None = Field(default=None, primary_key=True)
    ride_id: int = Field(foreign_key="rides.id", index=True)
    at: datetime = Field(default_factory=utcnow)
    actor_user_id: int | None = Field(default=None, foreign_key="users.id")
    event: str = Field(max_length=20)  # posted|claimed|released|on_the_way|picked_up|…
    detail: str = Field(default="", max_length=300)


# Cancelling a claimed ride this close to pickup is recorded as late.
LATE_CANCEL = timedelta(hours=2)


def to_data(row: Ride) -> RideData:
    assert row.id is not None
    return RideData(
        id=row.id,
        booker_user_id=row.booker_user_id,
        rider_user_id=row.rider_user_id,
        rider_name=row.rider_name,
        rider_phone=row.rider_phone,
        relation=row.relation,
        community_id=row.community_id,
        pickup_text=row.pickup_text,
        pickup_lat=row.pickup_lat,
        pickup_lon=row.pickup_lon,
        dest_text=row.dest_text,
        dest_lat=row.dest_lat,
        dest_lon=row.dest_lon,
        pickup_at=row.pickup_at,
        is_now=row.is_now,
        passengers=row.passengers,
        needs=tuple(n for n in row.needs.split(",") if n),
        note=row.note,
        status=RideStatus(row.status),
        driver_user_id=row.driver_user_id,
        claimed_at=row.claimed_at,
        group_id=row.group_id,
        announced_at=row.announced_at,
        escalated_at=row.escalated_at,
        late_cancel=row.late_cancel,
        rating=row.rating,
        series_id=row.series_id,
        created_at=row.created_at,
        arrived_at=row.arrived_at,
    )


async def event(
    session: AsyncSession, ride_id: int, name: str, *, actor: int | None = None, detail: str = ""
) -> None:
    session.add(RideEvent(ride_id=ride_id, event=name, actor_user_id=actor, detail=detail[:300]))


async def create(session: AsyncSession, new: NewRide, *, group_id: int | None) -> RideData:
    row = Ride(
        booker_user_id=new.booker_user_id,
        rider_user_id=new.rider_user_id,
        rider_name=new.rider_name[:100],
        rider_phone=new.rider_phone,
        relation=new.relation,
        rider_agreed=new.rider_agreed,
        community_id=new.community_id,
        pickup_text=new.pickup_text[:300],
        pickup_lat=new.pickup_lat,
        pickup_lon=new.pickup_lon,
        dest_text=new.dest_text[:300],
        dest_lat=new.dest_lat,
        dest_lon=new.dest_lon,
        pickup_at=new.pickup_at,
        is_now=new.is_now,
        passengers=new.passengers,
        needs=",".join(new.needs),
        note=new.note[:500],
        status=RideStatus.POSTED.value,
        group_id=group_id,
        announced_at=utcnow(),
        series_id=new.series_id,
    )
    session.add(row)
    await session.flush()
    assert row.id is not None
    await event(session, row.id, "posted", actor=new.booker_user_id)
    return to_data(row)


async def get(session: AsyncSession, ride_id: int) -> RideData | None:
    row = await session.get(Ride, ride_id, populate_existing=True)
    return None if row is None else to_data(row)


class ClaimResult(StrEnum):
    WON = "won"
    TAKEN = "taken"  # another driver was first
    CLOSED = "closed"  # cancelled, expired or finished
    MISSING = "missing"
    OWN_RIDE = "own_ride"  # a driver cannot drive their own booking


async def claim(session: AsyncSession, *, ride_id: int, driver_user_id: int) -> ClaimResult:
    """The first claim wins: one conditional UPDATE, however many press at once.

    The update comes first so a winner costs one statement; only the others read
    the ride afterwards, to say why not.
    """
    won = await changed_one(
        session,
        update(Ride)
        .where(
            col(Ride.id) == ride_id,
            col(Ride.status) == RideStatus.POSTED.value,
            col(Ride.booker_user_id) != driver_user_id,
            or_(col(Ride.rider_user_id).is_(None), col(Ride.rider_user_id) != driver_user_id),
        )
        .values(
            status=RideStatus.CLAIMED.value,
            driver_user_id=driver_user_id,
            claimed_at=utcnow(),
            version=col(Ride.version) + 1,
            updated_at=utcnow(),
        ),
    )
    if won:
        await event(session, ride_id, "claimed", actor=driver_user_id)
        return ClaimResult.WON
    ride = await get(session, ride_id)
    if ride is None:
        return ClaimResult.MISSING
    if driver_user_id in (ride.booker_user_id, ride.rider_user_id):
        return ClaimResult.OWN_RIDE
    return ClaimResult.TAKEN if ride.status in DRIVER_HAS_RIDE else ClaimResult.CLOSED


async def _change(
    session: AsyncSession,
    ride_id: int,
    *,
    where: Sequence[ColumnElement[bool]],
    values: dict[str, Any],
    event_name: str,
    actor: int | None,
    detail: str = "",
) -> RideData | None:
    """One ride transition: a conditional UPDATE of the ride (``where`` states what must
    still be true), its event, and the ride as it is now; None if the condition no
    longer held (someone else was first, or the ride moved on)."""
    stmt = (
        update(Ride)
        .where(col(Ride.id) == ride_id, *where)
        .values(**values, updated_at=utcnow(), version=col(Ride.version) + 1)
    )
    if not await changed_one(session, stmt):
        return None
    await event(session, ride_id, event_name, actor=actor, detail=detail)
    return await get(session, ride_id)


def _status_in(*statuses: RideStatus) -> ColumnElement[bool]:
    return col(Ride.status).in_([s.value for s in statuses])


# Which status a driver may move their ride to, from which.
DRIVER_STEPS: dict[RideStatus, tuple[RideStatus, ...]] = {
    RideStatus.ON_THE_WAY: (RideStatus.CLAIMED,),
    RideStatus.ARRIVED: (RideStatus.CLAIMED, RideStatus.ON_THE_WAY),
    RideStatus.PICKED_UP: (RideStatus.CLAIMED, RideStatus.ON_THE_WAY, RideStatus.ARRIVED),
    RideStatus.COMPLETED: (RideStatus.PICKED_UP,),
    # Only after "arrived at pickup" and a wait (checked in driver_step).
    RideStatus.NO_SHOW: (RideStatus.ARRIVED,),
}


async def driver_step(
    session: AsyncSession, *, ride_id: int, driver_user_id: int, to: RideStatus, detail: str = ""
) -> RideData | None:
    """Move the driver's own ride forward; None if it is not theirs or not in a fitting state."""
    values: dict[str, Any] = {"status": to.value}
    where = [col(Ride.driver_user_id) == driver_user_id, _status_in(*DRIVER_STEPS[to])]
    if to in (RideStatus.COMPLETED, RideStatus.NO_SHOW):
        values["finished_at"] = utcnow()
    if to is RideStatus.ARRIVED:
        values["arrived_at"] = utcnow()
    if to is RideStatus.NO_SHOW:  # the driver waited at the pickup point first
        where.append(col(Ride.arrived_at) <= utcnow() - NO_SHOW_WAIT)
    return await _change(
        session,
        ride_id,
        where=where,
        values=values,
        event_name=to.value,
        actor=driver_user_id,
        detail=detail,
    )


async def release(
    session: AsyncSession, *, ride_id: int, driver_user_id: int, reason: str
) -> RideData | None:
    """The driver can't make it: the ride goes back to the group, open again."""
    return await _change(
        session,
        ride_id,
        where=[
            col(Ride.driver_user_id) == driver_user_id,
            _status_in(RideStatus.CLAIMED, RideStatus.ON_THE_WAY),
        ],
        values={
            "status": RideStatus.POSTED.value,
            "driver_user_id": None,
            "claimed_at": None,
            "announced_at": utcnow(),
            "escalated_at": None,
        },
        event_name="released",
        actor=driver_user_id,
        detail=reason,
    )


async def cancel(
    session: AsyncSession, *, ride_id: int, by_user_id: int, reason: str = ""
) -> RideData | None:
    """Cancel an active ride; claimed rides cancelled close to pickup are marked late."""
    ride = await get(session, ride_id)
    if ride is None or ride.status not in ACTIVE_RIDE:
        return None
    late = ride.status in DRIVER_HAS_RIDE and ride.pickup_at - utcnow() < LATE_CANCEL
    return await _change(
        session,
        ride_id,
        where=[_status_in(*ACTIVE_RIDE)],
        values={
            "status": RideStatus.CANCELLED.value,
            "cancel_reason": reason[:200],
            "late_cancel": late,
            "finished_at": utcnow(),
        },
        event_name="cancelled",
        actor=by_user_id,
        detail=reason,
    )


async def assign(
    session: AsyncSession, *, ride_id: int, driver_user_id: int, staff_user_id: int
) -> RideData | None:
    """Staff give an open ride to a driver directly."""
    return await _change(
        session,
        ride_id,
        where=[_status_in(RideStatus.POSTED)],
        values={"status": RideStatus.CLAIMED.value, "driver_user_id": driver_user_id, "claimed_at": utcnow()},
        event_name="assigned",
        actor=staff_user_id,
        detail=str(driver_user_id),
    )


def _rider_or_booker(user_id: int) -> ColumnElement[bool]:
    return or_(col(Ride.booker_user_id) == user_id, col(Ride.rider_user_id) == user_id)


async def rate(
    session: AsyncSession, *, ride_id: int, rater_user_id: int, rating: int, comment: str = ""
) -> RideData | None:
    """The rider (or booker) rates a completed ride once."""
    if not 1 <= rating <= 5:
        return None
    return await _change(
        session,
        ride_id,
        where=[_status_in(RideStatus.COMPLETED), col(Ride.rating).is_(None), _rider_or_booker(rater_user_id)],
        values={"rating": rating, "rating_comment": comment[:500]},
        event_name="rated",
        actor=rater_user_id,
        detail=str(rating),
    )


async def comment(session: AsyncSession, *, ride_id: int, rater_user_id: int, text: str) -> bool:
    return await changed_one(
        session,
        update(Ride)
        .where(
            col(Ride.id) == ride_id,
            _rider_or_booker(rater_user_id),
            col(Ride.rating).is_not(None),
        )
        .values(rating_comment=text[:500]),
    )


async def mark_announced(session: AsyncSession, ride_id: int, *, escalated: bool = False) -> None:
    values: dict[str, object] = {"announced_at": utcnow()}
    if escalated:
        values["escalated_at"] = utcnow()
    await session.execute(update(Ride).where(col(Ride.id) == ride_id).values(**values))


async def expire(session: AsyncSession, ride_id: int) -> bool:
    """An open ride whose time has long passed: nobody is coming any more."""
    expired = await _change(
        session,
        ride_id,
        where=[_status_in(RideStatus.POSTED)],
        values={"status": RideStatus.EXPIRED.value, "finished_at": utcnow()},
        event_name="expired",
        actor=None,
    )
    return expired is not None


async def for_person(session: AsyncSession, user_id: int, *, limit: int = 10) -> list[RideData]:
    """Rides someone booked or rides in, newest pickup first."""
    stmt = (
        select(Ride)
        .where(or_(col(Ride.booker_user_id) == user_id, col(Ride.rider_user_id) == user_id))
        .order_by(col(Ride.pickup_at).desc())
        .limit(limit)
    )
    return [to_data(r) for r in (await session.execute(stmt)).scalars()]


async def for_driver(session: AsyncSession, driver_user_id: int, *, limit: int = 10) -> list[RideData]:
    stmt = (
        select(Ride)
        .where(col(Ride.driver_user_id) == driver_user_id)
        .order_by(col(Ride.pickup_at).desc())
        .limit(limit)
    )
    return [to_data(r) for r in (await session.execute(stmt)).scalars()]


async def with_status(session: AsyncSession, statuses: Sequence[RideStatus]) -> list[RideData]:
    stmt = select(Ride).where(col(Ride.status).in_([s.value for s in statuses])).order_by(col(Ride.id))
    return [to_data(r) for r in (await session.execute(stmt)).scalars()]


async def recent_destinations(session: AsyncSession, user_id: int, *, limit: int = 3) -> list[str]:
    stmt = (
        select(col(Ride.dest_text), func.max(col(Ride.created_at)).label("last"))
        .where(or_(col(Ride.booker_user_id) == user_id, col(Ride.rider_user_id) == user_id))
        .group_by(col(Ride.dest_text))
        .order_by(func.max(col(Ride.created_at)).desc())
        .limit(limit)
    )
    return [text for text, _ in (await session.execute(stmt)).all() if text]


async def no_shows_since(
    session: AsyncSession, *, rider_user_id: int | None, rider_phone: str | None, since: datetime
) -> int:
    """How often this rider was not there when the driver came."""
    who = []
    if rider_user_id is not None:
        who.append(col(Ride.rider_user_id) == rider_user_id)
    if rider_phone:
        who.append(col(Ride.rider_phone) == rider_phone)
    if not who:
        return 0
    stmt = select(func.count()).where(
        col(Ride.status) == RideStatus.NO_SHOW.value, col(Ride.finished_at) >= since, or_(*who)
    )
    return int((await session.execute(stmt)).scalar_one())


@dataclass(frozen=True, slots=True)
class KnownCaller:
    """Someone without an account whom staff booked for before (the ride is their record)."""

    ride_id: int
    name: str
    phone: str


async def known_callers(session: AsyncSession, query: str, *, limit: int = 5) -> list[KnownCaller]:
    """Riders staff booked for by phone before, found by name or phone, newest first."""
    like = f"%{query}%"
    stmt = (
        select(Ride)
        .where(
            col(Ride.rider_user_id).is_(None),
            col(Ride.relation) == "staff",
            col(Ride.rider_phone).is_not(None),
            or_(col(Ride.rider_name).ilike(like), col(Ride.rider_phone).contains(query)),
        )
        .order_by(col(Ride.id).desc())
        .limit(limit * 5)
    )
    found: dict[str, KnownCaller] = {}
    for row in (await session.execute(stmt)).scalars():
        phone = row.rider_phone or ""
        if phone not in found and row.id is not None:
            found[phone] = KnownCaller(ride_id=row.id, name=row.rider_name, phone=phone)
    return list(found.values())[:limit]


@dataclass(frozen=True, slots=True)
class DriverStats:
    driver_user_id: int
    completed: int
    no_shows_reported: int
    ratings: int
    average: float | None


async def driver_stats(session: AsyncSession) -> list[DriverStats]:
    done = func.sum(case((col(Ride.status) == RideStatus.COMPLETED.value, 1), else_=0))
    noshow = func.sum(case((col(Ride.status) == RideStatus.NO_SHOW.value, 1), else_=0))
    stmt = (
        select(
            col(Ride.driver_user_id),
            done,
            noshow,
            func.count(col(Ride.rating)),
            func.avg(col(Ride.rating)),
        )
        .where(col(Ride.driver_user_id).is_not(None))
        .group_by(col(Ride.driver_user_id))
        .order_by(col(Ride.driver_user_id))
    )
    return [
        DriverStats(int(d), int(c or 0), int(n or 0), int(r or 0), float(a) if a is not None else None)
        for d, c, n, r, a in (await session.execute(stmt)).all()
    ]


# -- driver groups -----------------------------------------------------------------


def _group(row: DriverGroup) -> DriverGroupData:
    assert row.id is not None
    return DriverGroupData(
        id=row.id,
        channel=row.channel,
        chat_id=row.chat_id,
        title=row.title,
        community_ids=row.community_ids,
        invite_link=row.invite_link,
    )


async def bind_group(
    session: AsyncSession,
    *,
    channel: str,
    chat_id: str,
    title: str,
    community_ids: Sequence[int],
    bound_by: int,
    invite_link: str | None = None,
) -> DriverGroupData:
    """Make a chat a driver group (or update which communities it serves)."""
    row = await bound_groups.bind(
        session,
        DriverGroup,
        channel=channel,
        chat_id=chat_id,
        title=title,
        community_ids=community_ids,
        bound_by=bound_by,
    )
    if invite_link is not None:
        row.invite_link = invite_link[:200]
        await session.flush()
    return _group(row)


async def unbind_group(session: AsyncSession, *, channel: str, chat_id: str) -> bool:
    return await bound_groups.unbind(session, DriverGroup, channel=channel, chat_id=chat_id)


async def group_by_chat(session: AsyncSession, *, channel: str, chat_id: str) -> DriverGroupData | None:
    """The active driver group held in this chat, if it is one."""
    row = await bound_groups.by_chat(session, DriverGroup, channel=channel, chat_id=chat_id)
    return None if row is None else _group(row)


async def move_group(session: AsyncSession, *, group_id: int, chat_id: str) -> None:
    """The group's chat got a new id (a Telegram group upgraded to a supergroup)."""
    await bound_groups.move(session, DriverGroup, group_id=group_id, chat_id=chat_id)


async def open_in_group(session: AsyncSession, group_id: int) -> list[RideData]:
    """Rides posted to this group that nobody has claimed yet."""
    stmt = (
        select(Ride)
        .where(col(Ride.group_id) == group_id, col(Ride.status) == RideStatus.POSTED.value)
        .order_by(col(Ride.id))
    )
    return [to_data(r) for r in (await session.execute(stmt)).scalars()]


async def get_group(session: AsyncSession, group_id: int) -> DriverGroupData | None:
    """The group, while it is bound (an unbound one takes no posts and no claims)."""
    row = await session.get(DriverGroup, group_id)
    return None if row is None or not row.active else _group(row)


async def group_for(session: AsyncSession, community_id: int | None) -> DriverGroupData | None:
    """The group serving a community: one bound to it, else one serving every community."""
    row = await bound_groups.serving(session, DriverGroup, community_id)
    return None if row is None else _group(row)


async def ids_ridden_by(session: AsyncSession, user_id: int) -> list[int]:
    """Every ride the person rides (or rode) in."""
    stmt = select(col(Ride.id)).where(col(Ride.rider_user_id) == user_id).order_by(col(Ride.id))
    return [i for i in (await session.execute(stmt)).scalars() if i is not None]


async def active_for_rider(session: AsyncSession, user_id: int) -> list[RideData]:
    stmt = select(Ride).where(col(Ride.rider_user_id) == user_id, _status_in(*ACTIVE_RIDE))
    return [to_data(r) for r in (await session.execute(stmt)).scalars()]


async def erase_person(session: AsyncSession, user_id: int) -> None:
    """/forget: rides stay (drivers' records and figures depend on them) but say nothing
    about the person: not the rider's name, phone, places or words, nor words they wrote
    into anyone's ride (comments, reasons)."""
    await session.execute(
        update(Ride)
        .where(col(Ride.rider_user_id) == user_id)
        .values(
            rider_name="",
            rider_phone=None,
            note="",
            pickup_text="",
            pickup_lat=None,
            pickup_lon=None,
            dest_text="",
            dest_lat=None,
            dest_lon=None,
            cancel_reason="",
            rating_comment="",
        )
    )
    await session.execute(update(Ride).where(_rider_or_booker(user_id)).values(rating_comment=""))
    await session.execute(update(RideEvent).where(col(RideEvent.actor_user_id) == user_id).values(detail=""))


async def last_booked_by(
    session: AsyncSession, booker_user_id: int, *, relation: str | None = None
) -> RideData | None:
    """The newest ride this person booked (for "again, like last time"); staff's bookings
    for residents who phoned are not offered again from here."""
    stmt = select(Ride).where(col(Ride.booker_user_id) == booker_user_id, col(Ride.relation) != "staff")
    if relation is not None:
        stmt = stmt.where(col(Ride.relation) == relation)
    row = (await session.execute(stmt.order_by(col(Ride.created_at).desc()).limit(1))).scalar_one_or_none()
    return None if row is None else to_data(row)


async def open_duplicate(
    session: AsyncSession,
    *,
    rider_user_id: int | None,
    rider_phone: str | None,
    pickup_at: datetime,
    window: timedelta,
) -> RideData | None:
    """An active ride for the same rider within ``window`` of this pickup time, if any."""
    who = []
    if rider_user_id is not None:
        who.append(col(Ride.rider_user_id) == rider_user_id)
    if rider_phone:
        who.append(col(Ride.rider_phone) == rider_phone)
    if not who:
        return None
    stmt = (
        select(Ride)
        .where(
            or_(*who),
            _status_in(*ACTIVE_RIDE),
            col(Ride.pickup_at) >= pickup_at - window,
            col(Ride.pickup_at) <= pickup_at + window,
        )
        .order_by(col(Ride.id).desc())
        .limit(1)
    )
    row = (await session.execute(stmt)).scalar_one_or_none()
    return None if row is None else to_data(row)
