"""The lawyer's side: publishing hours (/lawyer_hours), declared conflicts, their
consultations in /mybookings (done, no-show, private notes, cancelling a slot), and
staff's overview (/legal_bookings). Descriptions and opposing parties are shown only
here, to the assigned lawyer or staff, and every such read is written to the audit log.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from dialogs.buttons import menu_data
from dialogs.core import Context, Done, Flow, Next, Result, Retry, Step
from dialogs.feature import NotAllowed
from dialogs.legal import buttons, cards, service
from dialogs.messages import Choice, Kind
from dialogs.validate import clean_text
from storage import audit, legal
from storage.data import Role
from storage.legal import BookingData, BookingStatus, Place, WindowData

HOURS = "legal_hours"
NOTE = "legal_note"
PRESET_HOURS = ((9 * 60, 12 * 60), (14 * 60, 17 * 60), (19 * 60, 21 * 60))
LENGTHS = (20, 30, 45, 60)
SEATS = (1, 2, 3, 4, 6)
_RANGE = re.compile(r"^\s*(\d{1,2})[:：点.]?(\d{2})?\s*[-~到至—]+\s*(\d{1,2})[:：点.]?(\d{2})?\s*$")
PAST_DAYS = 7  # consultations up to a week old can still be marked


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def window_text(window: WindowData, ctx: Context) -> str:
    when = (
        ctx.t("legal.every", weekday=ctx.t(f"legal.weekday_{window.weekday}"))
        if window.weekday is not None
        else cards.day_text(window.day or date.min, ctx.tr)
    )
    return ctx.t(
        "legal.window_line",
        when=when,
        start=_clock(window.start_minute),
        end=_clock(window.end_minute),
        length=window.slot_minutes,
        seats=window.seats,
        place=cards.place_text(window.place, window.place_text, ctx.tr),
    )


async def _audit_read(ctx: Context, booking: BookingData) -> None:
    await audit.record(
        ctx.session,
        actor_user_id=ctx.user.id,
        action="legal_read_private",
        target=f"booking:{booking.id}",
        detail="description, opposing party",
    )


def _private_lines(ctx: Context, booking: BookingData) -> str:
    return ctx.t(
        "legal.private",
        name=booking.client_name or "—",
        desc=booking.description or "—",
        party=booking.opposing_party or "—",
        note=booking.lawyer_note or "—",
    )


# -- /mybookings, the lawyer's part -----------------------------------------------------------


async def lawyer_bookings(ctx: Context) -> None:
    now = ctx.now()
    mine = await legal.for_lawyer(ctx.session, ctx.user.id, since=now - timedelta(days=PAST_DAYS))
    slots = await legal.lawyer_slots(ctx.session, lawyer_user_id=ctx.user.id, since=now)
    head = ctx.t("legal.lawyer_head", count=len(mine))
    ctx.say(head, choices=[[Choice(ctx.t("legal.btn_hours"), menu_data(HOURS))]])
    for booking in mine:
        slot = await legal.get_slot(ctx.session, booking.slot_id)
        await _audit_read(ctx, booking)
        text = (
            cards.booking_line(booking, slot, ctx.user.display_name, ctx.tr)
            + "\n"
            + _private_lines(ctx, booking)
        )
        rows = [
            [
                Choice(ctx.t("legal.btn_done"), buttons.MarkDone(booking=booking.id).pack()),
                Choice(ctx.t("legal.btn_no_show"), buttons.MarkNoShow(booking=booking.id).pack()),
            ],
            [Choice(ctx.t("legal.btn_note"), buttons.Note(booking=booking.id).pack())],
        ]
        ctx.say(text, choices=rows)
    booked_slots = [s for s in slots if s.taken]
    for slot in booked_slots[:10]:
        ctx.say(
            ctx.t(
                "legal.slot_taken",
                slot=cards.slot_line(slot, ctx.user.display_name, ctx.tr),
                taken=slot.taken,
                seats=slot.seats,
            ),
            choices=[[Choice(ctx.t("legal.btn_cancel_slot"), buttons.CancelSlot(slot=slot.id).pack())]],
        )


async def _lawyers_booking(ctx: Context, booking_id: int, action: str) -> BookingData | None:
    booking = await legal.get_booking(ctx.session, booking_id)
    if booking is None:
        ctx.say(ctx.t("common.old_button"))
        return None
    if booking.lawyer_user_id != ctx.user.id:
        raise NotAllowed(
            action, target=str(booking_id), detail="not the assigned lawyer", key="legal.not_yours"
        )
    return booking


async def _finish(ctx: Context, booking_id: int, status: BookingStatus, action: str) -> None:
    booking = await _lawyers_booking(ctx, booking_id, action)
    if booking is None:
        return
    if booking.starts_at > ctx.now():
        ctx.toast("legal.not_started")
        return
    done = await legal.finish(ctx.session, booking_id=booking.id, lawyer_user_id=ctx.user.id, status=status)
    if done is None:
        ctx.toast("legal.not_booked_any_more")
        return
    ctx.say(
        ctx.t("legal.marked", id=booking.id, status=ctx.t(f"legal.status_{status.value}")),
        edit_ref=ctx.incoming.message_ref,
    )


async def done_action(ctx: Context, data: buttons.MarkDone) -> None:
    await _finish(ctx, data.booking, BookingStatus.DONE, "a:legal_done")


async def no_show_action(ctx: Context, data: buttons.MarkNoShow) -> None:
    await _finish(ctx, data.booking, BookingStatus.NO_SHOW, "a:legal_no_show")


async def note_action(ctx: Context, data: buttons.Note) -> None:
    booking = await _lawyers_booking(ctx, data.booking, "a:legal_note")
    if booking is not None:
        await ctx.nav.start(ctx, NOTE_FLOW, {"booking": booking.id})


async def ask_note(ctx: Context) -> None:
    ctx.say(ctx.t("legal.ask_note", id=ctx.data.get("booking")))


async def on_note(ctx: Context) -> Result:
    text = clean_text(ctx.incoming.text, max_len=1000) if ctx.incoming.kind is Kind.TEXT else None
    if text is None or ctx.value is not None:
        return Retry("legal.note_bad")
    if not await legal.set_note(
        ctx.session, booking_id=int(ctx.data.get("booking", 0)), lawyer_user_id=ctx.user.id, note=text
    ):
        raise NotAllowed(
            "legal_note", target=str(ctx.data.get("booking")), key="legal.not_yours", end_flow=True
        )
    ctx.say(ctx.t("legal.note_saved"))
    ctx.show_menu = True
    return Done()


NOTE_FLOW = Flow(
    name=NOTE, steps=(Step("text", ask_note, on_note),), requires_role=Role.LAWYER, needs_context=True
)


async def cancel_slot_action(ctx: Context, data: buttons.CancelSlot) -> None:
    slot = await legal.get_slot(ctx.session, data.slot)
    if slot is None:
        ctx.say(ctx.t("common.old_button"))
        return
    if slot.lawyer_user_id != ctx.user.id:
        raise NotAllowed(
            "a:legal_slot_cancel", target=str(data.slot), detail="not the lawyer's", key="legal.not_yours"
        )
    ctx.say(
        ctx.t(
            "legal.cancel_slot_confirm",
            slot=cards.slot_line(slot, ctx.user.display_name, ctx.tr),
            taken=slot.taken,
        ),
        choices=[
            [Choice(ctx.t("legal.cancel_slot_yes"), buttons.CancelSlotYes(slot=slot.id).pack())],
            [Choice(ctx.t("legal.cancel_keep"), buttons.MyBookings().pack())],
        ],
    )


async def cancel_slot_yes_action(ctx: Context, data: buttons.CancelSlotYes) -> None:
    slot = await legal.get_slot(ctx.session, data.slot)
    if slot is None:
        ctx.say(ctx.t("common.old_button"))
        return
    if slot.lawyer_user_id != ctx.user.id:
        raise NotAllowed(
            "a:legal_slot_cancel_yes", target=str(data.slot), detail="not the lawyer's", key="legal.not_yours"
        )
    cancelled = await service.cancel_slot(ctx.session, slot_id=slot.id, lawyer_id=ctx.user.id, now=ctx.now())
    if cancelled is None:
        ctx.say(ctx.t("legal.slot_already_cancelled"))
        return
    ctx.say(
        ctx.t("legal.slot_cancelled_done", count=len(cancelled.bookings)), edit_ref=ctx.incoming.message_ref
    )


# -- staff ------------------------------------------------------------------------------------


async def staff_bookings_command(ctx: Context) -> None:
    upcoming = await legal.all_upcoming(ctx.session, since=ctx.now() - timedelta(days=1))
    ctx.say(ctx.t("legal.staff_head", count=len(upcoming)))
    for booking in upcoming:
        slot = await legal.get_slot(ctx.session, booking.slot_id)
        name = await service.lawyer_name(ctx.session, booking.lawyer_user_id)
        await _audit_read(ctx, booking)
        ctx.say(cards.booking_line(booking, slot, name, ctx.tr) + "\n" + _private_lines(ctx, booking))
    await ctx.nav.reask(ctx)


# -- /lawyer_hours ------------------------------------------------------------------------------


async def ask_menu(ctx: Context) -> None:
    windows = await legal.windows(ctx.session, lawyer_user_id=ctx.user.id)
    conflicts = await legal.conflicts(ctx.session, ctx.user.id)
    lines = [ctx.t("legal.hours_head")]
    lines += [f"• {window_text(w, ctx)}" for w in windows] or [ctx.t("legal.hours_none")]
    if conflicts:
        lines.append(ctx.t("legal.conflicts_head", parties="、".join(c.party for c in conflicts)))
    rows = [
        [ctx.button("legal.btn_add_weekly", "weekly"), ctx.button("legal.btn_add_once", "once")],
        [ctx.button("legal.btn_conflict", "conflict")],
    ]
    rows += [
        [ctx.raw_button(ctx.t("legal.btn_remove", what=window_text(w, ctx))[:60], f"x{w.id}")]
        for w in windows
    ]
    rows += [[ctx.raw_button(ctx.t("legal.btn_remove", what=c.party)[:60], f"c{c.id}")] for c in conflicts]
    rows.append([ctx.button("legal.btn_finish", "done")])
    ctx.say("\n".join(lines), choices=rows)


async def on_menu(ctx: Context) -> Result:
    if ctx.value == "weekly":
        ctx.data.pop("date", None)
        return Next("weekday")
    if ctx.value == "once":
        ctx.data.pop("weekday", None)
        return Next("date")
    if ctx.value == "conflict":
        return Next("conflict")
    if ctx.value == "done":
        ctx.say(ctx.t("legal.hours_saved"))
        ctx.show_menu = True
        return Done()
    window_id, conflict_id = ctx.value_id("x"), ctx.value_id("c")
    if window_id is not None:
        if not await legal.remove_window(
            ctx.session, window_id=window_id, lawyer_user_id=ctx.user.id, now=ctx.now()
        ):
            raise NotAllowed("legal_hours:remove", target=str(window_id), key="legal.not_yours")
        return Retry("legal.removed")
    if conflict_id is not None:
        if not await legal.remove_conflict(ctx.session, conflict_id=conflict_id, lawyer_user_id=ctx.user.id):
            raise NotAllowed("legal_hours:conflict", target=str(conflict_id), key="legal.not_yours")
        return Retry("legal.removed")
    return Retry("common.use_buttons")


async def ask_weekday(ctx: Context) -> None:
    days = [ctx.raw_button(ctx.t(f"legal.weekday_{d}"), f"w{d}") for d in range(7)]
    ctx.say(ctx.t("legal.ask_weekday"), choices=[days[0:4], days[4:7]])


async def on_weekday(ctx: Context) -> Result:
    day = ctx.value_id("w")
    if day is None or day > 6:
        return Retry("common.use_buttons")
    ctx.data["weekday"] = day
    return Next("hours")


async def ask_date(ctx: Context) -> None:
    today = cards.local(ctx.now()).date()
    days = [ctx.raw_button(cards.day_text(today + timedelta(days=n), ctx.tr), f"d{n}") for n in range(1, 22)]
    ctx.say(ctx.t("legal.ask_date"), choices=[days[i : i + 3] for i in range(0, len(days), 3)])


async def on_date(ctx: Context) -> Result:
    offset = ctx.value_id("d")
    if offset is None or not 1 <= offset <= 21:
        return Retry("common.use_buttons")
    ctx.data["date"] = (cards.local(ctx.now()).date() + timedelta(days=offset)).isoformat()
    return Next("hours")


async def ask_hours(ctx: Context) -> None:
    rows = [[ctx.raw_button(f"{_clock(a)}–{_clock(b)}", f"h{a}_{b}")] for a, b in PRESET_HOURS]
    ctx.say(ctx.t("legal.ask_hours"), choices=rows)


def read_range(text: str) -> tuple[int, int] | None:
    """ "9:00-11:30", "9-12", "14点到17点" → minutes after midnight."""
    match = _RANGE.match(text)
    if match is None:
        return None
    h1, m1, h2, m2 = (int(g) if g else 0 for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if not (h1 < 24 and h2 <= 24 and m1 < 60 and m2 < 60 and start + 15 <= end <= 24 * 60):
        return None
    return start, end


async def on_hours(ctx: Context) -> Result:
    if ctx.value and ctx.value.startswith("h"):
        parts = ctx.value[1:].split("_")
        found = (
            (int(parts[0]), int(parts[1])) if len(parts) == 2 and all(p.isdigit() for p in parts) else None
        )
    else:
        found = read_range(ctx.incoming.text) if ctx.incoming.kind is Kind.TEXT else None
    if found is None or (found not in PRESET_HOURS and ctx.value):
        return Retry("legal.hours_bad")
    ctx.data["start"], ctx.data["end"] = found
    return Next("length")


async def ask_length(ctx: Context) -> None:
    rows = []
    last = await legal.last_window(ctx.session, ctx.user.id)
    if last is not None:  # one tap for a lawyer who publishes the same way each time
        label = ctx.t(
            "legal.same_as_last",
            length=last.slot_minutes,
            seats=last.seats,
            place=cards.place_text(last.place, last.place_text, ctx.tr),
        )
        rows.append([ctx.raw_button(label[:60], "last")])
    rows.append([ctx.raw_button(ctx.t("legal.minutes", n=n), f"l{n}") for n in LENGTHS])
    ctx.say(ctx.t("legal.ask_length"), choices=rows)


async def on_length(ctx: Context) -> Result:
    if ctx.value == "last":
        last = await legal.last_window(ctx.session, ctx.user.id)
        if last is None:
            return Retry("common.use_buttons")
        ctx.data.update(
            length=last.slot_minutes, seats=last.seats, place=last.place.value, place_text=last.place_text
        )
        return Next("save")
    length = ctx.value_id("l")
    if length not in LENGTHS:
        return Retry("common.use_buttons")
    ctx.data["length"] = length
    return Next("seats")


async def ask_seats(ctx: Context) -> None:
    ctx.say(ctx.t("legal.ask_seats"), choices=[[ctx.raw_button(str(n), f"n{n}") for n in SEATS]])


async def on_seats(ctx: Context) -> Result:
    seats = ctx.value_id("n")
    if seats not in SEATS:
        return Retry("common.use_buttons")
    ctx.data["seats"] = seats
    return Next("place")


async def ask_place(ctx: Context) -> None:
    ctx.say(
        ctx.t("legal.ask_place"), choices=[[ctx.button(f"legal.place_{p.value}", p.value)] for p in Place]
    )


async def on_place(ctx: Context) -> Result:
    if ctx.value not in {p.value for p in Place}:
        return Retry("common.use_buttons")
    ctx.data["place"] = ctx.value
    if ctx.value == Place.STATION.value:
        return Next("where")
    ctx.data["place_text"] = ""
    return Next("save")


async def ask_where(ctx: Context) -> None:
    ctx.say(ctx.t("legal.ask_where"), choices=[[ctx.button("legal.where_default", "default")]])


async def on_where(ctx: Context) -> Result:
    if ctx.value == "default":
        ctx.data["place_text"] = ctx.t("legal.station_default")
        return Next("save")
    text = (
        clean_text(ctx.incoming.text, max_len=200)
        if ctx.incoming.kind is Kind.TEXT and ctx.value is None
        else None
    )
    if text is None:
        return Retry("legal.where_bad")
    ctx.data["place_text"] = text
    return Next("save")


async def ask_save(ctx: Context) -> None:
    d = ctx.data
    when = (
        ctx.t("legal.every", weekday=ctx.t(f"legal.weekday_{d['weekday']}"))
        if d.get("weekday") is not None
        else cards.day_text(date.fromisoformat(d["date"]), ctx.tr)
    )
    ctx.say(
        ctx.t(
            "legal.hours_confirm",
            when=when,
            start=_clock(d["start"]),
            end=_clock(d["end"]),
            length=d["length"],
            seats=d["seats"],
            place=cards.place_text(Place(d["place"]), d.get("place_text", ""), ctx.tr),
        ),
        choices=[[ctx.button("legal.btn_publish", "yes")]],
    )


async def on_save(ctx: Context) -> Result:
    if ctx.value != "yes":
        return Retry("common.use_buttons")
    d = ctx.data
    if d["end"] - d["start"] < d["length"]:
        return Retry("legal.hours_too_short")
    await legal.add_window(
        ctx.session,
        lawyer_user_id=ctx.user.id,
        weekday=d.get("weekday"),
        day=date.fromisoformat(d["date"]) if d.get("date") else None,
        start_minute=d["start"],
        end_minute=d["end"],
        slot_minutes=d["length"],
        seats=d["seats"],
        place=Place(d["place"]),
        place_text=d.get("place_text", ""),
    )
    await service.ensure_slots(ctx.session, ctx.now())
    for key in ("weekday", "date", "start", "end", "length", "seats", "place", "place_text"):
        d.pop(key, None)
    d["_history"] = []
    ctx.say(ctx.t("legal.published"))
    return Next("menu")


async def ask_conflict(ctx: Context) -> None:
    ctx.say(ctx.t("legal.ask_conflict"))


async def on_conflict(ctx: Context) -> Result:
    text = (
        clean_text(ctx.incoming.text, max_len=100)
        if ctx.incoming.kind is Kind.TEXT and ctx.value is None
        else None
    )
    if text is None:
        return Retry("legal.party_bad")
    await legal.add_conflict(ctx.session, lawyer_user_id=ctx.user.id, party=text)
    ctx.data["_history"] = []
    return Next("menu")


HOURS_FLOW = Flow(
    name=HOURS,
    command="lawyer_hours",
    requires_role=Role.LAWYER,
    steps=(
        Step("menu", ask_menu, on_menu, can_go_back=False),
        Step("weekday", ask_weekday, on_weekday),
        Step("date", ask_date, on_date),
        Step("hours", ask_hours, on_hours),
        Step("length", ask_length, on_length),
        Step("seats", ask_seats, on_seats),
        Step("place", ask_place, on_place),
        Step("where", ask_where, on_where),
        Step("save", ask_save, on_save),
        Step("conflict", ask_conflict, on_conflict),
    ),
)
