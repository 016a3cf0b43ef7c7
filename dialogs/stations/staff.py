"""Staff keep stations true from chat: close one for a while (with a reason and an end
date), reopen it, change its opening hours. Started from a station's details
(``buttons.Manage``); every step is staff-only, checked again on each answer."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from dialogs.core import Context, Done, Flow, Next, Result, Retry, Step
from dialogs.feature import NotAllowed
from dialogs.i18n import t
from dialogs.stations import buttons, cards
from dialogs.validate import clean_text
from storage import audit
from storage import stations as store
from storage.data import Role
from storage.stations import StationData
from storage.stations_hours import SHANGHAI, HoursError, parse_hours

NAME = "station_staff"
REASONS = ("repair", "power", "event", "weather")


async def manage_action(ctx: Context, data: buttons.Manage) -> None:
    """The role is checked by the entry (``requires_role``); the id is checked here."""
    station = await store.get(ctx.session, data.station)
    if station is None:
        ctx.say(ctx.t("stations.gone"), toast=ctx.pressed)
        return
    await ctx.nav.start(ctx, FLOW, {"station": station.id})


async def _station(ctx: Context) -> StationData:
    station = await store.get(ctx.session, int(ctx.data.get("station") or 0))
    if station is None:
        raise NotAllowed("station_staff", detail="station gone", key="stations.gone", end_flow=True)
    return station


async def ask_what(ctx: Context) -> None:
    station = await _station(ctx)
    status = cards.status_text(station, ctx.now(), ctx.tr)
    rows = [[ctx.button("stations.staff_close", "close")]]
    if station.closed:
        rows.append([ctx.button("stations.staff_reopen", "reopen")])
    rows.append([ctx.button("stations.staff_hours", "hours")])
    ctx.say(
        ctx.t("stations.staff_what", name=station.name, status=status, hours=station.hours.text()),
        choices=rows,
    )


async def on_what(ctx: Context) -> Result:
    if ctx.value == "close":
        return Next("until")
    if ctx.value == "hours":
        return Next("hours")
    if ctx.value == "reopen":
        station = await _station(ctx)
        await store.reopen(ctx.session, station.id, by=ctx.user.id)
        await audit.record(
            ctx.session, actor_user_id=ctx.user.id, action="station_reopen", target=f"station:{station.id}"
        )
        ctx.say(ctx.t("stations.staff_reopened", name=station.name))
        ctx.show_menu = True
        return Done()
    return Retry("common.use_buttons")


async def ask_until(ctx: Context) -> None:
    rows = [
        [ctx.button("stations.until_today", "d0"), ctx.button("stations.until_days", "d3", n=3)],
        [ctx.button("stations.until_days", "d7", n=7), ctx.button("stations.until_notice", "none")],
    ]
    ctx.say(ctx.t("stations.ask_until"), choices=rows)


def _reopens_after(day: date) -> datetime:
    """Closed through ``day``: open again at the next midnight in Wuhan."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=SHANGHAI)


def _typed_date(raw: str, today: date) -> date | None:
    text = raw.strip().replace("/", "-").replace("月", "-").replace("日", "").replace("号", "")
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    parts = text.split("-")
    if len(parts) == 2 and all(p.isascii() and p.isdigit() for p in parts):
        try:
            day = date(today.year, int(parts[0]), int(parts[1]))
        except ValueError:
            return None
        return day if day >= today else date(today.year + 1, day.month, day.day)
    return None


async def on_until(ctx: Context) -> Result:
    today = ctx.now().astimezone(SHANGHAI).date()
    if ctx.value == "none":
        ctx.data["until"] = None
        return Next("reason")
    if ctx.value in ("d0", "d3", "d7"):
        days = int(ctx.value[1:])
        ctx.data["until"] = _reopens_after(today + timedelta(days=max(0, days - 1))).isoformat()
        return Next("reason")
    if ctx.value is None and ctx.incoming.text:
        day = _typed_date(ctx.incoming.text[:20], today)
        if day is None or day < today or day > today + timedelta(days=366):
            return Retry("stations.bad_date")
        ctx.data["until"] = _reopens_after(day).isoformat()
        return Next("reason")
    return Retry("common.use_buttons")


async def ask_reason(ctx: Context) -> None:
    rows = [
        [ctx.button(f"stations.reason_{r}", r) for r in REASONS[:2]],
        [ctx.button(f"stations.reason_{r}", r) for r in REASONS[2:]],
    ]
    ctx.say(ctx.t("stations.ask_reason"), choices=rows)


async def on_reason(ctx: Context) -> Result:
    if ctx.value in REASONS:
        # Stored in Chinese: what most riders read; the station's own words.
        reason = t("zh", f"stations.reason_{ctx.value}")
    elif ctx.value is None:
        typed = clean_text(ctx.incoming.text, max_len=100)
        if typed is None:
            return Retry("stations.bad_reason")
        reason = typed
    else:
        return Retry("common.use_buttons")
    station = await _station(ctx)
    raw_until = ctx.data.get("until")
    until = datetime.fromisoformat(raw_until) if raw_until else None
    await store.close(ctx.session, station.id, until=until, reason=reason, by=ctx.user.id)
    await audit.record(
        ctx.session,
        actor_user_id=ctx.user.id,
        action="station_close",
        target=f"station:{station.id}",
        detail=f"until {raw_until or 'further notice'}: {reason}",
    )
    fresh = await _station(ctx)
    ctx.say(
        ctx.t("stations.staff_closed", name=station.name, status=cards.status_text(fresh, ctx.now(), ctx.tr))
    )
    ctx.show_menu = True
    return Done()


async def ask_hours(ctx: Context) -> None:
    station = await _station(ctx)
    ctx.say(ctx.t("stations.ask_hours", hours=station.hours.text()))


async def on_hours(ctx: Context) -> Result:
    if ctx.value is not None or not ctx.incoming.text.strip():
        return Retry("stations.hours_help")
    try:
        hours = parse_hours(ctx.incoming.text[:300])
    except HoursError:
        return Retry("stations.bad_hours")
    station = await _station(ctx)
    await store.set_hours(ctx.session, station.id, hours, by=ctx.user.id)
    await audit.record(
        ctx.session,
        actor_user_id=ctx.user.id,
        action="station_hours",
        target=f"station:{station.id}",
        detail=hours.text(),
    )
    fresh = await _station(ctx)
    ctx.say(ctx.t("stations.staff_hours_set", name=station.name, hours=cards.hours_lines(fresh, ctx.tr)))
    ctx.show_menu = True
    return Done()


FLOW = Flow(
    name=NAME,
    requires_role=Role.STAFF,
    needs_context=True,
    steps=(
        Step("what", ask_what, on_what),
        Step("until", ask_until, on_until),
        Step("reason", ask_reason, on_reason),
        Step("hours", ask_hours, on_hours),
    ),
)
