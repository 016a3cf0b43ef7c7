"""Community notices: what staff send, to whom, when; each sending's progress; residents'
notice settings; which communities each staff member is responsible for.

- ``notices``: the text (and optional English text and photo), the audience (a community
  or all of them, optionally one building, a role), the topic residents can mute, urgent
  or not, when (``send_at``) and whether it repeats weekly.
- ``notice_runs``: one row per sending (a one-off notice has one; a weekly one gets one
  per week, unique per planned time). Recipients are expanded into outbox rows in
  batches; ``cursor`` is the last user id expanded, written in the same transaction as
  the batch, so a crash resumes after the last whole batch and the outbox dedupe key
  ``notice:<run>:<user>`` makes a repeated batch add nothing.
- ``notice_prefs``: a resident's muted topics and quiet hours (no row: the defaults).
- ``staff_communities``: the communities a staff member may send notices to; a row with
  no community means city-wide (``linli admin scope``; LINLI_ADMINS are city-wide too).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Column, Text, UniqueConstraint, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from storage.data import guess_language
from storage.dialect import changed_count, changed_one, upsert_insert
from storage.models import User, utcnow

LOCAL = ZoneInfo("Asia/Shanghai")
DEFAULT_QUIET = ("22:00", "07:00")
MAX_TEXT = 3000  # a notice without a photo; Telegram allows 4,096 with the header
MAX_CAPTION_TEXT = 900  # with a photo the text is its caption (Telegram: 1,024)


class Audience(StrEnum):
    EVERYONE = "everyone"
    RESIDENTS = "resident"  # people who hold no service role (driver, gig worker, lawyer)
    DRIVERS = "driver"
    GIG_WORKERS = "gig_worker"
    LAWYERS = "lawyer"


SERVICE_ROLES = ("driver", "gig_worker", "lawyer")


class Topic(StrEnum):
    """What a notice is about; residents may mute any of them (urgent notices excepted)."""

    UTILITIES = "utilities"  # water, power, gas, lifts
    EVENTS = "events"  # activities, meetings
    SERVICES = "services"  # legal sessions, health checks, services on offer
    GENERAL = "general"


class RunStatus(StrEnum):
    EXPANDING = "expanding"  # recipients are being written to the outbox
    SENDING = "sending"  # all rows written; the sender delivers them
    DONE = "done"
    CANCELLED = "cancelled"


class NoticeStatus(StrEnum):
    ACTIVE = "active"  # scheduled, sending, or repeating
    DONE = "done"  # a one-off that has been sent
    CANCELLED = "cancelled"


# -- tables ---------------------------------------------------------------------------


class Notice(SQLModel, table=True):
    __tablename__ = "notices"

    id: int | None = Field(default=None, primary_key=True)
    author_user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    text_en: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    photo_ref: str | None = Field(default=None, max_length=200)
    # None: every community (city-wide staff only).
    community_id: int | None = Field(default=None, foreign_key="communities.id", index=True)
    building_id: int | None = Field(default=None, foreign_key="buildings.id")
    audience: str = Field(default=Audience.EVERYONE.value, max_length=20)
    topic: str = Field(default=Topic.GENERAL.value, max_length=20)
    urgent: bool = False
    send_at: datetime
    weekly: bool = False  # repeats every week at send_at's weekday and local time
    status: str = Field(default=NoticeStatus.ACTIVE.value, max_length=10, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class NoticeRun(SQLModel, table=True):
    __tablename__ = "notice_runs"
    __table_args__ = (UniqueConstraint("notice_id", "planned_at"),)

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="notices.id", index=True)
    planned_at: datetime
    status: str = Field(default=RunStatus.EXPANDING.value, max_length=10, index=True)
    cursor: int = 0  # the last user id written to the outbox
    queued: int = 0  # outbox rows written
    muted: int = 0  # left out: they muted the topic
    blocked: int = 0  # left out: they had blocked Linli already
    deferred: int = 0  # written behind the recipient's quiet hours
    reported: int = 0  # 0 no report yet, 1 first report (some deferred), 2 final
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class NoticePrefs(SQLModel, table=True):
    __tablename__ = "notice_prefs"

    user_id: int = Field(primary_key=True, foreign_key="users.id")
    muted: str = Field(default="", max_length=200)  # comma-separated topics
    quiet_on: bool = True
    quiet_start: str = Field(default=DEFAULT_QUIET[0], max_length=5)  # "HH:MM" local
    quiet_end: str = Field(default=DEFAULT_QUIET[1], max_length=5)


class StaffCommunity(SQLModel, table=True):
    __tablename__ = "staff_communities"
    __table_args__ = (UniqueConstraint("user_id", "community_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    community_id: int | None = Field(default=None, foreign_key="communities.id")  # None: city-wide


# -- plain data -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoticeDraft:
    text: str
    community_id: int | None
    building_id: int | None
    audience: Audience
    topic: Topic
    urgent: bool
    send_at: datetime
    weekly: bool = False
    text_en: str | None = None
    photo_ref: str | None = None


@dataclass(frozen=True, slots=True)
class NoticeData:
    id: int
    author_user_id: int | None
    draft: NoticeDraft
    status: NoticeStatus
    created_at: datetime

    @property
    def text(self) -> str:
        return self.draft.text


@dataclass(frozen=True, slots=True)
class RunData:
    id: int
    notice_id: int
    planned_at: datetime
    status: RunStatus
    cursor: int
    queued: int
    muted: int
    blocked: int
    deferred: int
    reported: int
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class Prefs:
    muted: frozenset[Topic] = frozenset()
    quiet_on: bool = True
    quiet_start: str = DEFAULT_QUIET[0]
    quiet_end: str = DEFAULT_QUIET[1]


@dataclass(frozen=True, slots=True)
class Recipient:
    user_id: int
    channel: str
    chat_id: str
    language: str
    blocked: bool
    prefs: Prefs


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a sending stands, counted from its outbox rows (plus who was left out)."""

    sent: int = 0
    blocked: int = 0  # 403 / chat gone while sending, plus people who had blocked Linli
    failed: int = 0
    waiting: int = 0  # pending, not held by quiet hours
    deferred: int = 0  # pending behind quiet hours
    cancelled: int = 0
    muted: int = 0

    @property
    def total(self) -> int:
        return self.sent + self.blocked + self.failed + self.waiting + self.deferred + self.cancelled


