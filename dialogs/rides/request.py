"""/ride: book a volunteer-driver ride for oneself, a relative, or a resident who phoned.

Big buttons and little typing: every step offers buttons first and reads typing
second. Answers live in ``ctx.data`` (persisted), so a restart resumes the booking.
The ride is created only on the final confirmation, then posted to the driver group
(or staff are alerted when no group serves the community).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from dialogs import notify
from dialogs.answers import text, text_step
from dialogs.buttons import parse_int
from dialogs.core import Context, Done, Flow, Next, Result, Retry, Step
from dialogs.feature import NotAllowed
from dialogs.i18n import Tr
from dialogs.messages import Ask, Kind, Outgoing
from dialogs.phone import own_phone
from dialogs.rides import cards, news, places
from dialogs.timeparse import SHANGHAI, ParsedTime, TimeError, describe, parse_when
from dialogs.validate import (
    callable_phone,
    clean_text,
    looks_like_phone,
    mainland_mobile,
    mask_phone,
    show_phone,
)
from storage import communities, ride_series, rides, users
from storage.data import Role, UserData
from storage.rides import NEEDS, NewRide, RideData, RideStatus

NAME = "ride"

# A typed time this close to now is a "now" ride: send a driver at once.
NOW_WINDOW = timedelta(minutes=5)
QUICK_HOURS = (9, 14)
RELATIONS = ("family", "neighbour", "other")
MAX_FOUND = 6
TOP_PLACES = 4  # hospitals offered on the destination screen itself
# Hours offered when a day was named without one (明天, 周五下午, tonight).
DAY_HOURS = (8, 9, 10, 14, 15, 16)
PERIOD_HOURS = (
    (("下午", "afternoon", "午后"), (13, 14, 15, 16, 17)),
    (("晚", "tonight", "evening", "night", "夜"), (18, 19, 20, 21)),
    (("上午", "早", "morning", "清晨"), (7, 8, 9, 10, 11)),
)
# An open ride for the same rider this close in time is probably the same ride.
DUPLICATE_WINDOW = timedelta(hours=2)
WEEKDAYS = range(7)
SERIES_MAX = timedelta(days=366)


def _local(when: datetime) -> datetime:
    return when.astimezone(SHANGHAI)


def _rider(ctx: Context) -> dict[str, Any]:
    rider: dict[str, Any] = ctx.data.setdefault("rider", {})
    return rider


def _rider_from_user(user: UserData) -> dict[str, Any]:
    return {
        "user_id": user.id,
        "name": user.display_name,
        "phone": user.phone,
        "community_id": user.community_id,
        "building_id": user.building_id,
    }


def _staff_only(ctx: Context, what: str, *, end_flow: bool = True) -> None:
    """Proxy booking for phoned-in residents is staff work; button data can be forged."""
    if not ctx.user.has(Role.STAFF):
        raise NotAllowed(f"ride:{what}", detail="needs role staff", end_flow=end_flow)


# -- who rides ------------------------------------------------------------------------


async def ask_who(ctx: Context) -> None:
    rows = [[ctx.button("ride_request.who_self", "self")]]
    last = await rides.last_booked_by(ctx.session, ctx.user.id)
    ctx.data["last"] = last.id if last is not None else None
    if last is not None:  # "again, like last time": same rider, places and needs, a new time
        label = ctx.t(
            "ride_request.who_again" if last.relation == "self" else "ride_request.who_again_for",
            name=last.rider_name,
            pickup=_short(cards.place_text(last.pickup_text, ctx.tr)),
            dest=_short(cards.place_text(last.dest_text, ctx.tr)),
        )
        rows.append([ctx.raw_button(label, "again")])
    rows.append([ctx.button("ride_request.who_other", "other")])
    if ctx.user.has(Role.STAFF):
        rows.append([ctx.button("ride_request.who_phoned", "phoned")])
    ctx.say(ctx.t("ride_request.ask_who"), choices=rows)


def _short(text: str, size: int = 14) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


async def on_who(ctx: Context) -> Result:
    if ctx.value == "self":
        ctx.data.update(mode="self", relation="self", agreed=True, rider=_rider_from_user(ctx.user))
        last = await rides.last_booked_by(ctx.session, ctx.user.id, relation="self")
        if last is not None:  # the "anything else?" answers start from the last ride's
            ctx.data.update(passengers=last.passengers, needs=list(last.needs))
        return Next("pickup")
    if ctx.value == "again":
        return await _again(ctx)
    if ctx.value == "other":
        ctx.data.update(mode="other", agreed=False, rider={})
        return Next("other_name")
    if ctx.value == "phoned":
        _staff_only(ctx, "phoned", end_flow=False)
        ctx.data.update(mode="phoned", relation="staff", agreed=False, rider={})
        ctx.data.pop("found", None)
        return Next("find")
    return Retry("common.use_buttons")


async def _again(ctx: Context) -> Result:
    """Book the last ride again: everything but the time is taken from it."""
    last_id = ctx.data.get("last")
    last = await rides.get(ctx.session, int(last_id)) if last_id else None
    if last is None or last.booker_user_id != ctx.user.id:
        return Retry("ride_request.again_gone")
    rider = {
        "user_id": last.rider_user_id,
        "name": last.rider_name,
        "phone": last.rider_phone,
        "community_id": last.community_id,
    }
    if last.rider_user_id == ctx.user.id:  # oneself: today's number and home, not last time's
        rider = _rider_from_user(ctx.user) | {"phone": ctx.user.phone or last.rider_phone}
    ctx.data.update(
        mode="self" if last.relation == "self" else "other",
        relation=last.relation,
        agreed=True,
        again=True,
        rider=rider,
        pickup={"text": last.pickup_text, "lat": last.pickup_lat, "lon": last.pickup_lon},
        dest={"text": last.dest_text, "lat": last.dest_lat, "lon": last.dest_lon},
        passengers=last.passengers,
        needs=list(last.needs),
        note=last.note,
        repeat=False,
    )
    return Next("when")


# -- staff: find the resident who phoned ----------------------------------------------


async def ask_find(ctx: Context) -> None:
    found = ctx.data.get("found") or []
    rows = [[ctx.raw_button(label, f"u{uid}")] for uid, label in found]
    callers = ctx.data.get("callers") or []
    rows += [[ctx.raw_button(label, f"p{ride_id}")] for ride_id, label in callers]
    rows.append([ctx.button("ride_request.not_registered", "new")])
    picked = found or callers
    ctx.say(ctx.t("ride_request.find_pick" if picked else "ride_request.ask_find"), choices=rows)


async def on_find(ctx: Context) -> Result:
    _staff_only(ctx, "find")
    if ctx.value == "new":
        return Next("other_name")
    if ctx.value and ctx.value.startswith("u"):
        return await _picked_resident(ctx, ctx.value_id("u"))
    if ctx.value and ctx.value.startswith("p"):
        return await _picked_caller(ctx, ctx.value_id("p"))
    query = clean_text(ctx.incoming.text, max_len=30) if ctx.incoming.kind is Kind.TEXT else None
    if query is None:
        return Retry("ride_request.ask_find")
    term = _search_term(query)
    found = [u for u in await users.find_users(ctx.session, term) if _findable(u)]
    # Residents without an account whom staff booked for before: their earlier ride
    # holds the name, phone and the consent noted then.
    callers = await rides.known_callers(ctx.session, term)
    if not found and not callers:
        ctx.data.pop("found", None)
        ctx.data.pop("callers", None)
        return Retry("ride_request.find_none")
    ctx.data["found"] = [[u.id, await _resident_label(ctx, u)] for u in found[:MAX_FOUND]]
    ctx.data["callers"] = [
        [c.ride_id, ctx.t("ride_request.known_caller", name=c.name, phone=mask_phone(c.phone))]
        for c in callers
    ]
    return Retry()


async def _picked_caller(ctx: Context, ride_id: int | None) -> Result:
    """A caller booked for before: reuse the name and phone (consent is confirmed again next)."""
    shown = {rid for rid, _ in ctx.data.get("callers") or []}
    earlier = await rides.get(ctx.session, ride_id) if ride_id in shown and ride_id else None
    if earlier is None or not earlier.rider_phone:
        return Retry("ride_request.find_gone")
    ctx.data["rider"] = {"user_id": None, "name": earlier.rider_name, "phone": earlier.rider_phone}
    return Next("consent")


def _search_term(query: str) -> str:
    """A phone number searches as stored (E.164); other digit strings only if id-sized.

    find_users compares an all-digit query with the integer id column too, and a
    number past 32 bits makes PostgreSQL refuse the whole query.
    """
    phone = mainland_mobile(query)
    if phone is not None:
        return phone
    return query if parse_int(query) is not None or not query.isdigit() else query[:9]


def _findable(user: UserData) -> bool:
    return not user.forgotten and user.consented


async def _resident_label(ctx: Context, user: UserData) -> str:
    place = await _home_text(ctx, user.community_id, user.building_id) or "—"
    return f"{user.display_name or '#' + str(user.id)} · {mask_phone(user.phone) or '—'} · {place}"


async def _picked_resident(ctx: Context, user_id: int | None) -> Result:
    shown = {uid for uid, _ in ctx.data.get("found") or []}
    user = await users.get_user(ctx.session, user_id) if user_id in shown and user_id else None
    if user is None or not _findable(user):
        return Retry("ride_request.find_gone")
    ctx.data["rider"] = _rider_from_user(user)
    return Next("consent")


# -- someone else: name, phone, relation, consent -------------------------------------


def _save_other_name(ctx: Context, name: str) -> None:
    ctx.data["rider"] = {"user_id": None, "name": name, "phone": None}


async def ask_other_phone(ctx: Context) -> None:
    # No contact keyboard here: Telegram's button would share the booker's own number.
    ctx.say(ctx.t("ride_request.ask_other_phone", name=_rider(ctx).get("name", "")))


async def on_other_phone(ctx: Context) -> Result:
    phone = _typed_or_shared_phone(ctx)
    if phone is None:
        return Retry("ride_request.bad_phone")
    _rider(ctx)["phone"] = phone
    return Next("consent" if ctx.data.get("mode") == "phoned" else "relation")


def _typed_or_shared_phone(ctx: Context) -> str | None:
    """Someone else's number: a mobile, or a landline (027-…) the driver can call."""
    incoming = ctx.incoming
    if incoming.kind is Kind.CONTACT and incoming.contact:
        return callable_phone(incoming.contact.phone)
    if incoming.kind is Kind.TEXT:
        return callable_phone(incoming.text)
    return None


