"""What several screens and jobs of the legal feature do alike: make slots from the
lawyers' published hours, list what a resident may book (conflicts excluded), pass a
freed seat on to the waitlist, and tell people what happened (through the outbox)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from dialogs import notify
from dialogs.i18n import Tr
from dialogs.legal import buttons, cards
from dialogs.messages import Choice, Outgoing
from storage import legal, users
from storage.legal import BookingData, CancelledSlot, NewSlot, SlotData, WaitData, WindowData

ALTERNATIVES = 3


def plan(window: WindowData, start: datetime, end: datetime) -> list[NewSlot]:
    """The slots a window makes between ``start`` and ``end``."""
    out = []
    first = cards.local(start).date()
    for offset in range((cards.local(end).date() - first).days + 1):
        day = first + timedelta(days=offset)
        if window.day is not None and day != window.day:
            continue
        if window.weekday is not None and day.weekday() != window.weekday:
            continue
        minute = window.start_minute
        while minute + window.slot_minutes <= window.end_minute:
            begins = _at(day, minute)
            if start <= begins < end:
                out.append(
                    NewSlot(
                        lawyer_user_id=window.lawyer_user_id,
                        window_id=window.id,
                        starts_at=begins,
                        ends_at=begins + timedelta(minutes=window.slot_minutes),
                        seats=window.seats,
                        place=window.place,
                        place_text=window.place_text,
                    )
                )
            minute += window.slot_minutes
    return out


def _at(day: date, minute: int) -> datetime:
    return datetime.combine(day, time(minute // 60, minute % 60), tzinfo=cards.LOCAL)


async def ensure_slots(session: AsyncSession, now: datetime) -> None:
    end = now + timedelta(days=cards.HORIZON_DAYS)
    planned = [s for w in await legal.windows(session) for s in plan(w, now, end)]
    await legal.ensure_slots(session, planned)


async def lawyer_name(session: AsyncSession, user_id: int) -> str:
    person = await users.get_user(session, user_id)
    return person.display_name if person is not None and not person.forgotten else ""


async def bookable(
    session: AsyncSession, *, now: datetime, resident_id: int, client_name: str, opposing_party: str
) -> list[SlotData]:
    """Open slots ahead (full ones too: they have waitlists), without lawyers who have a
    conflict with this case, nor the resident's own (a lawyer booking for themselves)."""
    await ensure_slots(session, now)
    excluded = await legal.conflicted_lawyers(session, opposing_party=opposing_party, client_name=client_name)
    excluded.add(resident_id)
    slots = await legal.open_slots(
        session, start=now + cards.CHANGE_CUTOFF, end=now + timedelta(days=cards.HORIZON_DAYS)
    )
    return [s for s in slots if s.lawyer_user_id not in excluded]


async def free_seat(session: AsyncSession, *, slot_id: int, now: datetime) -> WaitData | None:
    """A seat of the slot is free: offer it to the first in line (and tell them), or
    give it back."""
    slot = await legal.get_slot(session, slot_id)
    until = cards.hold_until(slot, now) if slot is not None else None
    offer = await legal.release_seat(session, slot_id=slot_id, now=now, hold_until=until)
    if offer is not None and slot is not None:
        await tell_offer(session, offer, slot)
    return offer


async def tell_offer(session: AsyncSession, wait: WaitData, slot: SlotData) -> None:
    person = await users.get_user(session, wait.resident_user_id) if wait.resident_user_id else None
    if person is None or wait.offer_expires_at is None:
        return
    name = await lawyer_name(session, slot.lawyer_user_id)
    expires = wait.offer_expires_at

    def build(tr: Tr) -> Outgoing:
        return Outgoing(
            tr(
                "legal.offer",
                slot=cards.slot_line(slot, name, tr),
                until=f"{cards.local(expires):%H:%M}",
            ),
            choices=[
                [Choice(tr("legal.offer_accept"), buttons.AcceptOffer(wait=wait.id).pack())],
                [Choice(tr("legal.offer_decline"), buttons.DeclineOffer(wait=wait.id).pack())],
            ],
        )

    await notify.to_user(
        session, person, build, kind="legal", dedupe_key=f"legal:offer:{wait.id}:{int(expires.timestamp())}"
    )