def _notice(row: Notice) -> NoticeData:
    assert row.id is not None
    draft = NoticeDraft(
        text=row.text,
        text_en=row.text_en,
        photo_ref=row.photo_ref,
        community_id=row.community_id,
        building_id=row.building_id,
        audience=Audience(row.audience),
        topic=Topic(row.topic),
        urgent=row.urgent,
        send_at=row.send_at,
        weekly=row.weekly,
    )
    return NoticeData(row.id, row.author_user_id, draft, NoticeStatus(row.status), row.created_at)


def _run(row: NoticeRun) -> RunData:
    assert row.id is not None
    return RunData(
        id=row.id,
        notice_id=row.notice_id,
        planned_at=row.planned_at,
        status=RunStatus(row.status),
        cursor=row.cursor,
        queued=row.queued,
        muted=row.muted,
        blocked=row.blocked,
        deferred=row.deferred,
        reported=row.reported,
        finished_at=row.finished_at,
    )


def _topics(raw: str) -> frozenset[Topic]:
    return frozenset(Topic(t) for t in raw.split(",") if t in Topic.__members__.values())


def _prefs(row: NoticePrefs | None) -> Prefs:
    if row is None:
        return Prefs()
    return Prefs(_topics(row.muted), row.quiet_on, row.quiet_start, row.quiet_end)


# -- notices --------------------------------------------------------------------------