async def ask_relation(ctx: Context) -> None:
    ctx.say(
        ctx.t("ride_request.ask_relation", name=_rider(ctx).get("name", "")),
        choices=[[ctx.button(f"ride_request.relation_{r}", r) for r in RELATIONS]],
    )


async def on_relation(ctx: Context) -> Result:
    if ctx.value not in RELATIONS:
        return Retry("common.use_buttons")
    ctx.data["relation"] = ctx.value
    return Next("consent")


async def ask_consent(ctx: Context) -> None:
    staff = ctx.data.get("mode") == "phoned"
    name = _rider(ctx).get("name", "")
    ctx.say(
        ctx.t("ride_request.ask_consent_staff" if staff else "ride_request.ask_consent", name=name),
        choices=[
            [ctx.button("ride_request.consent_yes_staff" if staff else "ride_request.consent_yes", "yes")]
        ],
    )


async def on_consent(ctx: Context) -> Result:
    if ctx.data.get("mode") == "phoned":
        _staff_only(ctx, "consent")
    if ctx.value != "yes":
        return Retry("common.use_buttons")
    ctx.data["agreed"] = True
    return Next("pickup")


# -- pickup and destination -------------------------------------------------------------


async def _home_text(
    ctx: Context, community_id: int | None, building_id: int | None, *, lang: str = "zh"
) -> str | None:
    """The rider's home as drivers read it (Chinese), or labelled for the reader."""
    community = await communities.get_community(ctx.session, community_id) if community_id else None
    if community is None:
        return None
    building = await communities.get_building(ctx.session, building_id) if building_id else None
    name = community.label(lang)
    return f"{name} {building.name}" if building else name


