"""Free legal consultations: lawyers' published hours, slots with seats, bookings, the
waitlist with time-limited offers, declared conflicts, and staff's FAQ updates.

A slot's ``taken`` counts its booked seats plus the seats held for a waitlist offer.
Every change to it is one conditional UPDATE (``taken < seats`` to take a seat) and a
CHECK constraint keeps ``0 <= taken <= seats`` whatever code runs: a slot is never
overbooked, however many people press "book" at once, on SQLite or PostgreSQL.
A freed seat goes to the first in the waitlist as an offer (the seat stays taken while
the offer runs), and back to the pool only when nobody is waiting.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Column, Index, Text, UniqueConstraint, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from storage.dialect import changed_count, changed_one, upsert_insert
from storage.models import utcnow


class Place(StrEnum):
    STATION = "station"  # a community station (春芽小站)
    PHONE = "phone"
    VIDEO = "video"


class SlotStatus(StrEnum):
    OPEN = "open"
    CANCELLED = "cancelled"  # the lawyer cancelled it


class BookingStatus(StrEnum):
    BOOKED = "booked"
    DONE = "done"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"  # by the resident (or moved to another slot)
    LAWYER_CANCELLED = "lawyer_cancelled"


class WaitStatus(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"  # a seat is held for them until offer_expires_at
    ACCEPTED = "accepted"
    EXPIRED = "expired"
    DECLINED = "declined"
    LEFT = "left"
    CLOSED = "closed"  # the slot was cancelled or has passed


# -- tables -----------------------------------------------------------------------------


class LegalWindow(SQLModel, table=True):
    """Hours a lawyer publishes: every week on a weekday, or once on a date."""

    __tablename__ = "legal_windows"
    __table_args__ = (
        CheckConstraint("(weekday IS NULL) <> (day IS NULL)", name="ck_legal_windows_weekly_or_once"),
        CheckConstraint("start_minute < end_minute", name="ck_legal_windows_order"),
        CheckConstraint("seats > 0 AND slot_minutes > 0", name="ck_legal_windows_positive"),
    )

    id: int | None = Field(default=None, primary_key=True)
    lawyer_user_id: int = Field(foreign_key="users.id", index=True)
    weekday: int | None = None  # 0 = Monday, local time
    day: date | None = None
    start_minute: int  # minutes after local midnight
    end_minute: int
    slot_minutes: int
    seats: int
    place: str = Field(max_length=10)
    place_text: str = Field(default="", max_length=200)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class LegalSlot(SQLModel, table=True):
    """One consultation time of one lawyer, with seats; made from a window."""

    __tablename__ = "legal_slots"
    __table_args__ = (
        UniqueConstraint("lawyer_user_id", "starts_at"),
        CheckConstraint("taken >= 0 AND taken <= seats", name="ck_legal_slots_taken"),
        Index("ix_legal_slots_status_starts", "status", "starts_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    lawyer_user_id: int = Field(foreign_key="users.id", index=True)
    window_id: int | None = Field(default=None, foreign_key="legal_windows.id", index=True)
    starts_at: datetime
    ends_at: datetime
    seats: int
    taken: int = 0  # booked seats + seats held for a waitlist offer
    place: str = Field(max_length=10)
    place_text: str = Field(default="", max_length=200)
    status: str = Field(default=SlotStatus.OPEN.value, max_length=10)
    created_at: datetime = Field(default_factory=utcnow)


class LegalBooking(SQLModel, table=True):
    """A resident's consultation. Description and opposing party are private: only the
    assigned lawyer and staff read them (and each read is audited)."""

    __tablename__ = "legal_bookings"
    __table_args__ = (Index("ix_legal_bookings_status_starts", "status", "starts_at"),)

    id: int | None = Field(default=None, primary_key=True)
    slot_id: int = Field(foreign_key="legal_slots.id", index=True)
    lawyer_user_id: int = Field(foreign_key="users.id", index=True)
    # None once the resident used /forget.
    resident_user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    starts_at: datetime  # the slot's, kept here for reminders and ordering
    client_name: str = Field(default="", max_length=100)
    client_key: str = Field(default="", max_length=100)  # for later conflict checks
    topic: str = Field(max_length=20)
    description: str = Field(default="", max_length=500)
    opposing_party: str = Field(default="", max_length=100)
    opposing_key: str = Field(default="", max_length=100)
    status: str = Field(default=BookingStatus.BOOKED.value, max_length=20)
    lawyer_note: str = Field(default="", max_length=1000)
    # The booking this one replaced (a reschedule), if any.
    moved_from_id: int | None = Field(default=None, foreign_key="legal_bookings.id")
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class LegalWait(SQLModel, table=True):
    """A place in a full slot's waitlist; first come, first offered."""

    __tablename__ = "legal_waitlist"
    __table_args__ = (Index("ix_legal_waitlist_slot_status", "slot_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    slot_id: int = Field(foreign_key="legal_slots.id")
    resident_user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    client_name: str = Field(default="", max_length=100)
    topic: str = Field(max_length=20)
    description: str = Field(default="", max_length=500)
    opposing_party: str = Field(default="", max_length=100)
    status: str = Field(default=WaitStatus.WAITING.value, max_length=10)
    offered_at: datetime | None = None
    offer_expires_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class LegalConflict(SQLModel, table=True):
    """A party a lawyer must not advise against (declared by the lawyer)."""

    __tablename__ = "legal_conflicts"
    __table_args__ = (UniqueConstraint("lawyer_user_id", "party_key"),)

    id: int | None = Field(default=None, primary_key=True)
    lawyer_user_id: int = Field(foreign_key="users.id", index=True)
    party: str = Field(max_length=100)
    party_key: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow)


class LegalFaqEntry(SQLModel, table=True):
    """An FAQ entry imported by staff: replaces the shipped entry with the same id, or
    adds one. ``body`` is the entry as JSON (validated by dialogs.legal.kb on import)."""

    __tablename__ = "legal_faq"

    id: str = Field(primary_key=True, max_length=40)
    body: str = Field(sa_column=Column(Text, nullable=False))
    active: bool = True
    updated_at: datetime = Field(default_factory=utcnow)


# -- plain data -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowData:
    id: int
    lawyer_user_id: int
    weekday: int | None
    day: date | None
    start_minute: int
    end_minute: int
    slot_minutes: int
    seats: int
    place: Place
    place_text: str


@dataclass(frozen=True, slots=True)
class NewSlot:
    lawyer_user_id: int
    window_id: int | None
    starts_at: datetime
    ends_at: datetime
    seats: int
    place: Place
    place_text: str


@dataclass(frozen=True, slots=True)
class SlotData:
    id: int
    lawyer_user_id: int
    window_id: int | None
    starts_at: datetime
    ends_at: datetime
    seats: int
    taken: int
    place: Place
    place_text: str
    status: SlotStatus

    @property
    def free(self) -> int:
        return self.seats - self.taken if self.status is SlotStatus.OPEN else 0


@dataclass(frozen=True, slots=True)
class Request:
    """What a resident asks for: the same for a booking and a place in the waitlist."""

    resident_user_id: int
    client_name: str
    topic: str
    description: str
    opposing_party: str


@dataclass(frozen=True, slots=True)
class BookingData:
    id: int
    slot_id: int
    lawyer_user_id: int
    resident_user_id: int | None
    starts_at: datetime
    client_name: str
    topic: str
    description: str
    opposing_party: str
    status: BookingStatus
    lawyer_note: str
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class WaitData:
    id: int
    slot_id: int
    resident_user_id: int | None
    client_name: str
    topic: str
    description: str
    opposing_party: str
    status: WaitStatus
    offered_at: datetime | None
    offer_expires_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ConflictData:
    id: int
    lawyer_user_id: int
    party: str


class BookResult(StrEnum):
    BOOKED = "booked"
    FULL = "full"  # no free seat: the waitlist is offered
    GONE = "gone"  # cancelled, passed, or no such slot


@dataclass(frozen=True, slots=True)
class Booked:
    result: BookResult
    booking: BookingData | None = None


def _window(row: LegalWindow) -> WindowData:
    assert row.id is not None
    return WindowData(
        id=row.id,
        lawyer_user_id=row.lawyer_user_id,
        weekday=row.weekday,
        day=row.day,
        start_minute=row.start_minute,
        end_minute=row.end_minute,
        slot_minutes=row.slot_minutes,
        seats=row.seats,
        place=Place(row.place),
        place_text=row.place_text,
    )


def _slot(row: LegalSlot) -> SlotData:
    assert row.id is not None
    return SlotData(
        id=row.id,
        lawyer_user_id=row.lawyer_user_id,
        window_id=row.window_id,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        seats=row.seats,
        taken=row.taken,
        place=Place(row.place),
        place_text=row.place_text,
        status=SlotStatus(row.status),
    )


def _booking(row: LegalBooking) -> BookingData:
    assert row.id is not None
    return BookingData(
        id=row.id,
        slot_id=row.slot_id,
        lawyer_user_id=row.lawyer_user_id,
        resident_user_id=row.resident_user_id,
        starts_at=row.starts_at,
        client_name=row.client_name,
        topic=row.topic,
        description=row.description,
        opposing_party=row.opposing_party,
        status=BookingStatus(row.status),
        lawyer_note=row.lawyer_note,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


def _wait(row: LegalWait) -> WaitData:
    assert row.id is not None
    return WaitData(
        id=row.id,
        slot_id=row.slot_id,
        resident_user_id=row.resident_user_id,
        client_name=row.client_name,
        topic=row.topic,
        description=row.description,
        opposing_party=row.opposing_party,
        status=WaitStatus(row.status),
        offered_at=row.offered_at,
        offer_expires_at=row.offer_expires_at,
        created_at=row.created_at,
    )


# -- parties (conflict checks) ---------------------------------------------------------

_NOT_NAME = re.compile(r"[\s\W_]+", re.UNICODE)
# Words that say what kind of party it is, not which one.
_SUFFIXES = ("有限责任公司", "股份有限公司", "有限公司", "公司", "集团", "先生", "女士", "ltd", "inc", "co")


def party_key(name: str) -> str:
    """A party's name as compared: width, case, spaces, punctuation and company-form
    suffixes do not tell two parties apart ("美团 （公司）" = "美团公司" = "美团")."""
    key = _NOT_NAME.sub("", unicodedata.normalize("NFKC", name).lower())
    for suffix in _SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix) + 1:
            key = key[: -len(suffix)]
            break
    return key[:100]


def same_party(a: str, b: str) -> bool:
    """Keys of the same party: equal, or one a longer form of the other (at least 3
    characters in common, so two-character surnames alone never match)."""
    if not a or not b:
        return False
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    return len(short) >= 3 and short in long


# -- windows and slots ------------------------------------------------------------------


async def add_window(
    session: AsyncSession,
    *,
    lawyer_user_id: int,
    weekday: int | None,
    day: date | None,
    start_minute: int,
    end_minute: int,
    slot_minutes: int,
    seats: int,
    place: Place,
    place_text: str,
) -> WindowData:
    row = LegalWindow(
        lawyer_user_id=lawyer_user_id,
        weekday=weekday,
        day=day,
        start_minute=start_minute,
        end_minute=end_minute,
        slot_minutes=slot_minutes,
        seats=seats,
        place=place.value,
        place_text=place_text,
    )
    session.add(row)
    await session.flush()
    return _window(row)


async def windows(session: AsyncSession, *, lawyer_user_id: int | None = None) -> list[WindowData]:
    stmt = select(LegalWindow).where(col(LegalWindow.active).is_(True)).order_by(col(LegalWindow.id))
    if lawyer_user_id is not None:
        stmt = stmt.where(col(LegalWindow.lawyer_user_id) == lawyer_user_id)
    return [_window(r) for r in (await session.execute(stmt)).scalars()]


async def last_window(session: AsyncSession, lawyer_user_id: int) -> WindowData | None:
    stmt = (
        select(LegalWindow)
        .where(col(LegalWindow.lawyer_user_id) == lawyer_user_id)
        .order_by(col(LegalWindow.id).desc())
        .limit(1)
    )
    row = (await session.execute(stmt)).scalar_one_or_none()
    return None if row is None else _window(row)


async def remove_window(session: AsyncSession, *, window_id: int, lawyer_user_id: int, now: datetime) -> bool:
    """Stop publishing a window; its future slots nobody booked go, booked ones stay."""
    removed = await changed_one(
        session,
        update(LegalWindow)
        .where(
            col(LegalWindow.id) == window_id,
            col(LegalWindow.lawyer_user_id) == lawyer_user_id,
            col(LegalWindow.active).is_(True),
        )
        .values(active=False),
    )
    if removed:
        await session.execute(
            delete(LegalSlot).where(
                col(LegalSlot.window_id) == window_id,
                col(LegalSlot.taken) == 0,
                col(LegalSlot.starts_at) > now,
                ~select(col(LegalWait.id)).where(col(LegalWait.slot_id) == col(LegalSlot.id)).exists(),
                ~select(col(LegalBooking.id)).where(col(LegalBooking.slot_id) == col(LegalSlot.id)).exists(),
            )
        )
    return removed


async def ensure_slots(session: AsyncSession, slots: Sequence[NewSlot]) -> int:
    """Create the slots that do not exist yet (a lawyer's time is made once; a slot the
    lawyer cancelled stays cancelled). Safe to run from several workers at once."""
    if not slots:
        return 0
    stmt = (
        upsert_insert(session, LegalSlot)
        .values(
            [
                {
                    "lawyer_user_id": s.lawyer_user_id,
                    "window_id": s.window_id,
                    "starts_at": s.starts_at,
                    "ends_at": s.ends_at,
                    "seats": s.seats,
                    "taken": 0,
                    "place": s.place.value,
                    "place_text": s.place_text,
                    "status": SlotStatus.OPEN.value,
                    "created_at": utcnow(),
                }
                for s in slots
            ]
        )
        .on_conflict_do_nothing(index_elements=["lawyer_user_id", "starts_at"])
    )
    return await changed_count(session, stmt)


async def get_slot(session: AsyncSession, slot_id: int) -> SlotData | None:
    row = await session.get(LegalSlot, slot_id, populate_existing=True)
    return None if row is None else _slot(row)


async def open_slots(session: AsyncSession, *, start: datetime, end: datetime) -> list[SlotData]:
    """Open slots starting in [start, end), full ones included (they have waitlists)."""
    stmt = (
        select(LegalSlot)
        .where(
            col(LegalSlot.status) == SlotStatus.OPEN.value,
            col(LegalSlot.starts_at) >= start,
            col(LegalSlot.starts_at) < end,
        )
        .order_by(col(LegalSlot.starts_at), col(LegalSlot.id))
    )
    return [_slot(r) for r in (await session.execute(stmt)).scalars()]


async def lawyer_slots(session: AsyncSession, *, lawyer_user_id: int, since: datetime) -> list[SlotData]:
    stmt = (
        select(LegalSlot)
        .where(
            col(LegalSlot.lawyer_user_id) == lawyer_user_id,
            col(LegalSlot.status) == SlotStatus.OPEN.value,
            col(LegalSlot.starts_at) >= since,
        )
        .order_by(col(LegalSlot.starts_at))
    )
    return [_slot(r) for r in (await session.execute(stmt)).scalars()]


# -- booking ----------------------------------------------------------------------------


async def book(session: AsyncSession, *, slot_id: int, request: Request, now: datetime) -> Booked:
    """Take a seat and book it, or say why not. The seat is taken by one conditional
    UPDATE: of many people pressing at once, exactly ``seats`` get one."""
    took = await changed_one(
        session,
        update(LegalSlot)
        .where(
            col(LegalSlot.id) == slot_id,
            col(LegalSlot.status) == SlotStatus.OPEN.value,
            col(LegalSlot.starts_at) > now,
            col(LegalSlot.taken) < col(LegalSlot.seats),
        )
        .values(taken=col(LegalSlot.taken) + 1),
    )
    slot = await get_slot(session, slot_id)
    if not took:
        if slot is None or slot.status is not SlotStatus.OPEN or slot.starts_at <= now:
            return Booked(BookResult.GONE)
        return Booked(BookResult.FULL)
    assert slot is not None
    return Booked(BookResult.BOOKED, await _insert_booking(session, slot, request))


async def _insert_booking(
    session: AsyncSession, slot: SlotData, request: Request, moved_from: int | None = None
) -> BookingData:
    row = LegalBooking(
        slot_id=slot.id,
        lawyer_user_id=slot.lawyer_user_id,
        resident_user_id=request.resident_user_id,
        starts_at=slot.starts_at,
        client_name=request.client_name[:100],
        client_key=party_key(request.client_name),
        topic=request.topic,
        description=request.description,
        opposing_party=request.opposing_party,
        opposing_key=party_key(request.opposing_party),
        moved_from_id=moved_from,
    )
    session.add(row)
    await session.flush()
    return _booking(row)


async def get_booking(session: AsyncSession, booking_id: int) -> BookingData | None:
    row = await session.get(LegalBooking, booking_id, populate_existing=True)
    return None if row is None else _booking(row)


async def has_booking(session: AsyncSession, *, slot_id: int, resident_user_id: int) -> bool:
    stmt = select(func.count()).where(
        col(LegalBooking.slot_id) == slot_id,
        col(LegalBooking.resident_user_id) == resident_user_id,
        col(LegalBooking.status) == BookingStatus.BOOKED.value,
    )
    return bool((await session.execute(stmt)).scalar_one())


async def bookings_of_slot(session: AsyncSession, slot_id: int) -> list[BookingData]:
    stmt = (
        select(LegalBooking)
        .where(col(LegalBooking.slot_id) == slot_id, col(LegalBooking.status) == BookingStatus.BOOKED.value)
        .order_by(col(LegalBooking.id))
    )
    return [_booking(r) for r in (await session.execute(stmt)).scalars()]


async def booked(session: AsyncSession, *, after: datetime) -> list[BookingData]:
    """Booked consultations still ahead (for reminders)."""
    stmt = select(LegalBooking).where(
        col(LegalBooking.status) == BookingStatus.BOOKED.value, col(LegalBooking.starts_at) > after
    )
    return [_booking(r) for r in (await session.execute(stmt)).scalars()]


async def for_resident(session: AsyncSession, resident_user_id: int, *, limit: int = 20) -> list[BookingData]:
    stmt = (
        select(LegalBooking)
        .where(col(LegalBooking.resident_user_id) == resident_user_id)
        .order_by(col(LegalBooking.starts_at).desc())
        .limit(limit)
    )
    return [_booking(r) for r in (await session.execute(stmt)).scalars()]


async def for_lawyer(session: AsyncSession, lawyer_user_id: int, *, since: datetime) -> list[BookingData]:
    """The lawyer's booked consultations from ``since`` on (earlier ones still to mark)."""
    stmt = (
        select(LegalBooking)
        .where(
            col(LegalBooking.lawyer_user_id) == lawyer_user_id,
            col(LegalBooking.status) == BookingStatus.BOOKED.value,
            col(LegalBooking.starts_at) >= since,
        )
        .order_by(col(LegalBooking.starts_at), col(LegalBooking.id))
    )
    return [_booking(r) for r in (await session.execute(stmt)).scalars()]


async def all_upcoming(session: AsyncSession, *, since: datetime, limit: int = 50) -> list[BookingData]:
    stmt = (
        select(LegalBooking)
        .where(col(LegalBooking.status) == BookingStatus.BOOKED.value, col(LegalBooking.starts_at) >= since)
        .order_by(col(LegalBooking.starts_at))
        .limit(limit)
    )
    return [_booking(r) for r in (await session.execute(stmt)).scalars()]


async def cancel_booking(
    session: AsyncSession, *, booking_id: int, status: BookingStatus = BookingStatus.CANCELLED
) -> BookingData | None:
    """Booked → cancelled (once); the caller then frees the seat with ``release_seat``."""
    done = await changed_one(
        session,
        update(LegalBooking)
        .where(col(LegalBooking.id) == booking_id, col(LegalBooking.status) == BookingStatus.BOOKED.value)
        .values(status=status.value, finished_at=utcnow()),
    )
    return await get_booking(session, booking_id) if done else None


async def move_booking(
    session: AsyncSession, *, booking_id: int, to_slot_id: int, now: datetime
) -> tuple[BookResult, BookingData | None]:
    """Reschedule: take a seat in the new slot first, then give up the old booking.
    The old seat is then freed by the caller (``release_seat``)."""
    old = await get_booking(session, booking_id)
    if old is None or old.status is not BookingStatus.BOOKED or old.resident_user_id is None:
        return BookResult.GONE, None
    request = Request(
        resident_user_id=old.resident_user_id,
        client_name=old.client_name,
        topic=old.topic,
        description=old.description,
        opposing_party=old.opposing_party,
    )
    took = await changed_one(
        session,
        update(LegalSlot)
        .where(
            col(LegalSlot.id) == to_slot_id,
            col(LegalSlot.status) == SlotStatus.OPEN.value,
            col(LegalSlot.starts_at) > now,
            col(LegalSlot.taken) < col(LegalSlot.seats),
        )
        .values(taken=col(LegalSlot.taken) + 1),
    )
    slot = await get_slot(session, to_slot_id)
    if not took or slot is None:
        gone = slot is None or slot.status is not SlotStatus.OPEN or slot.starts_at <= now
        return (BookResult.GONE if gone else BookResult.FULL), None
    if await cancel_booking(session, booking_id=booking_id) is None:
        # Cancelled meanwhile: give the new seat back, nothing moved.
        await _free_one(session, to_slot_id)
        return BookResult.GONE, None
    return BookResult.BOOKED, await _insert_booking(session, slot, request, moved_from=booking_id)


async def finish(
    session: AsyncSession, *, booking_id: int, lawyer_user_id: int, status: BookingStatus
) -> BookingData | None:
    """The lawyer marks a consultation done or no-show (once)."""
    done = await changed_one(
        session,
        update(LegalBooking)
        .where(
            col(LegalBooking.id) == booking_id,
            col(LegalBooking.lawyer_user_id) == lawyer_user_id,
            col(LegalBooking.status) == BookingStatus.BOOKED.value,
        )
        .values(status=status.value, finished_at=utcnow()),
    )
    return await get_booking(session, booking_id) if done else None


async def set_note(session: AsyncSession, *, booking_id: int, lawyer_user_id: int, note: str) -> bool:
    return await changed_one(
        session,
        update(LegalBooking)
        .where(col(LegalBooking.id) == booking_id, col(LegalBooking.lawyer_user_id) == lawyer_user_id)
        .values(lawyer_note=note[:1000]),
    )


# -- freeing seats and the waitlist -----------------------------------------------------


async def _free_one(session: AsyncSession, slot_id: int) -> None:
    await session.execute(
        update(LegalSlot)
        .where(col(LegalSlot.id) == slot_id, col(LegalSlot.taken) > 0)
        .values(taken=col(LegalSlot.taken) - 1)
    )


async def release_seat(
    session: AsyncSession, *, slot_id: int, now: datetime, hold_until: datetime | None
) -> WaitData | None:
    """A seat of this slot is free again: it goes as an offer (held until
    ``hold_until``) to the first person waiting, or back to the pool. Returns the offer."""
    slot = await get_slot(session, slot_id)
    if slot is not None and slot.status is SlotStatus.OPEN and hold_until is not None and hold_until > now:
        while True:
            first = (
                await session.execute(
                    select(LegalWait)
                    .where(
                        col(LegalWait.slot_id) == slot_id,
                        col(LegalWait.status) == WaitStatus.WAITING.value,
                    )
                    .order_by(col(LegalWait.id))
                    .limit(1)
                )
            ).scalar_one_or_none()
            if first is None:
                break
            assert first.id is not None
            offered = await changed_one(
                session,
                update(LegalWait)
                .where(col(LegalWait.id) == first.id, col(LegalWait.status) == WaitStatus.WAITING.value)
                .values(status=WaitStatus.OFFERED.value, offered_at=now, offer_expires_at=hold_until),
            )
            if offered:
                return await get_wait(session, first.id)
    await _free_one(session, slot_id)
    return None


async def join_waitlist(session: AsyncSession, *, slot_id: int, request: Request) -> tuple[WaitData, int]:
    """A place at the end of the line (the same place if already in it); with the position."""
    existing = (
        await session.execute(
            select(LegalWait).where(
                col(LegalWait.slot_id) == slot_id,
                col(LegalWait.resident_user_id) == request.resident_user_id,
                col(LegalWait.status).in_([WaitStatus.WAITING.value, WaitStatus.OFFERED.value]),
            )
        )
    ).scalar_one_or_none()
    if existing is None:
        existing = LegalWait(
            slot_id=slot_id,
            resident_user_id=request.resident_user_id,
            client_name=request.client_name[:100],
            topic=request.topic,
            description=request.description,
            opposing_party=request.opposing_party,
        )
        session.add(existing)
        await session.flush()
    wait = _wait(existing)
    return wait, await position(session, wait)


async def position(session: AsyncSession, wait: WaitData) -> int:
    """1 for the first in line."""
    stmt = select(func.count()).where(
        col(LegalWait.slot_id) == wait.slot_id,
        col(LegalWait.status) == WaitStatus.WAITING.value,
        col(LegalWait.id) <= wait.id,
    )
    return int((await session.execute(stmt)).scalar_one())


async def waiting_count(session: AsyncSession, slot_id: int) -> int:
    stmt = select(func.count()).where(
        col(LegalWait.slot_id) == slot_id, col(LegalWait.status) == WaitStatus.WAITING.value
    )
    return int((await session.execute(stmt)).scalar_one())


async def get_wait(session: AsyncSession, wait_id: int) -> WaitData | None:
    row = await session.get(LegalWait, wait_id, populate_existing=True)
    return None if row is None else _wait(row)


async def waits_for(session: AsyncSession, resident_user_id: int) -> list[WaitData]:
    stmt = (
        select(LegalWait)
        .where(
            col(LegalWait.resident_user_id) == resident_user_id,
            col(LegalWait.status).in_([WaitStatus.WAITING.value, WaitStatus.OFFERED.value]),
        )
        .order_by(col(LegalWait.id))
    )
    return [_wait(r) for r in (await session.execute(stmt)).scalars()]


async def offers(session: AsyncSession) -> list[WaitData]:
    """Offers still running (their expiry is a job)."""
    stmt = select(LegalWait).where(col(LegalWait.status) == WaitStatus.OFFERED.value)
    return [_wait(r) for r in (await session.execute(stmt)).scalars()]


async def accept_offer(
    session: AsyncSession, *, wait_id: int, resident_user_id: int, now: datetime
) -> BookingData | None:
    """The offered person takes the held seat (before the offer runs out)."""
    took = await changed_one(
        session,
        update(LegalWait)
        .where(
            col(LegalWait.id) == wait_id,
            col(LegalWait.resident_user_id) == resident_user_id,
            col(LegalWait.status) == WaitStatus.OFFERED.value,
            col(LegalWait.offer_expires_at) > now,
        )
        .values(status=WaitStatus.ACCEPTED.value),
    )
    if not took:
        return None
    wait = await get_wait(session, wait_id)
    assert wait is not None
    assert wait.resident_user_id is not None
    slot = await get_slot(session, wait.slot_id)
    assert slot is not None
    request = Request(
        wait.resident_user_id, wait.client_name, wait.topic, wait.description, wait.opposing_party
    )
    return await _insert_booking(session, slot, request)


async def end_offer(
    session: AsyncSession,
    *,
    wait_id: int,
    now: datetime,
    status: WaitStatus,
    resident_user_id: int | None = None,
) -> WaitData | None:
    """An offer runs out (EXPIRED, only once its time passed) or is declined (DECLINED,
    by its owner). The caller passes the held seat on with ``release_seat``."""
    stmt = update(LegalWait).where(
        col(LegalWait.id) == wait_id, col(LegalWait.status) == WaitStatus.OFFERED.value
    )
    if status is WaitStatus.EXPIRED:
        stmt = stmt.where(col(LegalWait.offer_expires_at) <= now)
    if resident_user_id is not None:
        stmt = stmt.where(col(LegalWait.resident_user_id) == resident_user_id)
    if not await changed_one(session, stmt.values(status=status.value)):
        return None
    return await get_wait(session, wait_id)


async def leave_waitlist(session: AsyncSession, *, wait_id: int, resident_user_id: int) -> bool:
    return await changed_one(
        session,
        update(LegalWait)
        .where(
            col(LegalWait.id) == wait_id,
            col(LegalWait.resident_user_id) == resident_user_id,
            col(LegalWait.status) == WaitStatus.WAITING.value,
        )
        .values(status=WaitStatus.LEFT.value),
    )


# -- the lawyer cancels a slot ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CancelledSlot:
    slot: SlotData
    bookings: list[BookingData]
    waits: list[WaitData]


async def cancel_slot(session: AsyncSession, *, slot_id: int, lawyer_user_id: int) -> CancelledSlot | None:
    """The lawyer cannot come: the slot closes, its bookings and waitlist end (once)."""
    closed = await changed_one(
        session,
        update(LegalSlot)
        .where(
            col(LegalSlot.id) == slot_id,
            col(LegalSlot.lawyer_user_id) == lawyer_user_id,
            col(LegalSlot.status) == SlotStatus.OPEN.value,
        )
        .values(status=SlotStatus.CANCELLED.value),
    )
    if not closed:
        return None
    affected = await bookings_of_slot(session, slot_id)
    await session.execute(
        update(LegalBooking)
        .where(col(LegalBooking.slot_id) == slot_id, col(LegalBooking.status) == BookingStatus.BOOKED.value)
        .values(status=BookingStatus.LAWYER_CANCELLED.value, finished_at=utcnow())
    )
    open_waits = [
        _wait(r)
        for r in (
            await session.execute(
                select(LegalWait).where(
                    col(LegalWait.slot_id) == slot_id,
                    col(LegalWait.status).in_([WaitStatus.WAITING.value, WaitStatus.OFFERED.value]),
                )
            )
        ).scalars()
    ]
    await session.execute(
        update(LegalWait)
        .where(col(LegalWait.id).in_([w.id for w in open_waits]))
        .values(status=WaitStatus.CLOSED.value)
    )
    await session.execute(update(LegalSlot).where(col(LegalSlot.id) == slot_id).values(taken=0))
    slot = await get_slot(session, slot_id)
    assert slot is not None
    return CancelledSlot(slot, affected, open_waits)


# -- conflicts ----------------------------------------------------------------------------


async def add_conflict(session: AsyncSession, *, lawyer_user_id: int, party: str) -> bool:
    key = party_key(party)
    if not key:
        return False
    stmt = (
        upsert_insert(session, LegalConflict)
        .values(lawyer_user_id=lawyer_user_id, party=party[:100], party_key=key, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["lawyer_user_id", "party_key"])
    )
    return bool(await changed_count(session, stmt))


async def conflicts(session: AsyncSession, lawyer_user_id: int) -> list[ConflictData]:
    stmt = (
        select(LegalConflict)
        .where(col(LegalConflict.lawyer_user_id) == lawyer_user_id)
        .order_by(col(LegalConflict.id))
    )
    rows = (await session.execute(stmt)).scalars()
    return [ConflictData(r.id, r.lawyer_user_id, r.party) for r in rows if r.id is not None]


async def remove_conflict(session: AsyncSession, *, conflict_id: int, lawyer_user_id: int) -> bool:
    return await changed_one(
        session,
        delete(LegalConflict).where(
            col(LegalConflict.id) == conflict_id, col(LegalConflict.lawyer_user_id) == lawyer_user_id
        ),
    )


async def conflicted_lawyers(session: AsyncSession, *, opposing_party: str, client_name: str) -> set[int]:
    """Lawyers who must not take this case: they declared a conflict with the opposing
    party, advised that party before, or advised someone against this client."""
    party, client = party_key(opposing_party), party_key(client_name)
    out: set[int] = set()
    if party:
        for lawyer, key in (
            await session.execute(select(col(LegalConflict.lawyer_user_id), col(LegalConflict.party_key)))
        ).all():
            if same_party(key, party):
                out.add(lawyer)
    advised = (
        await session.execute(
            select(
                col(LegalBooking.lawyer_user_id), col(LegalBooking.client_key), col(LegalBooking.opposing_key)
            )
            .where(col(LegalBooking.status).in_([BookingStatus.BOOKED.value, BookingStatus.DONE.value]))
            .distinct()
        )
    ).all()
    for lawyer, client_key, opposing_key in advised:
        if same_party(client_key, party) or same_party(opposing_key, client):
            out.add(lawyer)
    return out


# -- /forget --------------------------------------------------------------------------------


async def erase_resident(session: AsyncSession, user_id: int) -> None:
    """What the person typed and who they are leave every booking and waitlist place;
    the rows stay (the lawyer's record of hours served depends on them)."""
    await session.execute(
        update(LegalBooking)
        .where(col(LegalBooking.resident_user_id) == user_id)
        .values(
            resident_user_id=None,
            client_name="",
            client_key="",
            description="",
            opposing_party="",
            opposing_key="",
            lawyer_note="",
        )
    )
    await session.execute(delete(LegalWait).where(col(LegalWait.resident_user_id) == user_id))


async def erase_lawyer(session: AsyncSession, user_id: int) -> None:
    await session.execute(
        update(LegalWindow).where(col(LegalWindow.lawyer_user_id) == user_id).values(active=False)
    )
    await session.execute(delete(LegalConflict).where(col(LegalConflict.lawyer_user_id) == user_id))
    await session.execute(
        update(LegalBooking).where(col(LegalBooking.lawyer_user_id) == user_id).values(lawyer_note="")
    )


# -- the FAQ staff import -----------------------------------------------------------------------


async def faq_entries(session: AsyncSession) -> list[tuple[str, str, bool]]:
    """(id, JSON body, active) of every imported entry."""
    stmt = select(col(LegalFaqEntry.id), col(LegalFaqEntry.body), col(LegalFaqEntry.active)).order_by(
        col(LegalFaqEntry.id)
    )
    return [(i, b, a) for i, b, a in (await session.execute(stmt)).all()]


async def save_faq_entry(session: AsyncSession, *, entry_id: str, body: str, active: bool = True) -> None:
    row = await session.get(LegalFaqEntry, entry_id)
    if row is None:
        session.add(LegalFaqEntry(id=entry_id, body=body, active=active))
    else:
        row.body, row.active, row.updated_at = body, active, utcnow()
    await session.flush()
