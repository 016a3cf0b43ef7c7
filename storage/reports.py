"""Neighbourhood problem reports: the report, its photos, followers, history, the staff
groups they are routed to and the community areas that route them.

Every state change is one conditional UPDATE (``changed_one``): two staff pressing
"take" at once, or a reporter confirming while the 72-hour job closes the report,
are decided by the database, and the loser is told what happened instead.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, Text, UniqueConstraint, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from storage import bound_groups
from storage.bound_groups import BoundGroup
from storage.dialect import changed_one
from storage.geo import distance_km
from storage.models import OutboxMessage, utcnow

PREFIX = "WH"


class ReportStatus(StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"


OPEN = (ReportStatus.SUBMITTED, ReportStatus.ACCEPTED, ReportStatus.IN_PROGRESS)
WORKING = (ReportStatus.ACCEPTED, ReportStatus.IN_PROGRESS)
FINISHED = (ReportStatus.RESOLVED, ReportStatus.CLOSED)


def number(report_id: int) -> str:
    """The number a reporter can quote: WH-000123."""
    return f"{PREFIX}-{report_id:06d}"


_NUMBER = re.compile(rf"^\s*(?:{PREFIX}\s*-?\s*)?0*([0-9]{{1,9}})\s*$", re.IGNORECASE)


def parse_number(text: str) -> int | None:
    """ "WH-000123", "wh123", "123" → 123."""
    match = _NUMBER.match(text)
    return int(match.group(1)) if match and int(match.group(1)) > 0 else None


# -- tables ----------------------------------------------------------------------------


class ReportGroup(BoundGroup, table=True):
    """A staff chat that receives reports: for some communities, or city-wide (none)."""

    __tablename__ = "report_groups"
    __table_args__ = (UniqueConstraint("channel", "chat_id"),)


class CommunityArea(SQLModel, table=True):
    """A community's boundary, for routing a point to the community that covers it."""

    __tablename__ = "community_areas"

    community_id: int = Field(foreign_key="communities.id", primary_key=True)
    # JSON list of [lat, lon] vertices (WGS-84).
    polygon: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class Report(SQLModel, table=True):
    __tablename__ = "reports"
    __table_args__ = (
        # The duplicate look-up: same category, a small box around the point.
        Index("ix_reports_nearby", "category", "latitude", "longitude"),
        Index("ix_reports_status_created", "status", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    category: str = Field(max_length=20)
    description: str = Field(default="", max_length=1000)
    latitude: float | None = None
    longitude: float | None = None
    address: str = Field(default="", max_length=200)
    community_id: int | None = Field(default=None, foreign_key="communities.id", index=True)
    group_id: int | None = Field(default=None, foreign_key="report_groups.id")
    # Who reported: None after /forget, or for someone who phoned in.
    reporter_user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    reporter_hidden: bool = False
    reporter_gig: bool = False
    # Staff who filed it for a caller, and the caller's name and phone.
    filed_by_user_id: int | None = Field(default=None, foreign_key="users.id")
    caller_name: str = Field(default="", max_length=100)
    caller_phone: str | None = Field(default=None, max_length=20)
    status: str = Field(default="submitted", max_length=12)
    assignee_user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    reason: str = Field(default="", max_length=300)  # why rejected / duplicate
    duplicate_of: int | None = Field(default=None, foreign_key="reports.id")
    due_from: datetime = Field(default_factory=utcnow)  # start of the current deadlines
    accept_due: datetime
    resolve_due: datetime
    accepted_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    escalated_accept_at: datetime | None = None
    escalated_resolve_at: datetime | None = None
    reopened: int = 0
    rating: int | None = None
    points: int = 0  # earned by a gig worker's report once accepted
    version: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ReportPhoto(SQLModel, table=True):
    """A photo of the problem or of the fix, stored by Linli (``path``) once fetched."""

    __tablename__ = "report_photos"

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="reports.id", index=True)
    kind: str = Field(default="problem", max_length=10)  # problem | fix
    channel: str = Field(max_length=20)
    ref: str = Field(default="", max_length=300)  # the platform's file id, until fetched
    uploader_user_id: int | None = Field(default=None, foreign_key="users.id")
    path: str | None = Field(default=None, max_length=300)  # relative to the media folder
    sha256: str | None = Field(default=None, max_length=64)
    size: int | None = None
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow)