def _ask_location(ctx: Context, key: str, **fields: Any) -> None:
    ctx.replies.append(
        Outgoing(text=ctx.t(key, **fields), ask=Ask.LOCATION, ask_label=ctx.t("ride_request.share_location"))
    )


async def ask_pickup(ctx: Context) -> None:
    other = ctx.data.get("mode") != "self"
    _ask_location(ctx, "ride_request.ask_pickup_other" if other else "ride_request.ask_pickup")
    rider = _rider(ctx)
    home = await _home_text(ctx, rider.get("community_id"), rider.get("building_id"), lang=ctx.lang)
    rows = [[ctx.button("ride_request.from_home", "home", place=home)]] if home else []
    ctx.say(ctx.t("ride_request.pickup_or_type"), choices=rows)


async def on_pickup(ctx: Context) -> Result:
    if ctx.value == "home":
        return await _pickup_home(ctx)
    place = _place_from_message(ctx)
    if place is None:
        return Retry(_bad_place_key(ctx))
    ctx.data["pickup"] = place
    return Next("dest")


def _bad_place_key(ctx: Context) -> str:
    typed = ctx.incoming.text if ctx.incoming.kind is Kind.TEXT else ""
    return "ride_request.place_is_number" if typed and looks_like_phone(typed) else "ride_request.bad_place"


async def _pickup_home(ctx: Context) -> Result:
    rider = _rider(ctx)
    text = await _home_text(ctx, rider.get("community_id"), rider.get("building_id"))
    community = await communities.get_community(ctx.session, rider.get("community_id") or 0)
    if text is None or community is None:
        return Retry("ride_request.bad_place")
    ctx.data["pickup"] = {"text": text, "lat": community.latitude, "lon": community.longitude}
    return Next("dest")


def _place_from_message(ctx: Context) -> dict[str, Any] | None:
    """A shared location or a typed address (2–100 characters)."""
    incoming = ctx.incoming
    if incoming.kind is Kind.LOCATION and incoming.location:
        lat, lon = incoming.location.latitude, incoming.location.longitude
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return None
        return {"text": "", "lat": lat, "lon": lon}
    if incoming.kind is not Kind.TEXT:
        return None
    text = clean_text(incoming.text, max_len=100)
    if text is None or len(text) < 2 or looks_like_phone(text):
        return None  # a phone number or a bare number is no address
    known = places.match(text)
    if known is not None:  # a hospital named in words gets its coordinates too
        return {"text": known.name_zh, "lat": known.latitude, "lon": known.longitude}
    return {"text": text, "lat": None, "lon": None}