async def create(session: AsyncSession, *, author_user_id: int, draft: NoticeDraft) -> NoticeData:
    row = Notice(
        author_user_id=author_user_id,
        text=draft.text,
        text_en=draft.text_en,
        photo_ref=draft.photo_ref,
        community_id=draft.community_id,
        building_id=draft.building_id,
        audience=draft.audience.value,
        topic=draft.topic.value,
        urgent=draft.urgent,
        send_at=draft.send_at,
        weekly=draft.weekly,
    )
    session.add(row)
    await session.flush()
    return _notice(row)


async def get(session: AsyncSession, notice_id: int) -> NoticeData | None:
    row = await session.get(Notice, notice_id)
    return None if row is None else _notice(row)


async def recent(
    session: AsyncSession, *, communities: frozenset[int] | None, limit: int = 10
) -> list[NoticeData]:
    """The newest notices to these communities (None: all, including city-wide ones)."""
    stmt = select(Notice).order_by(col(Notice.id).desc()).limit(limit)
    if communities is not None:
        stmt = stmt.where(col(Notice.community_id).in_(list(communities)))
    return [_notice(r) for r in (await session.execute(stmt)).scalars()]


async def board(session: AsyncSession, *, community_id: int | None, limit: int = 30) -> list[NoticeData]:
    """Notices already sent to a community (or to every community), newest first."""
    started = select(col(NoticeRun.notice_id)).where(col(NoticeRun.status) != RunStatus.CANCELLED.value)
    stmt = (
        select(Notice)
        .where(col(Notice.id).in_(started), col(Notice.status) != NoticeStatus.CANCELLED.value)
        .where(or_(col(Notice.community_id).is_(None), col(Notice.community_id) == community_id))
        .order_by(col(Notice.id).desc())
        .limit(limit)
    )
    return [_notice(r) for r in (await session.execute(stmt)).scalars()]


async def cancel(session: AsyncSession, notice_id: int) -> list[int] | None:
    """Stop a notice: no further sendings, unfinished ones cancelled. Returns the runs
    cancelled (their pending outbox rows are for the caller to cancel), or None when the
    notice was no longer active."""
    if not await changed_one(
        session,
        update(Notice)
        .where(col(Notice.id) == notice_id, col(Notice.status) == NoticeStatus.ACTIVE.value)
        .values(status=NoticeStatus.CANCELLED.value),
    ):
        return None
    open_runs = (
        await session.execute(
            select(col(NoticeRun.id)).where(
                col(NoticeRun.notice_id) == notice_id,
                col(NoticeRun.status).in_([RunStatus.EXPANDING.value, RunStatus.SENDING.value]),
            )
        )
    ).scalars()
    ids = [i for i in open_runs if i is not None]
    if ids:
        await session.execute(
            update(NoticeRun)
            .where(col(NoticeRun.id).in_(ids))
            .values(status=RunStatus.CANCELLED.value, finished_at=utcnow())
        )
    return ids


async def mark_done(session: AsyncSession, notice_id: int) -> None:
    await session.execute(
        update(Notice)
        .where(col(Notice.id) == notice_id, col(Notice.status) == NoticeStatus.ACTIVE.value)
        .values(status=NoticeStatus.DONE.value)
    )


async def active(session: AsyncSession) -> list[NoticeData]:
    rows = (
        await session.execute(select(Notice).where(col(Notice.status) == NoticeStatus.ACTIVE.value))
    ).scalars()
    return [_notice(r) for r in rows]


# -- sendings -------------------------------------------------------------------------


async def start_run(session: AsyncSession, notice_id: int, planned_at: datetime) -> RunData:
    """The sending of a notice planned for this time, created once whoever asks first."""
    await session.execute(
        upsert_insert(session, NoticeRun)
        .values(
            notice_id=notice_id,
            planned_at=planned_at,
            status=RunStatus.EXPANDING.value,
            cursor=0,
            queued=0,
            muted=0,
            blocked=0,
            deferred=0,
            reported=0,
            started_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["notice_id", "planned_at"])
    )
    row = (
        await session.execute(
            select(NoticeRun).where(
                col(NoticeRun.notice_id) == notice_id, col(NoticeRun.planned_at) == planned_at
            )
        )
    ).scalar_one()
    return _run(row)