async def tell_lawyer_booked(session: AsyncSession, booking: BookingData, *, moved: bool = False) -> None:
    lawyer = await users.get_user(session, booking.lawyer_user_id)
    if lawyer is None:
        return

    def build(tr: Tr) -> Outgoing:
        return Outgoing(
            tr(
                "legal.lawyer_new_moved" if moved else "legal.lawyer_new",
                when=cards.moment_text(booking.starts_at, tr),
                topic=cards.topic_name(booking.topic, tr),
                name=booking.client_name or "—",
            ),
            choices=[[Choice(tr("legal.btn_mybookings"), buttons.MyBookings().pack())]],
        )

    await notify.to_user(session, lawyer, build, kind="legal", dedupe_key=f"legal:new:{booking.id}")


async def tell_lawyer_cancelled(session: AsyncSession, booking: BookingData) -> None:
    lawyer = await users.get_user(session, booking.lawyer_user_id)
    if lawyer is None:
        return
    await notify.to_user(
        session,
        lawyer,
        lambda tr: Outgoing(
            tr(
                "legal.lawyer_cancelled_by_resident",
                when=cards.moment_text(booking.starts_at, tr),
                topic=cards.topic_name(booking.topic, tr),
            )
        ),
        kind="legal",
        dedupe_key=f"legal:cancelled:{booking.id}",
    )


async def cancel_slot(
    session: AsyncSession, *, slot_id: int, lawyer_id: int, now: datetime
) -> CancelledSlot | None:
    """The lawyer cancels a slot: each booked resident hears it with other slots to
    choose from first; people waiting hear the slot is gone."""
    cancelled = await legal.cancel_slot(session, slot_id=slot_id, lawyer_user_id=lawyer_id)
    if cancelled is None:
        return None
    for booking in cancelled.bookings:
        await _tell_resident_slot_cancelled(session, booking, now)
    for wait in cancelled.waits:
        person = await users.get_user(session, wait.resident_user_id) if wait.resident_user_id else None
        if person is not None:
            await notify.to_user(
                session,
                person,
                lambda tr: Outgoing(
                    tr("legal.wait_slot_cancelled", when=cards.moment_text(cancelled.slot.starts_at, tr)),
                    choices=[[Choice(tr("legal.btn_book_again"), buttons.BookAgain().pack())]],
                ),
                kind="legal",
                dedupe_key=f"legal:wait-closed:{wait.id}",
            )
    return cancelled


async def _tell_resident_slot_cancelled(session: AsyncSession, booking: BookingData, now: datetime) -> None:
    person = await users.get_user(session, booking.resident_user_id) if booking.resident_user_id else None
    if person is None:
        return
    others = [
        s
        for s in await bookable(
            session,
            now=now,
            resident_id=person.id,
            client_name=booking.client_name,
            opposing_party=booking.opposing_party,
        )
        if s.free > 0 and s.id != booking.slot_id
    ][:ALTERNATIVES]
    names = {s.lawyer_user_id: await lawyer_name(session, s.lawyer_user_id) for s in others}

    def build(tr: Tr) -> Outgoing:
        rows = [
            [
                Choice(
                    cards.slot_line(s, names[s.lawyer_user_id], tr),
                    buttons.Rebook(booking=booking.id, slot=s.id).pack(),
                )
            ]
            for s in others
        ]
        rows.append([Choice(tr("legal.btn_book_again"), buttons.BookAgain().pack())])
        key = "legal.slot_cancelled_alternatives" if others else "legal.slot_cancelled_none"
        return Outgoing(tr(key, when=cards.moment_text(booking.starts_at, tr)), choices=rows)

    await notify.to_user(
        session, person, build, kind="legal", dedupe_key=f"legal:slot-cancelled:{booking.id}"
    )