async def ask_dest(ctx: Context) -> None:
    _ask_location(ctx, "ride_request.ask_dest")
    user_id = _rider(ctx).get("user_id") or ctx.user.id
    recent = await rides.recent_destinations(ctx.session, user_id, limit=3)
    ctx.data["recent"] = recent
    rows = [
        [ctx.raw_button(f"🕘 {cards.place_text(text, ctx.tr)[:30]}", f"r{i}")]
        for i, text in enumerate(recent)
    ]
    # The hospitals residents ride to most, right here: one tap, no second screen.
    shown = [p for p in places.PLACES[:TOP_PLACES] if p.name_zh not in recent]
    rows += [
        [ctx.raw_button(f"🏥 {p.label(ctx.lang)}", p.key) for p in shown[i : i + 2]]
        for i in range(0, len(shown), 2)
    ]
    rows.append([ctx.button("ride_request.common_places", "places")])
    ctx.say(ctx.t("ride_request.dest_or_type"), choices=rows)


async def on_dest(ctx: Context) -> Result:
    if ctx.value == "places":
        return Next("place")
    hospital = places.by_key(ctx.value or "")
    if hospital is not None:
        ctx.data["dest"] = {"text": hospital.name_zh, "lat": hospital.latitude, "lon": hospital.longitude}
        return Next("when")
    if ctx.value and ctx.value.startswith("r"):
        recent = ctx.data.get("recent") or []
        index = ctx.value_id("r")
        if index is None or index >= len(recent):
            return Retry("common.use_buttons")
        known = places.match(recent[index])
        lat, lon = (known.latitude, known.longitude) if known else (None, None)
        ctx.data["dest"] = {"text": recent[index], "lat": lat, "lon": lon}
        return Next("when")
    place = _place_from_message(ctx)
    if place is None:
        return Retry(_bad_place_key(ctx))
    ctx.data["dest"] = place
    return Next("when")


async def ask_place(ctx: Context) -> None:
    rows = [[ctx.raw_button(f"🏥 {p.label(ctx.lang)}", p.key)] for p in places.PLACES]
    ctx.say(ctx.t("ride_request.pick_place"), choices=rows)


async def on_place(ctx: Context) -> Result:
    place = places.by_key(ctx.value or "")
    if place is None:
        return Retry("common.use_buttons")
    ctx.data["dest"] = {"text": place.name_zh, "lat": place.latitude, "lon": place.longitude}
    return Next("when")


# -- when --------------------------------------------------------------------------------


def _quick_time(value: str, now: datetime) -> datetime | None:
    """Quick buttons: "d0h9" = today 9:00, "d1h14" = tomorrow 14:00."""
    if len(value) < 4 or value[0] != "d" or "h" not in value:
        return None
    day, hour = parse_int(value[1 : value.index("h")]), parse_int(value[value.index("h") + 1 :])
    if day not in (0, 1) or hour not in QUICK_HOURS:
        return None
    date = _local(now).date() + timedelta(days=day)
    return datetime.combine(date, time(hour), tzinfo=SHANGHAI)


async def ask_when(ctx: Context) -> None:
    now = ctx.now()
    again = bool(ctx.data.get("again"))
    rows = [[ctx.button("ride_request.when_now_post" if again else "ride_request.when_now", "now")]]
    for day in (0, 1):
        row = []
        for hour in QUICK_HOURS:
            when = _quick_time(f"d{day}h{hour}", now)
            if when is not None and when > now:  # today's past hours are not offered
                row.append(ctx.button(f"ride_request.quick_d{day}", f"d{day}h{hour}", hour=hour))
        if row:
            rows.append(row)
    if again:  # the ride is shown whole: choosing the time posts it
        ctx.say(f"{ctx.t('ride_request.again_head')}\n{_summary_body(ctx, with_time=False)}")
        ctx.say(ctx.t("ride_request.ask_when_again"), choices=rows)
        return
    ctx.say(ctx.t("ride_request.ask_when"), choices=rows)


async def on_when(ctx: Context) -> Result:
    now = ctx.now()
    if ctx.value == "now":
        return await _chose_time(ctx, now, is_now=True)
    if ctx.value:
        when = _quick_time(ctx.value, now)
        if when is None:
            return Retry("common.use_buttons")
        if when <= now:  # a button left on screen past its hour
            return Retry("ride_request.when_past")
        return await _chose_time(ctx, when, is_now=False)
    if ctx.incoming.kind is not Kind.TEXT:
        return Retry("ride_request.when_not_understood")
    parsed = parse_when(ctx.incoming.text, now=now)
    if parsed is TimeError.NEEDS_HOUR:  # a day, no hour: ask which hour, never guess
        ctx.data["day_text"] = clean_text(ctx.incoming.text, max_len=60) or ""
        return Next("hour")
    return await _typed_time(ctx, parsed)