async def get_run(session: AsyncSession, run_id: int) -> RunData | None:
    row = await session.get(NoticeRun, run_id, populate_existing=True)
    return None if row is None else _run(row)


async def runs_of(session: AsyncSession, notice_id: int) -> list[RunData]:
    rows = (
        await session.execute(
            select(NoticeRun).where(col(NoticeRun.notice_id) == notice_id).order_by(col(NoticeRun.id).desc())
        )
    ).scalars()
    return [_run(r) for r in rows]


async def last_planned(session: AsyncSession, notice_id: int) -> datetime | None:
    value: datetime | None = (
        await session.execute(
            select(func.max(col(NoticeRun.planned_at))).where(col(NoticeRun.notice_id) == notice_id)
        )
    ).scalar_one_or_none()
    return value


async def runs_with_status(session: AsyncSession, status: RunStatus) -> list[RunData]:
    rows = (await session.execute(select(NoticeRun).where(col(NoticeRun.status) == status.value))).scalars()
    return [_run(r) for r in rows]


async def advance(
    session: AsyncSession,
    run: RunData,
    *,
    cursor: int,
    queued: int,
    muted: int,
    blocked: int,
    deferred: int,
    finished: bool,
) -> bool:
    """Record one expanded batch, if the sending is still being expanded from ``run.cursor``
    (not cancelled, not advanced by another worker). False: roll the batch back."""
    values: dict[str, object] = {
        "cursor": cursor,
        "queued": col(NoticeRun.queued) + queued,
        "muted": col(NoticeRun.muted) + muted,
        "blocked": col(NoticeRun.blocked) + blocked,
        "deferred": col(NoticeRun.deferred) + deferred,
    }
    if finished:
        values["status"] = RunStatus.SENDING.value
    return await changed_one(
        session,
        update(NoticeRun)
        .where(
            col(NoticeRun.id) == run.id,
            col(NoticeRun.status) == RunStatus.EXPANDING.value,
            col(NoticeRun.cursor) == run.cursor,
        )
        .values(**values),
    )


async def mark_reported(session: AsyncSession, run: RunData, *, stage: int, done: bool) -> bool:
    """Move the report stage on (once: the conditional update decides between workers)."""
    values: dict[str, object] = {"reported": stage}
    if done:
        values.update(status=RunStatus.DONE.value, finished_at=utcnow())
    return await changed_one(
        session,
        update(NoticeRun)
        .where(
            col(NoticeRun.id) == run.id,
            col(NoticeRun.reported) == run.reported,
            col(NoticeRun.status) == RunStatus.SENDING.value,
        )
        .values(**values),
    )


# -- audience -------------------------------------------------------------------------


def _audience_filter(stmt: Any, draft: NoticeDraft) -> Any:
    s = stmt.where(col(User.forgotten_at).is_(None), col(User.onboarded_at).is_not(None))
    if draft.community_id is not None:
        s = s.where(col(User.community_id) == draft.community_id)
    if draft.building_id is not None:
        s = s.where(col(User.building_id) == draft.building_id)
    if draft.audience is Audience.RESIDENTS:
        for role in SERVICE_ROLES:
            s = s.where(col(User.roles).not_like(f"%{role}%"))
    elif draft.audience is not Audience.EVERYONE:
        s = s.where(col(User.roles).like(f"%{draft.audience.value}%"))
    return s


async def count_audience(session: AsyncSession, draft: NoticeDraft) -> int:
    """How many people the notice would reach (before mutes and quiet hours)."""
    stmt = _audience_filter(select(func.count()).select_from(User), draft)
    stmt = stmt.where(col(User.blocked_at).is_(None))
    return int((await session.execute(stmt)).scalar_one())


