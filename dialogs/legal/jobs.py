"""Jobs of the legal feature, derived from rows (a restart rebuilds them): reminders
24 h and 1 h before each booked consultation, to the resident and the lawyer; and the
end of each waitlist offer, which passes the held seat to the next in line (or frees it).
Runners re-read the rows and send with dedupe keys, so a repeat queues nothing new."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from dialogs import notify
from dialogs.feature import Env, Jobs
from dialogs.i18n import Tr
from dialogs.legal import buttons, cards, service
from dialogs.messages import Choice, Outgoing
from scheduler.jobs import JobSpec
from storage import legal, users
from storage.engine import Database
from storage.legal import BookingData, BookingStatus, WaitStatus


def reminder_specs(booking: BookingData, now: datetime) -> list[JobSpec]:
    if booking.status is not BookingStatus.BOOKED or booking.starts_at <= now:
        return []
    specs = []
    for hours in cards.REMINDER_HOURS:
        run_at = booking.starts_at - timedelta(hours=hours)
        if booking.created_at >= run_at:  # booked after that moment: the booking reminded them
            continue
        specs.append(
            JobSpec(f"legal-reminder:{booking.id}:{hours}", run_at, "legal-reminder", f"{booking.id}:{hours}")
        )
    return specs


async def legal_jobs(session: AsyncSession, env: Env, now: datetime) -> list[JobSpec]:
    specs: list[JobSpec] = []
    for booking in await legal.booked(session, after=now):
        specs += reminder_specs(booking, now)
    for offer in await legal.offers(session):
        if offer.offer_expires_at is not None:
            stamp = int(offer.offer_expires_at.timestamp())
            specs.append(
                JobSpec(
                    f"legal-offer-end:{offer.id}:{stamp}",
                    offer.offer_expires_at,
                    "legal-offer-end",
                    str(offer.id),
                )
            )
    return specs


async def remind(db: Database, env: Env, arg: str) -> None:
    booking_id, hours = (int(part) for part in arg.split(":"))
    async with db.transaction() as session:
        booking = await legal.get_booking(session, booking_id)
        if booking is None or booking.status is not BookingStatus.BOOKED:
            return
        slot = await legal.get_slot(session, booking.slot_id)
        if slot is None:
            return
        lawyer_name = await service.lawyer_name(session, booking.lawyer_user_id)
        resident = (
            await users.get_user(session, booking.resident_user_id) if booking.resident_user_id else None
        )
        lawyer = await users.get_user(session, booking.lawyer_user_id)
        if resident is not None:

            def to_resident(tr: Tr) -> Outgoing:
                rows = [[Choice(tr("legal.btn_mybookings"), buttons.MyBookings().pack())]]
                return Outgoing(
                    tr("legal.reminder_resident", hours=hours, slot=cards.slot_line(slot, lawyer_name, tr)),
                    choices=rows,
                )

            await notify.to_user(
                session,
                resident,
                to_resident,
                kind="legal",
                dedupe_key=f"legal:reminder:{booking.id}:{hours}:r",
            )
        if lawyer is not None:

            def to_lawyer(tr: Tr) -> Outgoing:
                return Outgoing(
                    tr(
                        "legal.reminder_lawyer",
                        hours=hours,
                        when=cards.moment_text(booking.starts_at, tr),
                        topic=cards.topic_name(booking.topic, tr),
                        name=booking.client_name or "—",
                        place=cards.place_text(slot.place, slot.place_text, tr),
                    ),
                    choices=[[Choice(tr("legal.btn_mybookings"), buttons.MyBookings().pack())]],
                )

            await notify.to_user(
                session, lawyer, to_lawyer, kind="legal", dedupe_key=f"legal:reminder:{booking.id}:{hours}:l"
            )


async def end_offer(db: Database, env: Env, arg: str) -> None:
    """The offer ran out: the next in line gets it, or the seat is free again."""
    async with db.transaction() as session:
        now = env.now()
        ended = await legal.end_offer(session, wait_id=int(arg), now=now, status=WaitStatus.EXPIRED)
        if ended is None:
            return  # accepted or declined meanwhile
        person = await users.get_user(session, ended.resident_user_id) if ended.resident_user_id else None
        if person is not None:
            await notify.to_user(
                session,
                person,
                lambda tr: Outgoing(tr("legal.offer_expired")),
                kind="legal",
                dedupe_key=f"legal:offer-expired:{ended.id}",
            )
        await service.free_seat(session, slot_id=ended.slot_id, now=now)


JOBS = Jobs(sources=(legal_jobs,), runners={"legal-reminder": remind, "legal-offer-end": end_offer})