async def _typed_time(ctx: Context, parsed: ParsedTime | TimeError) -> Result:
    if isinstance(parsed, TimeError):
        return Retry(f"ride_request.when_{parsed.name.lower()}")
    if parsed.when - ctx.now() < NOW_WINDOW and not parsed.ambiguous:
        return await _chose_time(ctx, ctx.now(), is_now=True)
    _remember_candidate(ctx, parsed)
    return Next("when_ok")


def _hour_options(ctx: Context) -> list[tuple[int, datetime]]:
    text = ctx.data.get("day_text", "")
    lowered = text.lower()
    hours = next((h for words, h in PERIOD_HOURS if any(w in lowered for w in words)), DAY_HOURS)
    found = []
    for hour in hours:
        parsed = parse_when(f"{text} {hour:02d}:00", now=ctx.now())
        if isinstance(parsed, ParsedTime) and not parsed.ambiguous:
            found.append((hour, parsed.when))
    return found


async def ask_hour(ctx: Context) -> None:
    options = _hour_options(ctx)
    hours = [ctx.raw_button(f"{hour}:00", f"h{hour}") for hour, _ in options]
    rows = [hours[i : i + 3] for i in range(0, len(hours), 3)]
    ctx.say(ctx.t("ride_request.ask_hour", day=ctx.data.get("day_text", "")), choices=rows)


async def on_hour(ctx: Context) -> Result:
    if ctx.value:
        hour = ctx.value_id("h")
        found = dict(_hour_options(ctx))
        if hour is None or hour not in found:
            return Retry("common.use_buttons")
        return await _chose_time(ctx, found[hour], is_now=False)
    if ctx.incoming.kind is not Kind.TEXT:
        return Retry("ride_request.when_not_understood")
    # "3点" answers "which hour on 周五下午?": read together; a whole new time stands alone.
    parsed = parse_when(f"{ctx.data.get('day_text', '')} {ctx.incoming.text}", now=ctx.now())
    if isinstance(parsed, TimeError):
        parsed = parse_when(ctx.incoming.text, now=ctx.now())
    if parsed is TimeError.NEEDS_HOUR:
        return Retry("ride_request.when_needs_hour")
    return await _typed_time(ctx, parsed)


def _remember_candidate(ctx: Context, parsed: ParsedTime) -> None:
    ctx.data["candidate"] = parsed.when.astimezone(UTC).isoformat()
    alt = parsed.alternative
    ctx.data["alternative"] = alt.astimezone(UTC).isoformat() if alt is not None else None


async def _chose_time(ctx: Context, when: datetime, *, is_now: bool) -> Result:
    ctx.data["when"] = when.astimezone(UTC).isoformat()
    ctx.data["is_now"] = is_now
    if is_now or ctx.data.get("again"):  # a ride now, or a repeat, is not a new weekly habit
        ctx.data["repeat"] = False
        return await _details_done(ctx)
    return Next("repeat")


async def _details_done(ctx: Context) -> Result:
    """Everything is known: a repeat is posted at once, a new booking is shown to check."""
    if not _rider(ctx).get("phone"):
        return Next("phone")
    if ctx.data.get("again"):
        return await _post_checked(ctx)
    return Next("summary")


async def ask_when_ok(ctx: Context) -> None:
    now = ctx.now()
    when = datetime.fromisoformat(ctx.data["candidate"])
    rows = [[ctx.button("ride_request.when_yes", "yes", when=describe(when, now=now, lang=ctx.lang))]]
    if ctx.data.get("alternative"):
        alt = datetime.fromisoformat(ctx.data["alternative"])
        rows.append([ctx.button("ride_request.when_alt", "alt", when=describe(alt, now=now, lang=ctx.lang))])
    ctx.say(ctx.t("ride_request.confirm_when", when=describe(when, now=now, lang=ctx.lang)), choices=rows)


async def on_when_ok(ctx: Context) -> Result:
    key = {"yes": "candidate", "alt": "alternative"}.get(ctx.value or "")
    if key is None or not ctx.data.get(key):
        return Retry("ride_request.when_use_buttons")
    when = datetime.fromisoformat(ctx.data[key])
    if when <= ctx.now():  # confirmed too late: the time has passed meanwhile
        return Retry("ride_request.when_in_past")
    return await _chose_time(ctx, when, is_now=False)


# -- repeat weekly -------------------------------------------------------------------------


async def ask_repeat(ctx: Context) -> None:
    ctx.say(
        ctx.t("ride_request.ask_repeat"),
        choices=[
            [ctx.button("ride_request.repeat_once", "once")],
            [ctx.button("ride_request.repeat_weekly", "weekly")],
        ],
    )


async def on_repeat(ctx: Context) -> Result:
    if ctx.value == "once":
        ctx.data["repeat"] = False
        return await _details_done(ctx)
    if ctx.value == "weekly":
        ctx.data["repeat"] = True
        if not ctx.data.get("weekdays"):  # start from the weekday of the first ride
            ctx.data["weekdays"] = [_local(datetime.fromisoformat(ctx.data["when"])).weekday()]
        return Next("weekdays")
    return Retry("common.use_buttons")


