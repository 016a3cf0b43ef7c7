"""/myrides: the rides someone booked or rides in, with status, driver and a cancel button.

Cancel is a stateless button (``a:ride_cancel:<id>`` then ``a:ride_cancel_yes:<id>``),
so who may press it is checked on the server on every press: only the booker or
the rider. Everyone else is refused kindly and the attempt is audited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dialogs import ride_common
from dialogs.core import Context
from dialogs.messages import Choice, Outgoing
from dialogs.validate import parse_id
from handlers.registry import Action, Command, Registry
from storage import audit, ride_series, rides, users
from storage.data import ACTIVE_RIDE, DRIVER_HAS_RIDE, RideData, RideStatus

if TYPE_CHECKING:
    from handlers.routing import Router

SHOWN = 10


async def _ride_text(ctx: Context, ride: RideData) -> str:
    # The viewer is the booker or the rider: the full phone is theirs to see.
    lines = [
        ctx.t("rides.status_line", status=ctx.t(f"rides.status_{ride.status.value}")),
        ride_common.ride_lines(ride, ctx.t, ctx.lang, phone=ride.rider_phone or ""),
    ]
    if ride.driver_user_id is not None and ride.status in (*DRIVER_HAS_RIDE, RideStatus.COMPLETED):
        driver = await users.get_user(ctx.session, ride.driver_user_id)
        if driver is not None:
            lines.append(await ride_common.driver_card(ctx.session, driver, ctx.t))
    return "\n".join(lines)


async def myrides_command(ctx: Context, router: Router) -> None:
    mine = await rides.for_person(ctx.session, ctx.user.id, limit=SHOWN)
    if not mine:
        ctx.say(ctx.t("ride_request.mine_none"))
    else:
        ctx.say(ctx.t("ride_request.mine_head", count=len(mine)))
        offered: set[int] = set()
        for ride in mine:
            buttons = (
                [[Choice(ctx.t("ride_request.btn_cancel"), f"a:ride_cancel:{ride.id}")]]
                if ride.status in ACTIVE_RIDE
                else []
            )
            # A weekly series is stopped from its newest ride shown, once.
            if ride.series_id and ride.booker_user_id == ctx.user.id and ride.series_id not in offered:
                series = await ride_series.get(ctx.session, ride.series_id)
                if series is not None and series.active:
                    offered.add(ride.series_id)
                    stop = Choice(ctx.t("ride_request.btn_stop_series"), f"a:series_stop:{series.id}")
                    buttons.append([stop])
            ctx.say(await _ride_text(ctx, ride), choices=buttons)
    if ctx.flow is not None and router.engine.current(ctx) is not None:
        await router.engine.ask(ctx)  # a booking in progress stays where it was


async def _own_ride(ctx: Context, arg: str, action: str) -> RideData | None:
    """The ride behind a cancel button, if this person may cancel it (else say why)."""
    ride_id = parse_id(arg)
    ride = await rides.get(ctx.session, ride_id) if ride_id is not None else None
    if ride is None:
        ctx.say(ctx.t("common.old_button"))
        return None
    if ctx.user.id not in (ride.booker_user_id, ride.rider_user_id):
        await audit.record(
            ctx.session,
            actor_user_id=ctx.user.id,
            action=action,
            target=str(ride.id),
            allowed=False,
            detail="not booker or rider",
        )
        ctx.say(ctx.t("ride_request.cancel_not_yours"))
        return None
    if ride.status not in ACTIVE_RIDE:
        ctx.say(ctx.t("ride_request.cancel_closed", status=ctx.t(f"rides.status_{ride.status.value}")))
        return None
    return ride


async def cancel_action(ctx: Context, router: Router, arg: str) -> None:
    ride = await _own_ride(ctx, arg, "a:ride_cancel")
    if ride is None:
        return
    ctx.say(
        ctx.t("ride_request.cancel_confirm", id=ride.id, when=ride_common.when_text(ride, ctx.t, ctx.lang)),
        choices=[
            [Choice(ctx.t("ride_request.cancel_yes"), f"a:ride_cancel_yes:{ride.id}")],
            [Choice(ctx.t("ride_request.cancel_keep"), f"a:ride_keep:{ride.id}")],
        ],
    )


async def cancel_yes_action(ctx: Context, router: Router, arg: str) -> None:
    ride = await _own_ride(ctx, arg, "a:ride_cancel_yes")
    if ride is None:
        return
    cancelled = await rides.cancel(ctx.session, ride_id=ride.id, by_user_id=ctx.user.id, reason="by rider")
    if cancelled is None:  # a driver finished or someone else cancelled a moment ago
        ctx.say(ctx.t("common.old_button"))
        return
    ctx.enqueued += await _tell_others(ctx, cancelled)
    key = "ride_request.cancelled_late" if cancelled.late_cancel else "ride_request.cancelled"
    ctx.say(ctx.t(key, id=cancelled.id), edit_ref=ctx.incoming.message_ref)


async def _tell_others(ctx: Context, ride: RideData) -> int:
    """The driver (if any) and the other party hear of the cancellation."""
    sent = 0
    others = [p for p in await ride_common.parties(ctx.session, ride) if p.id != ctx.user.id]
    if ride.driver_user_id is not None:
        driver = await users.get_user(ctx.session, ride.driver_user_id)
        others += [driver] if driver is not None else []
    for person in others:
        key = (
            "ride_request.cancelled_driver"
            if person.id == ride.driver_user_id
            else "ride_request.cancelled_party"
        )

        def build(tr: ride_common.Tr, lang: str, key: str = key) -> Outgoing:
            return Outgoing(tr(key, id=ride.id, when=ride_common.when_text(ride, tr, lang)))

        sent += await ride_common.send_to_user(
            ctx.session, person, build, kind="ride", dedupe_key=f"ride:{ride.id}:cancelled:{person.id}"
        )
    return sent


async def keep_action(ctx: Context, router: Router, arg: str) -> None:
    ctx.say(ctx.t("ride_request.cancel_kept"), edit_ref=ctx.incoming.message_ref)


async def stop_series_action(ctx: Context, router: Router, arg: str) -> None:
    """The booker ends a weekly series; rides already posted stay (cancel them one by one)."""
    series_id = parse_id(arg)
    stopped = series_id is not None and await ride_series.stop(
        ctx.session, series_id=series_id, booker_user_id=ctx.user.id
    )
    if not stopped:
        await audit.record(
            ctx.session, actor_user_id=ctx.user.id, action="a:series_stop", target=arg, allowed=False
        )
        ctx.say(ctx.t("ride_request.series_not_yours"), toast=True)
        return
    ctx.say(ctx.t("ride_request.series_stopped"))


def register(registry: Registry) -> None:
    registry.add_command(Command("myrides", myrides_command, description_key="commands.myrides"))
    registry.add_action(Action("ride_cancel", cancel_action))
    registry.add_action(Action("ride_cancel_yes", cancel_yes_action))
    registry.add_action(Action("ride_keep", keep_action))
    registry.add_action(Action("series_stop", stop_series_action))
