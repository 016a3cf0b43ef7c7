"""How the legal feature says things: times, slots, bookings, answers, where to go."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from dialogs.i18n import Tr
from dialogs.legal.kb import Entry
from dialogs.legal.triage import Urgent
from storage.legal import BookingData, Place, SlotData

LOCAL = ZoneInfo("Asia/Shanghai")
# Residents may cancel or move a booking until this long before it starts.
CHANGE_CUTOFF = timedelta(hours=2)
# A freed seat is held this long for the first in the waitlist.
OFFER_HOLD = timedelta(hours=2)
# Slots are offered this many days ahead.
HORIZON_DAYS = 14
REMINDER_HOURS = (24, 1)


def local(moment: datetime) -> datetime:
    return moment.astimezone(LOCAL)


def day_text(day: date, tr: Tr) -> str:
    return tr("legal.day", month=day.month, day=day.day, weekday=tr(f"legal.weekday_{day.weekday()}"))


def moment_text(moment: datetime, tr: Tr) -> str:
    here = local(moment)
    return f"{day_text(here.date(), tr)} {here:%H:%M}"


def place_text(place: Place, text: str, tr: Tr) -> str:
    label = tr(f"legal.place_{place.value}")
    return f"{label}（{text}）" if text and tr.lang == "zh" else f"{label} ({text})" if text else label


def slot_line(slot: SlotData, lawyer_name: str, tr: Tr) -> str:
    return tr(
        "legal.slot_line",
        when=moment_text(slot.starts_at, tr),
        end=f"{local(slot.ends_at):%H:%M}",
        lawyer=lawyer_name or tr("legal.lawyer_anonymous"),
        place=place_text(slot.place, slot.place_text, tr),
    )


def topic_name(topic: str, tr: Tr) -> str:
    return tr(f"legal.topic_{topic}")


def booking_line(booking: BookingData, slot: SlotData | None, lawyer_name: str, tr: Tr) -> str:
    where = place_text(slot.place, slot.place_text, tr) if slot else "—"
    return tr(
        "legal.booking_line",
        id=booking.id,
        when=moment_text(booking.starts_at, tr),
        topic=topic_name(booking.topic, tr),
        lawyer=lawyer_name or tr("legal.lawyer_anonymous"),
        place=where,
        status=tr(f"legal.status_{booking.status.value}"),
    )


def where_lines(entry: Entry, tr: Tr) -> str:
    return "\n".join(tr(f"legal.where_{w}") for w in entry.where)


def answer_text(entry: Entry, tr: Tr, *, score: float | None = None) -> str:
    head = entry.title(tr.lang)
    if score is not None:
        head = tr("legal.answer_head", title=head, score=round(score))
    return tr(
        "legal.answer",
        head=head,
        answer=entry.answer(tr.lang),
        law=entry.law(tr.lang),
        where=where_lines(entry, tr),
    )


def urgent_text(kind: Urgent, tr: Tr) -> str:
    return tr("legal.urgent_self_harm" if kind is Urgent.SELF_HARM else "legal.urgent_violence")


def can_change(booking: BookingData, now: datetime) -> bool:
    return booking.starts_at - CHANGE_CUTOFF > now


def hold_until(slot: SlotData, now: datetime) -> datetime | None:
    """How long a freed seat may wait for someone in the waitlist (None: no time left)."""
    until = min(now + OFFER_HOLD, slot.starts_at - timedelta(hours=1))
    return until if until > now else None