async def ask_weekdays(ctx: Context) -> None:
    chosen = set(ctx.data.get("weekdays") or [])
    buttons = [
        ctx.raw_button(("✓ " if d in chosen else "") + ctx.t(f"ride_request.weekday_{d}"), f"w{d}")
        for d in WEEKDAYS
    ]
    rows = [buttons[:4], buttons[4:], [ctx.button("ride_request.done", "done")]]
    ctx.say(ctx.t("ride_request.ask_weekdays"), choices=rows)


async def on_weekdays(ctx: Context) -> Result:
    chosen = set(ctx.data.get("weekdays") or [])
    if ctx.value == "done":
        return Next("until") if chosen else Retry("ride_request.weekdays_none")
    day = ctx.value_id("w")
    if day is None or day not in WEEKDAYS:
        return Retry("common.use_buttons")
    chosen ^= {day}
    ctx.data["weekdays"] = sorted(chosen)
    return Retry()


async def ask_until(ctx: Context) -> None:
    ctx.say(
        ctx.t("ride_request.ask_until"),
        choices=[[ctx.button("ride_request.until_1m", "m1"), ctx.button("ride_request.until_3m", "m3")]],
    )


async def on_until(ctx: Context) -> Result:
    first = datetime.fromisoformat(ctx.data["when"])
    now = ctx.now()
    if ctx.value in ("m1", "m3"):
        until = _end_of_day(first + timedelta(days=30 if ctx.value == "m1" else 91))
    elif ctx.incoming.kind is Kind.TEXT and not ctx.value:
        parsed = _parse_date(ctx.incoming.text, now)
        if isinstance(parsed, TimeError):
            return Retry(f"ride_request.until_{parsed.name.lower()}")
        until = _end_of_day(parsed)
    else:
        return Retry("common.use_buttons")
    if until <= first:
        return Retry("ride_request.until_before_first")
    ctx.data["until"] = until.astimezone(UTC).isoformat()
    return await _details_done(ctx)


def _parse_date(text: str, now: datetime) -> datetime | TimeError:
    """An end date: "6月30日" alone has no hour, so read it as the end of that day."""
    parsed = parse_when(text, now=now, max_ahead=SERIES_MAX)
    if parsed in (TimeError.NOT_UNDERSTOOD, TimeError.NEEDS_HOUR):
        parsed = parse_when(f"{text} 23:59", now=now, max_ahead=SERIES_MAX)
    return parsed if isinstance(parsed, TimeError) else parsed.when


def _end_of_day(when: datetime) -> datetime:
    return datetime.combine(_local(when).date(), time(23, 59), tzinfo=SHANGHAI)


# -- phone, when none is known -------------------------------------------------------------


async def ask_phone(ctx: Context) -> None:
    if ctx.data.get("mode") == "self":
        ctx.replies.append(
            Outgoing(
                ctx.t("ride_request.ask_own_phone"),
                ask=Ask.CONTACT,
                ask_label=ctx.t("onboarding.share_phone"),
            )
        )
        ctx.say(
            ctx.t("ride_request.phone_or_skip"), choices=[[ctx.button("ride_request.skip_phone", "skip")]]
        )
    else:  # someone else's ride: the driver must be able to call the rider
        ctx.say(ctx.t("ride_request.ask_rider_phone", name=_rider(ctx).get("name", "")))


async def on_phone(ctx: Context) -> Result:
    self_ride = ctx.data.get("mode") == "self"
    if ctx.value == "skip" and self_ride:
        return Next("summary")
    if ctx.value == "skip":
        return Retry("ride_request.phone_needed")
    if self_ride:  # one's own number: a forwarded contact card is someone else's
        own = own_phone(ctx)
        if isinstance(own, Retry):
            return own
        phone: str | None = own
    else:
        phone = _typed_or_shared_phone(ctx)
    if phone is None:
        return Retry("ride_request.bad_phone")
    _rider(ctx)["phone"] = phone
    if ctx.data.get("again"):
        return await _post_checked(ctx)
    return Next("summary")


# -- summary, "anything else?", booking ---------------------------------------------------------


def _new_ride(ctx: Context, *, series_id: int | None = None) -> NewRide:
    data, rider = ctx.data, _rider(ctx)
    pickup, dest = data["pickup"], data["dest"]
    return NewRide(
        booker_user_id=ctx.user.id,
        rider_user_id=rider.get("user_id"),
        rider_name=rider.get("name") or ctx.user.display_name,
        rider_phone=rider.get("phone"),
        pickup_text=pickup["text"],
        dest_text=dest["text"],
        pickup_at=datetime.fromisoformat(data["when"]) if data.get("when") else ctx.now(),
        is_now=bool(data.get("is_now")),
        relation=data.get("relation", "self"),
        rider_agreed=bool(data.get("agreed")),
        community_id=rider.get("community_id") or ctx.user.community_id,
        pickup_lat=pickup.get("lat"),
        pickup_lon=pickup.get("lon"),
        dest_lat=dest.get("lat"),
        dest_lon=dest.get("lon"),
        passengers=int(data.get("passengers", 1)),
        needs=tuple(data.get("needs") or ()),
        note=data.get("note", ""),
        series_id=series_id,
    )


