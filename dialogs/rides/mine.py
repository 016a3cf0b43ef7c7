"""/myrides: the rides someone booked or rides in, with status, driver and a cancel button.

Cancel is a stateless button (cancel, then "yes, cancel"),
so who may press it is checked on the server on every press: only the booker or
the rider. Everyone else is refused kindly and the attempt is audited.
"""

from __future__ import annotations

from dialogs import notify
from dialogs.buttons import menu_data
from dialogs.core import Context, Flow, Result, Retry, Step
from dialogs.feature import NotAllowed
from dialogs.i18n import Tr
from dialogs.messages import Choice, Outgoing
from dialogs.rides import buttons, cards, news
from storage import ride_series, rides, users
from storage.data import Role
from storage.rides import ACTIVE_RIDE, DRIVER_HAS_RIDE, RideData, RideStatus

SHOWN = 10


async def _ride_text(ctx: Context, ride: RideData) -> str:
    # The viewer is the booker or the rider: the full phone is theirs to see.
    lines = [
        ctx.t("rides.status_line", status=ctx.t(f"rides.status_{ride.status.value}")),
        cards.ride_lines(ride, ctx.tr, phone=ride.rider_phone or ""),
    ]
    if ride.driver_user_id is not None and ride.status in (*DRIVER_HAS_RIDE, RideStatus.COMPLETED):
        driver = await users.get_user(ctx.session, ride.driver_user_id)
        if driver is not None:
            lines.append((await cards.driver_card(ctx.session, driver))(ctx.tr))
    return "\n".join(lines)


async def _driven(ctx: Context) -> bool:
    """A driver's claimed rides, each with its status buttons, as in the private details."""
    if not ctx.user.has(Role.DRIVER):
        return False
    held = [
        r
        for r in await rides.for_driver(ctx.session, ctx.user.id, limit=SHOWN)
        if r.status in DRIVER_HAS_RIDE
    ]
    if not held:
        return False
    ctx.say(ctx.t("ride_request.driving_head", count=len(held)))
    for ride in held:
        ctx.replies.append(cards.driver_details(ride, ctx.tr))
    return True


async def myrides_command(ctx: Context) -> None:
    driving = await _driven(ctx)
    mine = await rides.for_person(ctx.session, ctx.user.id, limit=SHOWN)
    if not mine and not driving:
        # An empty list still leaves something to tap: book one.
        ctx.say(
            ctx.t("ride_request.mine_none"),
            choices=[[Choice(ctx.t("menu.ride"), menu_data("ride"))]],
        )
    elif mine:
        ctx.say(ctx.t("ride_request.mine_head", count=len(mine)))
        offered: set[int] = set()
        for ride in mine:
            row = (
                [[Choice(ctx.t("ride_request.btn_cancel"), buttons.CancelRide(ride=ride.id).pack())]]
                if ride.status in ACTIVE_RIDE
                else []
            )
            # A weekly series is stopped from its newest ride shown, once.
            if ride.series_id and ride.booker_user_id == ctx.user.id and ride.series_id not in offered:
                series = await ride_series.get(ctx.session, ride.series_id)
                if series is not None and series.active:
                    offered.add(ride.series_id)
                    stop = Choice(
                        ctx.t("ride_request.btn_stop_series"), buttons.StopSeries(series=series.id).pack()
                    )
                    row.append([stop])
            ctx.say(await _ride_text(ctx, ride), choices=row)
    await ctx.nav.reask(ctx)  # a booking in progress stays where it was


async def _own_ride(ctx: Context, ride_id: int, action: str) -> RideData | None:
    """The ride behind a cancel button, if this person may cancel it (else say why)."""
    ride = await rides.get(ctx.session, ride_id)
    if ride is None:
        ctx.say(ctx.t("common.old_button"))
        return None
    if ctx.user.id not in (ride.booker_user_id, ride.rider_user_id):
        raise NotAllowed(
            action, target=str(ride.id), detail="not booker or rider", key="ride_request.cancel_not_yours"
        )
    if ride.status not in ACTIVE_RIDE:
        ctx.say(ctx.t("ride_request.cancel_closed", status=ctx.t(f"rides.status_{ride.status.value}")))
        return None
    return ride


async def cancel_action(ctx: Context, data: buttons.CancelRide) -> None:
    ride = await _own_ride(ctx, data.ride, "a:ride_cancel")
    if ride is None:
        return
    ctx.say(
        ctx.t("ride_request.cancel_confirm", id=ride.id, when=cards.when_text(ride, ctx.tr)),
        choices=[
            [Choice(ctx.t("ride_request.cancel_yes"), buttons.CancelYes(ride=ride.id).pack())],
            [Choice(ctx.t("ride_request.cancel_keep"), buttons.Keep(ride=ride.id).pack())],
        ],
    )


async def cancel_yes_action(ctx: Context, data: buttons.CancelYes) -> None:
    ride = await _own_ride(ctx, data.ride, "a:ride_cancel_yes")
    if ride is None:
        return
    cancelled = await rides.cancel(ctx.session, ride_id=ride.id, by_user_id=ctx.user.id, reason="by rider")
    if cancelled is None:  # a driver finished or someone else cancelled a moment ago
        ctx.say(ctx.t("common.old_button"))
        return
    await _tell_others(ctx, cancelled)
    key = "ride_request.cancelled_late" if cancelled.late_cancel else "ride_request.cancelled"
    ctx.say(ctx.t(key, id=cancelled.id), edit_ref=ctx.incoming.message_ref)


async def _tell_others(ctx: Context, ride: RideData) -> None:
    """The driver (if any) and the other party hear of the cancellation."""
    others = [p for p in await news.parties(ctx.session, ride) if p.id != ctx.user.id]
    if ride.driver_user_id is not None:
        driver = await users.get_user(ctx.session, ride.driver_user_id)
        others += [driver] if driver is not None else []
    for person in others:
        key = (
            "ride_request.cancelled_driver"
            if person.id == ride.driver_user_id
            else "ride_request.cancelled_party"
        )

        def build(tr: Tr, key: str = key) -> Outgoing:
            return Outgoing(tr(key, id=ride.id, when=cards.when_text(ride, tr)))

        await notify.to_user(
            ctx.session, person, build, kind="ride", dedupe_key=f"ride:{ride.id}:cancelled:{person.id}"
        )


async def keep_action(ctx: Context, data: buttons.Keep) -> None:
    ctx.say(ctx.t("ride_request.cancel_kept"), edit_ref=ctx.incoming.message_ref)


async def stop_series_action(ctx: Context, data: buttons.StopSeries) -> None:
    """The booker ends a weekly series; rides already posted stay (cancel them one by one)."""
    if not await ride_series.stop(ctx.session, series_id=data.series, booker_user_id=ctx.user.id):
        raise NotAllowed("a:series_stop", target=str(data.series), key="ride_request.series_not_yours")
    ctx.say(ctx.t("ride_request.series_stopped"))


async def _begin_list(ctx: Context) -> bool:
    """ "My rides" on the main menu: the list is shown and no question stays open."""
    await myrides_command(ctx)
    return False


async def _never(ctx: Context) -> None:  # pragma: no cover - the flow never asks
    return None


async def _never_handle(ctx: Context) -> Result:  # pragma: no cover
    return Retry()


# The main menu lists flows; this one only shows /myrides from a button.
MINE = Flow(
    name="myrides",
    menu_key="menu.myrides",
    menu_rank=11,
    begin=_begin_list,
    steps=(Step("list", _never, _never_handle),),
)