class ReportFollower(SQLModel, table=True):
    __tablename__ = "report_followers"
    __table_args__ = (UniqueConstraint("report_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="reports.id", index=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)


class ReportEvent(SQLModel, table=True):
    """Every change of a report: who, when, what, the note and the photo."""

    __tablename__ = "report_events"

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="reports.id", index=True)
    at: datetime = Field(default_factory=utcnow)
    actor_user_id: int | None = Field(default=None, foreign_key="users.id")
    event: str = Field(max_length=20)
    note: str = Field(default="", max_length=500)
    photo_id: int | None = Field(default=None, foreign_key="report_photos.id")


# -- plain data ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewReport:
    category: str
    description: str
    latitude: float | None
    longitude: float | None
    address: str
    community_id: int | None
    group_id: int | None
    reporter_user_id: int | None
    reporter_hidden: bool
    reporter_gig: bool
    accept_within: timedelta
    resolve_within: timedelta
    filed_by_user_id: int | None = None
    caller_name: str = ""
    caller_phone: str | None = None


@dataclass(frozen=True, slots=True)
class ReportData:
    id: int
    category: str
    description: str
    latitude: float | None
    longitude: float | None
    address: str
    community_id: int | None
    group_id: int | None
    reporter_user_id: int | None
    reporter_hidden: bool
    reporter_gig: bool
    filed_by_user_id: int | None
    caller_name: str
    caller_phone: str | None
    status: ReportStatus
    assignee_user_id: int | None
    reason: str
    duplicate_of: int | None
    due_from: datetime
    accept_due: datetime
    resolve_due: datetime
    accepted_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    escalated_accept_at: datetime | None
    escalated_resolve_at: datetime | None
    reopened: int
    rating: int | None
    points: int
    created_at: datetime

    @property
    def number(self) -> str:
        return number(self.id)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    def overdue(self, now: datetime) -> bool:
        if self.status is ReportStatus.SUBMITTED:
            return now > self.accept_due
        return self.status in WORKING and now > self.resolve_due


@dataclass(frozen=True, slots=True)
class PhotoData:
    id: int
    report_id: int
    kind: str
    channel: str
    ref: str
    path: str | None


@dataclass(frozen=True, slots=True)
class EventData:
    id: int
    at: datetime
    actor_user_id: int | None
    event: str
    note: str
    photo_id: int | None


@dataclass(frozen=True, slots=True)
class GroupData:
    id: int
    channel: str
    chat_id: str
    community_ids: frozenset[int]  # empty: city-wide


def _data(row: Report) -> ReportData:
    assert row.id is not None
    return ReportData(
        id=row.id,
        category=row.category,
        description=row.description,
        latitude=row.latitude,
        longitude=row.longitude,
        address=row.address,
        community_id=row.community_id,
        group_id=row.group_id,
        reporter_user_id=row.reporter_user_id,
        reporter_hidden=row.reporter_hidden,
        reporter_gig=row.reporter_gig,
        filed_by_user_id=row.filed_by_user_id,
        caller_name=row.caller_name,
        caller_phone=row.caller_phone,
        status=ReportStatus(row.status),
        assignee_user_id=row.assignee_user_id,
        reason=row.reason,
        duplicate_of=row.duplicate_of,
        due_from=row.due_from,
        accept_due=row.accept_due,
        resolve_due=row.resolve_due,
        accepted_at=row.accepted_at,
        resolved_at=row.resolved_at,
        closed_at=row.closed_at,
        escalated_accept_at=row.escalated_accept_at,
        escalated_resolve_at=row.escalated_resolve_at,
        reopened=row.reopened,
        rating=row.rating,
        points=row.points,
        created_at=row.created_at,
    )


def _photo(row: ReportPhoto) -> PhotoData:
    assert row.id is not None
    return PhotoData(row.id, row.report_id, row.kind, row.channel, row.ref, row.path)


# -- reports -----------------------------------------------------------------------------


async def event(
    session: AsyncSession,
    report_id: int,
    name: str,
    *,
    actor: int | None = None,
    note: str = "",
    photo_id: int | None = None,
) -> int:
    row = ReportEvent(
        report_id=report_id, event=name, actor_user_id=actor, note=note[:500], photo_id=photo_id
    )
    session.add(row)
    await session.flush()
    assert row.id is not None
    return row.id


async def create(session: AsyncSession, new: NewReport, *, now: datetime | None = None) -> ReportData:
    now = now or utcnow()
    row = Report(
        category=new.category,
        description=new.description[:1000],
        latitude=new.latitude,
        longitude=new.longitude,
        address=new.address[:200],
        community_id=new.community_id,
        group_id=new.group_id,
        reporter_user_id=new.reporter_user_id,
        reporter_hidden=new.reporter_hidden,
        reporter_gig=new.reporter_gig,
        filed_by_user_id=new.filed_by_user_id,
        caller_name=new.caller_name[:100],
        caller_phone=new.caller_phone,
        status=ReportStatus.SUBMITTED.value,
        due_from=now,
        accept_due=now + new.accept_within,
        resolve_due=now + new.resolve_within,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await session.flush()
    assert row.id is not None
    await event(session, row.id, "submitted", actor=new.filed_by_user_id or new.reporter_user_id)
    return _data(row)


async def get(session: AsyncSession, report_id: int) -> ReportData | None:
    row = await session.get(Report, report_id, populate_existing=True)
    return None if row is None else _data(row)


async def add_photo(
    session: AsyncSession, report_id: int, *, channel: str, ref: str, kind: str, uploader: int | None
) -> int:
    row = ReportPhoto(
        report_id=report_id, channel=channel, ref=ref[:300], kind=kind, uploader_user_id=uploader
    )
    session.add(row)
    await session.flush()
    assert row.id is not None
    return row.id


async def photos(session: AsyncSession, report_id: int, *, kind: str | None = None) -> list[PhotoData]:
    stmt = select(ReportPhoto).where(col(ReportPhoto.report_id) == report_id)
    if kind is not None:
        stmt = stmt.where(col(ReportPhoto.kind) == kind)
    return [_photo(r) for r in (await session.execute(stmt.order_by(col(ReportPhoto.id)))).scalars()]


async def get_photo(session: AsyncSession, photo_id: int) -> PhotoData | None:
    row = await session.get(ReportPhoto, photo_id, populate_existing=True)
    return None if row is None else _photo(row)


MAX_FETCH_ATTEMPTS = 5


async def photos_to_fetch(session: AsyncSession) -> list[PhotoData]:
    stmt = (
        select(ReportPhoto)
        .where(
            col(ReportPhoto.path).is_(None),
            col(ReportPhoto.ref) != "",
            col(ReportPhoto.attempts) < MAX_FETCH_ATTEMPTS,
        )
        .order_by(col(ReportPhoto.id))
    )
    return [_photo(r) for r in (await session.execute(stmt)).scalars()]


async def photo_stored(session: AsyncSession, photo_id: int, *, path: str, sha256: str, size: int) -> bool:
    return await changed_one(
        session,
        update(ReportPhoto)
        .where(col(ReportPhoto.id) == photo_id, col(ReportPhoto.path).is_(None))
        .values(path=path, sha256=sha256, size=size),
    )


async def photo_failed(session: AsyncSession, photo_id: int) -> None:
    await session.execute(
        update(ReportPhoto)
        .where(col(ReportPhoto.id) == photo_id)
        .values(attempts=col(ReportPhoto.attempts) + 1)
    )


@dataclass(frozen=True, slots=True)
class Nearby:
    report: ReportData
    metres: int


def _box(lat: float, lon: float, metres: float) -> tuple[float, float, float, float]:
    dlat = metres / 111_195.0
    dlon = metres / (111_195.0 * max(0.01, math.cos(math.radians(lat))))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


async def nearby_open(
    session: AsyncSession,
    *,
    category: str,
    latitude: float,
    longitude: float,
    metres: float,
    since: datetime,
    limit: int = 3,
) -> list[Nearby]:
    """Open reports of this category within ``metres`` of the point, filed since ``since``,
    nearest first. The index on (category, latitude, longitude) narrows to a small box;
    the exact distance is checked here."""
    south, north, west, east = _box(latitude, longitude, metres)
    stmt = (
        select(Report)
        .where(
            col(Report.category) == category,
            col(Report.latitude).between(south, north),
            col(Report.longitude).between(west, east),
            col(Report.status).in_([s.value for s in OPEN]),
            col(Report.created_at) >= since,
        )
        .limit(200)
    )
    found = []
    for row in (await session.execute(stmt)).scalars():
        assert row.latitude is not None
        assert row.longitude is not None
        d = distance_km(latitude, longitude, row.latitude, row.longitude) * 1000
        if d <= metres:
            found.append(Nearby(_data(row), round(d)))
    found.sort(key=lambda n: (n.metres, n.report.id))
    return found[:limit]


async def follow(session: AsyncSession, report_id: int, user_id: int) -> bool:
    """Follow a report; False when already following (a unique constraint decides)."""
    exists = (
        await session.execute(
            select(col(ReportFollower.id)).where(
                col(ReportFollower.report_id) == report_id, col(ReportFollower.user_id) == user_id
            )
        )
    ).first()
    if exists is not None:
        return False
    async with session.begin_nested():
        session.add(ReportFollower(report_id=report_id, user_id=user_id))
    await event(session, report_id, "followed", actor=user_id)
    return True


async def followers(session: AsyncSession, report_id: int) -> list[int]:
    stmt = select(col(ReportFollower.user_id)).where(col(ReportFollower.report_id) == report_id)
    return list((await session.execute(stmt.order_by(col(ReportFollower.id)))).scalars())


async def events(session: AsyncSession, report_id: int) -> list[EventData]:
    stmt = select(ReportEvent).where(col(ReportEvent.report_id) == report_id).order_by(col(ReportEvent.id))
    return [
        EventData(r.id or 0, r.at, r.actor_user_id, r.event, r.note, r.photo_id)
        for r in (await session.execute(stmt)).scalars()
    ]


# -- the loop ----------------------------------------------------------------------------


async def _move(
    session: AsyncSession,
    report_id: int,
    *,
    allowed: Sequence[ReportStatus],
    values: dict[str, Any],
    extra_where: Sequence[Any] = (),
) -> bool:
    return await changed_one(
        session,
        update(Report)
        .where(
            col(Report.id) == report_id,
            col(Report.status).in_([s.value for s in allowed]),
            *extra_where,
        )
        .values(**values, version=col(Report.version) + 1, updated_at=utcnow()),
    )


async def accept(
    session: AsyncSession, report_id: int, *, assignee: int, actor: int, now: datetime, points: int
) -> bool:
    """Take a submitted report (first press wins); the assignee is who will fix it."""
    report = await get(session, report_id)
    values: dict[str, Any] = {
        "status": ReportStatus.ACCEPTED.value,
        "assignee_user_id": assignee,
        "accepted_at": now,
    }
    if report is not None and report.reporter_gig and report.points == 0:
        values["points"] = points
    done = await _move(session, report_id, allowed=(ReportStatus.SUBMITTED,), values=values)
    if done:
        await event(session, report_id, "accepted", actor=actor, note=str(assignee))
    return done


async def assign(session: AsyncSession, report_id: int, *, assignee: int, actor: int, now: datetime) -> bool:
    """Give a working report to someone else (a submitted one is accepted by it)."""
    report = await get(session, report_id)
    if report is None or report.status not in OPEN:
        return False
    if report.status is ReportStatus.SUBMITTED:
        return await accept(session, report_id, assignee=assignee, actor=actor, now=now, points=0)
    done = await _move(session, report_id, allowed=WORKING, values={"assignee_user_id": assignee})
    if done:
        await event(session, report_id, "assigned", actor=actor, note=str(assignee))
    return done


async def start(session: AsyncSession, report_id: int, *, actor: int) -> bool:
    done = await _move(
        session,
        report_id,
        allowed=(ReportStatus.ACCEPTED,),
        values={"status": ReportStatus.IN_PROGRESS.value},
    )
    if done:
        await event(session, report_id, "in_progress", actor=actor)
    return done


async def resolve(
    session: AsyncSession, report_id: int, *, actor: int, note: str, photo_id: int | None, now: datetime
) -> int | None:
    """Mark fixed: needs a note or a photo. Returns the event id."""
    if not note.strip() and photo_id is None:
        raise ValueError("resolving needs a note or a photo")
    done = await _move(
        session,
        report_id,
        allowed=WORKING,
        values={"status": ReportStatus.RESOLVED.value, "resolved_at": now},
    )
    if not done:
        return None
    return await event(session, report_id, "resolved", actor=actor, note=note, photo_id=photo_id)


async def close(
    session: AsyncSession, report_id: int, *, actor: int | None, now: datetime, auto: bool
) -> bool:
    done = await _move(
        session,
        report_id,
        allowed=(ReportStatus.RESOLVED,),
        values={"status": ReportStatus.CLOSED.value, "closed_at": now},
    )
    if done:
        await event(session, report_id, "auto_closed" if auto else "confirmed", actor=actor)
    return done


async def refuse(
    session: AsyncSession,
    report_id: int,
    *,
    to: ReportStatus,
    actor: int,
    reason: str,
    now: datetime,
    duplicate_of: int | None = None,
) -> bool:
    """Rejected or a duplicate: always with a reason. Points are not earned then."""
    assert to in (ReportStatus.REJECTED, ReportStatus.DUPLICATE)
    values: dict[str, Any] = {"status": to.value, "reason": reason[:300], "closed_at": now, "points": 0}
    if duplicate_of is not None:
        values["duplicate_of"] = duplicate_of
    done = await _move(session, report_id, allowed=OPEN, values=values)
    if done:
        await event(session, report_id, to.value, actor=actor, note=reason)
    return done


async def reopen(
    session: AsyncSession,
    report_id: int,
    *,
    reporter: int,
    reason: str,
    now: datetime,
    within: timedelta,
    resolve_within: timedelta,
) -> bool:
    """The reporter says it is not fixed, within ``within`` of the fix: work starts again."""
    done = await _move(
        session,
        report_id,
        allowed=FINISHED,
        values={
            "status": ReportStatus.ACCEPTED.value,
            "resolved_at": None,
            "closed_at": None,
            "rating": None,
            "due_from": now,
            "resolve_due": now + resolve_within,
            "escalated_resolve_at": None,
            "reopened": col(Report.reopened) + 1,
        },
        extra_where=(
            col(Report.reporter_user_id) == reporter,
            col(Report.resolved_at) >= now - within,
            col(Report.assignee_user_id).is_not(None),
        ),
    )
    if done:
        await event(session, report_id, "reopened", actor=reporter, note=reason)
    return done


async def rate(session: AsyncSession, report_id: int, *, reporter: int, stars: int) -> bool:
    if not 1 <= stars <= 5:
        return False
    done = await changed_one(
        session,
        update(Report)
        .where(
            col(Report.id) == report_id,
            col(Report.status) == ReportStatus.CLOSED.value,
            col(Report.reporter_user_id) == reporter,
            col(Report.rating).is_(None),
        )
        .values(rating=stars, updated_at=utcnow()),
    )
    if done:
        await event(session, report_id, "rated", actor=reporter, note=str(stars))
    return done


async def mark_escalated(session: AsyncSession, report_id: int, *, stage: str, now: datetime) -> bool:
    column = "escalated_accept_at" if stage == "accept" else "escalated_resolve_at"
    allowed = (ReportStatus.SUBMITTED,) if stage == "accept" else WORKING
    done = await changed_one(
        session,
        update(Report)
        .where(
            col(Report.id) == report_id,
            col(Report.status).in_([s.value for s in allowed]),
            getattr(Report, column).is_(None),
        )
        .values(**{column: now}),
    )
    if done:
        await event(session, report_id, f"escalated_{stage}")
    return done


# -- lists -------------------------------------------------------------------------------


async def for_reporter(session: AsyncSession, user_id: int, *, limit: int = 20) -> list[ReportData]:
    stmt = (
        select(Report)
        .where(col(Report.reporter_user_id) == user_id)
        .order_by(col(Report.id).desc())
        .limit(limit)
    )
    return [_data(r) for r in (await session.execute(stmt)).scalars()]


async def followed_by(session: AsyncSession, user_id: int, *, limit: int = 20) -> list[ReportData]:
    stmt = (
        select(Report)
        .join(ReportFollower, col(ReportFollower.report_id) == col(Report.id))
        .where(col(ReportFollower.user_id) == user_id)
        .order_by(col(Report.id).desc())
        .limit(limit)
    )
    return [_data(r) for r in (await session.execute(stmt)).scalars()]


async def search(
    session: AsyncSession,
    *,
    statuses: Sequence[ReportStatus] = OPEN,
    category: str | None = None,
    assignee: int | None = None,
    overdue_at: datetime | None = None,
    limit: int = 20,
) -> list[ReportData]:
    stmt = select(Report).where(col(Report.status).in_([s.value for s in statuses]))
    if category is not None:
        stmt = stmt.where(col(Report.category) == category)
    if assignee is not None:
        stmt = stmt.where(col(Report.assignee_user_id) == assignee)
    if overdue_at is not None:
        late_accept = (col(Report.status) == ReportStatus.SUBMITTED.value) & (
            col(Report.accept_due) < overdue_at
        )
        late_fix = col(Report.status).in_([s.value for s in WORKING]) & (col(Report.resolve_due) < overdue_at)
        stmt = stmt.where(late_accept | late_fix)
    stmt = stmt.order_by(col(Report.id).desc()).limit(limit)
    return [_data(r) for r in (await session.execute(stmt)).scalars()]


async def with_status(session: AsyncSession, statuses: Sequence[ReportStatus]) -> list[ReportData]:
    stmt = select(Report).where(col(Report.status).in_([s.value for s in statuses])).order_by(col(Report.id))
    return [_data(r) for r in (await session.execute(stmt)).scalars()]


async def since(session: AsyncSession, moment: datetime) -> list[ReportData]:
    stmt = select(Report).where(col(Report.created_at) >= moment).order_by(col(Report.id))
    return [_data(r) for r in (await session.execute(stmt)).scalars()]


async def points_of(session: AsyncSession, user_id: int) -> int:
    stmt = select(func.coalesce(func.sum(col(Report.points)), 0)).where(
        col(Report.reporter_user_id) == user_id
    )
    return int((await session.execute(stmt)).scalar_one())


async def top_reporters(
    session: AsyncSession, *, start: datetime, limit: int = 10
) -> list[tuple[int, int, int]]:
    """(user id, points, reports) of the month's most helpful reporters."""
    stmt = (
        select(col(Report.reporter_user_id), func.sum(col(Report.points)), func.count())
        .where(
            col(Report.reporter_user_id).is_not(None),
            col(Report.accepted_at) >= start,
            col(Report.points) > 0,
        )
        .group_by(col(Report.reporter_user_id))
        .order_by(func.sum(col(Report.points)).desc(), col(Report.reporter_user_id))
        .limit(limit)
    )
    return [(int(u or 0), int(p or 0), int(n)) for u, p, n in (await session.execute(stmt)).all()]


# -- groups and areas ----------------------------------------------------------------------


def _group(row: ReportGroup) -> GroupData:
    assert row.id is not None
    return GroupData(id=row.id, channel=row.channel, chat_id=row.chat_id, community_ids=row.community_ids)


async def bind_group(
    session: AsyncSession,
    *,
    channel: str,
    chat_id: str,
    title: str,
    community_ids: Sequence[int],
    bound_by: int,
) -> GroupData:
    row = await bound_groups.bind(
        session,
        ReportGroup,
        channel=channel,
        chat_id=chat_id,
        title=title,
        community_ids=community_ids,
        bound_by=bound_by,
    )
    return _group(row)


async def unbind_group(session: AsyncSession, *, channel: str, chat_id: str) -> bool:
    return await bound_groups.unbind(session, ReportGroup, channel=channel, chat_id=chat_id)


async def group_by_chat(session: AsyncSession, *, channel: str, chat_id: str) -> GroupData | None:
    """The active staff group held in this chat, if it is one."""
    row = await bound_groups.by_chat(session, ReportGroup, channel=channel, chat_id=chat_id)
    return None if row is None else _group(row)


async def move_group(session: AsyncSession, *, group_id: int, chat_id: str) -> None:
    """The group's chat got a new id (a Telegram group upgraded to a supergroup)."""
    await bound_groups.move(session, ReportGroup, group_id=group_id, chat_id=chat_id)


async def get_group(session: AsyncSession, group_id: int) -> GroupData | None:
    """The group, while it is bound (else the community's reports go elsewhere)."""
    row = await session.get(ReportGroup, group_id)
    return None if row is None or not row.active else _group(row)


async def group_for(session: AsyncSession, community_id: int | None) -> GroupData | None:
    """The staff group of a community; else the city-wide fallback group."""
    row = await bound_groups.serving(session, ReportGroup, community_id)
    return None if row is None else _group(row)


async def open_in_group(session: AsyncSession, group_id: int) -> list[ReportData]:
    """Reports routed to this group that are not finished yet."""
    stmt = (
        select(Report)
        .where(col(Report.group_id) == group_id, col(Report.status).in_([s.value for s in OPEN]))
        .order_by(col(Report.id))
    )
    return [_data(r) for r in (await session.execute(stmt)).scalars()]


async def set_area(session: AsyncSession, community_id: int, polygon: Sequence[tuple[float, float]]) -> None:
    if len(polygon) < 3:
        raise ValueError("a polygon needs at least three points")
    row = await session.get(CommunityArea, community_id)
    text = json.dumps([[lat, lon] for lat, lon in polygon])
    if row is None:
        session.add(CommunityArea(community_id=community_id, polygon=text))
    else:
        row.polygon, row.updated_at = text, utcnow()
    await session.flush()


async def areas(session: AsyncSession) -> dict[int, list[tuple[float, float]]]:
    rows = (await session.execute(select(CommunityArea))).scalars()
    return {r.community_id: [(float(a), float(b)) for a, b in json.loads(r.polygon)] for r in rows}


def inside(lat: float, lon: float, polygon: Sequence[tuple[float, float]]) -> bool:
    """Ray casting: whether the point lies inside the polygon ([lat, lon] vertices)."""
    result = False
    j = len(polygon) - 1
    for i in range(len(polygon)):
        yi, xi = polygon[i]
        yj, xj = polygon[j]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            result = not result
        j = i
    return result


# -- /forget -------------------------------------------------------------------------------

_PHONE_LIKE = re.compile(r"\+?\d[\d\s-]{6,}\d")


def _scrub(text: str, words: Sequence[str]) -> str:
    text = _PHONE_LIKE.sub("***", text)
    for word in words:
        if word and len(word) >= 2:
            text = text.replace(word, "***")
    return text


async def erase_person(session: AsyncSession, user_id: int, *, words: Sequence[str]) -> None:
    """/forget: the problems stay for the community, without the person.

    Their reports lose the link to them (so nothing reaches them again) and their
    name or phone inside the description; their photos lose the platform id and the
    uploader; notes they wrote are emptied; they follow nothing; and the report
    messages queued or sent to groups no longer carry their name.
    """
    ids = list(
        (
            await session.execute(select(col(Report.id)).where(col(Report.reporter_user_id) == user_id))
        ).scalars()
    )
    for report_id in ids:
        row = await session.get(Report, report_id)
        assert row is not None
        row.description = _scrub(row.description, words)
        row.reporter_user_id = None
        row.reporter_hidden = True
        row.updated_at = utcnow()
        for message in (
            await session.execute(
                select(OutboxMessage).where(col(OutboxMessage.dedupe_key).startswith(f"report:{report_id}:"))
            )
        ).scalars():
            message.payload = _scrub(message.payload, words)
    await session.execute(
        update(ReportPhoto)
        .where(col(ReportPhoto.uploader_user_id) == user_id)
        .values(uploader_user_id=None, ref="")
    )
    await session.execute(
        update(ReportEvent)
        .where(col(ReportEvent.actor_user_id) == user_id)
        .values(note="", actor_user_id=None)
    )
    await session.execute(delete(ReportFollower).where(col(ReportFollower.user_id) == user_id))
    await session.flush()