def _preview(ctx: Context) -> RideData:
    """The booking as a RideData, so the summary reads exactly like the ride card."""
    new = _new_ride(ctx)
    return RideData(
        id=0, booker_user_id=new.booker_user_id, rider_user_id=new.rider_user_id,
        rider_name=new.rider_name, rider_phone=new.rider_phone, relation=new.relation,
        community_id=new.community_id, pickup_text=new.pickup_text, pickup_lat=new.pickup_lat,
        pickup_lon=new.pickup_lon, dest_text=new.dest_text, dest_lat=new.dest_lat,
        dest_lon=new.dest_lon, pickup_at=new.pickup_at, is_now=new.is_now,
        passengers=new.passengers, needs=new.needs, note=new.note, status=RideStatus.POSTED,
        driver_user_id=None, claimed_at=None, group_id=None, announced_at=None, escalated_at=None,
        late_cancel=False, rating=None, series_id=None, created_at=ctx.now(),
    )  # fmt: skip


def _repeat_text(ctx: Context) -> str:
    if not ctx.data.get("repeat"):
        return ""
    sep = ctx.t("rides.list_sep")
    days = sep.join(ctx.t(f"ride_request.weekday_{d}") for d in ctx.data.get("weekdays") or [])
    until = _local(datetime.fromisoformat(ctx.data["until"]))
    time_of_day = _local(datetime.fromisoformat(ctx.data["when"])).strftime("%H:%M")
    return ctx.t("ride_request.repeat_line", days=days, time=time_of_day, until=until.strftime("%Y-%m-%d"))


def _summary_body(ctx: Context, *, with_time: bool = True) -> str:
    ride = _preview(ctx)
    card = cards.ride_lines(ride, ctx.tr, phone=show_phone(ride.rider_phone))
    # The summary is not a posted ride yet: drop the "#0" header line of the card.
    lines = card.split("\n")[1:] if "\n" in card else [card]
    if not with_time:  # the time is what is being asked
        lines = lines[1:]
    return "\n".join(lines)


async def ask_summary(ctx: Context) -> None:
    parts = [ctx.t("ride_request.summary"), _summary_body(ctx), _repeat_text(ctx)]
    ctx.say(
        "\n".join(p for p in parts if p),
        choices=[
            [ctx.button("ride_request.confirm", "yes")],
            [ctx.button("ride_request.anything_else", "more")],
        ],
    )


async def on_summary(ctx: Context) -> Result:
    if ctx.value == "more":
        return Next("extras")
    if ctx.value != "yes":
        return Retry("common.use_buttons")
    if ctx.data.get("mode") == "phoned":
        _staff_only(ctx, "book")
    return await _post_checked(ctx)


async def ask_extras(ctx: Context) -> None:
    count = int(ctx.data.get("passengers", 1))
    chosen = set(ctx.data.get("needs") or [])
    rows = [
        [
            ctx.raw_button(("✓ " if n == count else "") + ctx.t(f"ride_request.people_{n}"), f"p{n}")
            for n in range(1, 5)
        ]
    ]
    rows += [[ctx.raw_button(("✓ " if n in chosen else "") + ctx.t(f"rides.need_{n}"), n)] for n in NEEDS]
    rows.append([ctx.button("ride_request.write_note", "note")])
    rows.append([ctx.button("ride_request.done", "done")])
    note = ctx.data.get("note") or ctx.t("rides.no_needs")
    ctx.say(ctx.t("ride_request.ask_extras", note=note), choices=rows)


async def on_extras(ctx: Context) -> Result:
    if ctx.value == "done":
        return Next("summary")
    if ctx.value == "note":
        return Next("note")
    count = ctx.value_id("p")
    if count is not None:
        if not 1 <= count <= 4:
            return Retry("ride_request.bad_passengers")
        ctx.data["passengers"] = count
        return Retry()
    if ctx.value in NEEDS:
        chosen = set(ctx.data.get("needs") or []) ^ {ctx.value}
        ctx.data["needs"] = [n for n in NEEDS if n in chosen]
        return Retry()
    if ctx.incoming.kind is Kind.TEXT and not ctx.value:  # typed: that is the note
        return _save_note(ctx, back_to_summary=True)
    return Retry("common.use_buttons")


def _save_note(ctx: Context, *, back_to_summary: bool) -> Result:
    note = clean_text(ctx.incoming.text, max_len=200)
    if note is None:
        return Retry("ride_request.bad_note")
    ctx.data["note"] = note
    return Next("summary") if back_to_summary else Next("extras")


async def ask_note(ctx: Context) -> None:
    ctx.say(ctx.t("ride_request.ask_note"), choices=[[ctx.button("ride_request.no_note", "skip")]])