async def recipients(session: AsyncSession, draft: NoticeDraft, *, after: int, limit: int) -> list[Recipient]:
    """The next ``limit`` people of the audience with an id above ``after``, by id."""
    stmt = _audience_filter(
        select(
            col(User.id),
            col(User.channel),
            col(User.chat_id),
            col(User.language),
            col(User.client_language),
            col(User.blocked_at),
            col(NoticePrefs.muted),
            col(NoticePrefs.quiet_on),
            col(NoticePrefs.quiet_start),
            col(NoticePrefs.quiet_end),
        ).outerjoin(NoticePrefs, col(NoticePrefs.user_id) == col(User.id)),
        draft,
    )
    stmt = stmt.where(col(User.id) > after).order_by(col(User.id)).limit(limit)
    out = []
    for row in (await session.execute(stmt)).all():
        prefs = (
            Prefs()
            if row.quiet_on is None
            else Prefs(_topics(row.muted), row.quiet_on, row.quiet_start, row.quiet_end)
        )
        out.append(
            Recipient(
                user_id=row.id,
                channel=row.channel,
                chat_id=row.chat_id,
                language=row.language or guess_language(row.client_language),
                blocked=row.blocked_at is not None,
                prefs=prefs,
            )
        )
    return out


# -- residents' settings --------------------------------------------------------------


async def prefs(session: AsyncSession, user_id: int) -> Prefs:
    return _prefs(await session.get(NoticePrefs, user_id, populate_existing=True))


async def save_prefs(session: AsyncSession, user_id: int, value: Prefs) -> None:
    row = await session.get(NoticePrefs, user_id)
    muted = ",".join(sorted(t.value for t in value.muted))
    if row is None:
        session.add(
            NoticePrefs(
                user_id=user_id,
                muted=muted,
                quiet_on=value.quiet_on,
                quiet_start=value.quiet_start,
                quiet_end=value.quiet_end,
            )
        )
    else:
        row.muted, row.quiet_on = muted, value.quiet_on
        row.quiet_start, row.quiet_end = value.quiet_start, value.quiet_end
    await session.flush()


def clock_minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def quiet_until(now: datetime, p: Prefs) -> datetime | None:
    """If ``now`` falls in the person's quiet hours, when they end (else None)."""
    if not p.quiet_on:
        return None
    start, end = clock_minutes(p.quiet_start), clock_minutes(p.quiet_end)
    if start == end:
        return None
    here = now.astimezone(LOCAL)
    minute = here.hour * 60 + here.minute
    inside = start <= minute < end if start < end else minute >= start or minute < end
    if not inside:
        return None
    end_day = here.date() if minute < end else here.date() + timedelta(days=1)
    return datetime.combine(end_day, time(end // 60, end % 60), tzinfo=LOCAL)


# -- staff responsibility -------------------------------------------------------------


async def scopes(session: AsyncSession, user_id: int) -> frozenset[int | None]:
    """The communities this staff member sends notices to; None in it means city-wide."""
    rows = await session.execute(
        select(col(StaffCommunity.community_id)).where(col(StaffCommunity.user_id) == user_id)
    )
    return frozenset(rows.scalars())


async def grant_scope(session: AsyncSession, user_id: int, community_id: int | None) -> bool:
    if community_id in await scopes(session, user_id):
        return False
    session.add(StaffCommunity(user_id=user_id, community_id=community_id))
    await session.flush()
    return True


async def revoke_scope(session: AsyncSession, user_id: int, community_id: int | None) -> bool:
    cond = (
        col(StaffCommunity.community_id).is_(None)
        if community_id is None
        else col(StaffCommunity.community_id) == community_id
    )
    stmt = delete(StaffCommunity).where(col(StaffCommunity.user_id) == user_id, cond)
    return await changed_count(session, stmt) > 0


# -- /forget --------------------------------------------------------------------------


async def erase_user(session: AsyncSession, user_id: int) -> None:
    """Settings and responsibilities go; notices they wrote stay, no longer tied to them."""
    await session.execute(delete(NoticePrefs).where(col(NoticePrefs.user_id) == user_id))
    await session.execute(delete(StaffCommunity).where(col(StaffCommunity.user_id) == user_id))
    await session.execute(
        update(Notice).where(col(Notice.author_user_id) == user_id).values(author_user_id=None)
    )