async def on_note(ctx: Context) -> Result:
    if ctx.value == "skip":
        ctx.data["note"] = ""
        return Next("extras")
    if ctx.incoming.kind is Kind.TEXT and not ctx.value:
        return _save_note(ctx, back_to_summary=False)
    return Retry("ride_request.bad_note")


# -- a second identical ride is questioned before it is posted ------------------------------


async def _post_checked(ctx: Context) -> Result:
    if not ctx.data.get("dup_ok"):
        new = _new_ride(ctx)
        same = await rides.open_duplicate(
            ctx.session,
            rider_user_id=new.rider_user_id,
            rider_phone=new.rider_phone,
            pickup_at=new.pickup_at,
            window=DUPLICATE_WINDOW,
        )
        if same is not None:
            ctx.data["dup_of"] = same.id
            return Next("dupe")
    return await _post(ctx)


async def ask_dupe(ctx: Context) -> None:
    same = await rides.get(ctx.session, int(ctx.data.get("dup_of") or 0))
    when = cards.when_text(same, ctx.tr) if same else "—"
    ctx.say(
        ctx.t("ride_request.duplicate", id=ctx.data.get("dup_of"), when=when),
        choices=[
            [ctx.button("ride_request.duplicate_keep", "keep")],
            [ctx.button("ride_request.duplicate_post", "post")],
        ],
    )


async def on_dupe(ctx: Context) -> Result:
    if ctx.value == "post":
        if ctx.data.get("mode") == "phoned":
            _staff_only(ctx, "book")
        ctx.data["dup_ok"] = True
        return await _post(ctx)
    if ctx.value == "keep":
        ctx.say(ctx.t("ride_request.duplicate_kept", id=ctx.data.get("dup_of")))
        ctx.show_menu = True
        return Done()
    return Retry("common.use_buttons")


async def _post(ctx: Context) -> Result:
    ride = await _book(ctx)
    group = await rides.group_for(ctx.session, ride.community_id)
    await news.announce(ctx.session, ride)
    ctx.say(ctx.t("ride_request.posted" if group else "ride_request.posted_staff", id=ride.id))
    await _tell_rider(ctx, ride)
    ctx.show_menu = True
    return Done()


async def _book(ctx: Context) -> RideData:
    series_id = None
    if ctx.data.get("repeat"):
        first = datetime.fromisoformat(ctx.data["when"])
        series = await ride_series.create(
            ctx.session,
            template=_new_ride(ctx),
            weekdays=tuple(ctx.data["weekdays"]),
            time_of_day=_local(first).strftime("%H:%M"),
            until=datetime.fromisoformat(ctx.data["until"]),
        )
        series_id = series.id
    new = _new_ride(ctx, series_id=series_id)
    group = await rides.group_for(ctx.session, new.community_id)
    return await rides.create(ctx.session, new, group_id=group.id if group else None)


async def _tell_rider(ctx: Context, ride: RideData) -> None:
    """Someone booked for a resident with an account: the resident hears it too."""
    if ride.rider_user_id is None or ride.rider_user_id == ctx.user.id:
        return
    rider = await users.get_user(ctx.session, ride.rider_user_id)
    if rider is None:
        return
    booker = ctx.user.display_name or "—"

    def build(tr: Tr) -> Outgoing:
        body = cards.ride_lines(ride, tr, phone=ride.rider_phone or "")
        return Outgoing(f"{tr('ride_request.booked_for_you', booker=booker)}\n{body}")

    await notify.to_user(
        ctx.session, rider, build, kind="ride", dedupe_key=f"ride:{ride.id}:booked_for:{rider.id}"
    )


FLOW = Flow(
    name=NAME,
    command="ride",
    menu_key="menu.ride",
    menu_rank=10,
    steps=(
        Step("who", ask_who, on_who),
        Step("find", ask_find, on_find),
        text_step(
            "other_name",
            "ride_request.ask_name",
            read=text(max_len=30),
            error="ride_request.bad_name",
            save=_save_other_name,
            then="other_phone",
        ),
        Step("other_phone", ask_other_phone, on_other_phone),
        Step("relation", ask_relation, on_relation),
        Step("consent", ask_consent, on_consent),
        Step("pickup", ask_pickup, on_pickup, asks_for=Ask.LOCATION),
        Step("dest", ask_dest, on_dest, asks_for=Ask.LOCATION),
        Step("place", ask_place, on_place),
        Step("when", ask_when, on_when),
        Step("hour", ask_hour, on_hour),
        Step("when_ok", ask_when_ok, on_when_ok),
        Step("repeat", ask_repeat, on_repeat),
        Step("weekdays", ask_weekdays, on_weekdays),
        Step("until", ask_until, on_until),
        Step("phone", ask_phone, on_phone, asks_for=Ask.CONTACT),
        Step("summary", ask_summary, on_summary),
        Step("extras", ask_extras, on_extras),
        Step("note", ask_note, on_note),
        Step("dupe", ask_dupe, on_dupe),
    ),
)
