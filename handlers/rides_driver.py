"""The driver side of rides: driver groups, the claim button, status buttons, release,
ratings, staff assignment and per-driver figures.

Button data can be forged, so every action re-checks on the server: the router checks
the role, and the storage calls are conditional UPDATEs that only touch a ride in the
right state and belonging to the right person. Refusals are written to the audit log.
The group sees the rider's phone masked; the full details go to the driver privately,
and the driver's card to rider and booker, only once the claim is won.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select
from sqlmodel import col

from dialogs import ride_common, ride_release
from dialogs.core import Context
from dialogs.messages import ChatKind, Choice, Outgoing
from dialogs.ride_common import Tr
from dialogs.validate import parse_id
from handlers.registry import Action, Command, Registry
from handlers.routing import Router
from storage import applications, audit, communities, outbox, rides, users
from storage.data import RideData, RideStatus, Role, UserData
from storage.models import OutboxMessage, utcnow
from storage.rides import ClaimResult

# Repeated no-shows within this window are flagged to staff.
NO_SHOW_WINDOW = timedelta(days=90)
NO_SHOW_ALERT = 2
# Driver groups read Chinese (the volunteer groups in Wuhan are Chinese-speaking).
GROUP_LANG = "zh"
_SPLIT = re.compile(r"[\s,，、;；]+")


def _group_tr() -> Tr:
    return ride_common.translator(GROUP_LANG)


def _toast(ctx: Context, key: str, **fields: object) -> None:
    ctx.say(ctx.t(key, **fields), toast=True)


def _in_group(ctx: Context) -> bool:
    return ctx.incoming.chat_kind is ChatKind.GROUP


def _name(user: UserData | None, user_id: int | None = None) -> str:
    if user is None:
        return f"#{user_id}" if user_id is not None else "—"
    return user.display_name or user.username or f"#{user.id}"


def _round(ride: RideData) -> str:
    """Which claim of the ride this is: a released and re-claimed ride tells everyone again."""
    claimed = int(ride.claimed_at.timestamp() * 1_000_000) if ride.claimed_at else 0
    return f"{ride.driver_user_id}:{claimed}"


async def _refuse(ctx: Context, action: str, target: str, detail: str) -> None:
    await audit.record(
        ctx.session,
        actor_user_id=ctx.user.id,
        action=action,
        target=target,
        allowed=False,
        detail=detail,
    )


# -- group binding --------------------------------------------------------------------


async def bind_group_command(ctx: Context, router: Router) -> None:
    incoming = ctx.incoming
    names = [n for n in _SPLIT.split(incoming.text.strip()) if n]
    found: dict[int, str] = {}
    unknown: list[str] = []
    for name in names[:20]:
        matches = await communities.search_communities(ctx.session, name, limit=1)
        if matches:
            found[matches[0].id] = matches[0].name
        else:
            unknown.append(name[:30])
    if unknown:
        ctx.say(ctx.t("ride_driver.bind_unknown", names="、".join(unknown)))
        return
    group = await rides.bind_group(
        ctx.session,
        channel=incoming.channel,
        chat_id=incoming.chat_id,
        title=f"{incoming.channel}:{incoming.chat_id}",
        community_ids=sorted(found),
        bound_by=ctx.user.id,
    )
    await audit.record(
        ctx.session,
        actor_user_id=ctx.user.id,
        action="bind_driver_group",
        target=f"group:{group.id}",
        detail=",".join(str(c) for c in sorted(found)) or "all",
    )
    if found:
        ctx.say(ctx.t("ride_driver.bound_some", communities="、".join(found[c] for c in sorted(found))))
    else:
        ctx.say(ctx.t("ride_driver.bound_all"))


async def unbind_group_command(ctx: Context, router: Router) -> None:
    incoming = ctx.incoming
    done = await rides.unbind_group(ctx.session, channel=incoming.channel, chat_id=incoming.chat_id)
    if done:
        await audit.record(
            ctx.session,
            actor_user_id=ctx.user.id,
            action="unbind_driver_group",
            target=f"{incoming.channel}:{incoming.chat_id}",
        )
    ctx.say(ctx.t("ride_driver.unbound" if done else "ride_driver.not_bound"))


# -- telling people -------------------------------------------------------------------


async def _card_for(ctx: Context, driver: UserData) -> Callable[[Tr], str]:
    """The driver's card in any language (car details read once)."""
    car = await applications.approved_details(ctx.session, user_id=driver.id, role=Role.DRIVER)

    def card(tr: Tr) -> str:
        return tr(
            "rides.driver_card",
            name=_name(driver),
            car=car.get("car_model", "—"),
            plate=car.get("plate", "—"),
            phone=driver.phone or "—",
        )

    return card


async def _tell_booker(ctx: Context, ride: RideData, key: str, *, dedupe: str) -> None:
    booker = await users.get_user(ctx.session, ride.booker_user_id)
    if booker is None:
        return

    def build(tr: Tr, lang: str) -> Outgoing:
        return Outgoing(tr(key, id=ride.id, when=ride_common.when_text(ride, tr, lang)))

    ctx.enqueued += await ride_common.send_to_user(
        ctx.session, booker, build, kind="ride", dedupe_key=f"ride:{ride.id}:{dedupe}:{booker.id}"
    )


async def _driver_won(ctx: Context, ride: RideData, driver: UserData, *, assigned: bool = False) -> None:
    """What follows a won claim or a staff assignment: details both ways, privately."""

    def details(tr: Tr, lang: str) -> Outgoing:
        message = ride_common.driver_details(ride, tr, lang)
        if assigned:
            message.text = f"{tr('ride_driver.assigned_to_you')}\n{message.text}"
        return message

    round_key = _round(ride)
    ctx.enqueued += await ride_common.send_to_user(
        ctx.session, driver, details, kind="ride", dedupe_key=f"ride:{ride.id}:driver:{round_key}"
    )
    ctx.enqueued += await ride_common.tell_parties(
        ctx.session,
        ride,
        "ride_driver.claimed_parties",
        dedupe=f"claimed:{round_key}",
        extra=await _card_for(ctx, driver),
    )


# -- claim ----------------------------------------------------------------------------


async def claim_action(ctx: Context, router: Router, arg: str) -> None:
    ride_id = parse_id(arg)
    if ride_id is None:
        _toast(ctx, "common.old_button")
        return
    result = await rides.claim(ctx.session, ride_id=ride_id, driver_user_id=ctx.user.id)
    ride = await rides.get(ctx.session, ride_id)
    if result is ClaimResult.WON:
        assert ride is not None
        _toast(ctx, "ride_driver.claim_won_toast")
        await _edit_post(ctx, ride, _name(ctx.user))
        await _driver_won(ctx, ride, ctx.user)
        return
    if result is ClaimResult.TAKEN:
        _toast(ctx, "ride_driver.taken_toast")
        if ride is not None:
            driver = await users.get_user(ctx.session, ride.driver_user_id) if ride.driver_user_id else None
            await _edit_post(ctx, ride, _name(driver, ride.driver_user_id))
        return
    key = {
        ClaimResult.CLOSED: "ride_driver.closed_toast",
        ClaimResult.OWN_RIDE: "ride_driver.own_ride_toast",
    }.get(result, "ride_driver.missing_toast")
    _toast(ctx, key)
    if result is ClaimResult.CLOSED and ride is not None and _in_group(ctx) and ctx.incoming.message_ref:
        # The post still offers a claim button for a ride that is over: take it away.
        tr = _group_tr()
        status = tr(f"rides.status_{ride.status.value}")
        body = ride_common.ride_lines(ride, tr, GROUP_LANG, phone="")
        ctx.say(f"{tr('ride_driver.group_closed', status=status)}\n{body}", edit_ref=ctx.incoming.message_ref)


async def _edit_post(ctx: Context, ride: RideData, driver_name: str) -> None:
    """The pressed group post now says who took it, without a button."""
    if not _in_group(ctx) or not ctx.incoming.message_ref:
        return
    text = ride_common.taken_post(ride, _group_tr(), GROUP_LANG, driver_name)
    ctx.say(text, edit_ref=ctx.incoming.message_ref)


# -- driver status --------------------------------------------------------------------


async def _step(ctx: Context, arg: str, to: RideStatus) -> RideData | None:
    """Move the presser's own ride to ``to``; refuse (and audit) anyone else's."""
    ride_id = parse_id(arg)
    if ride_id is None:
        _toast(ctx, "common.old_button")
        return None
    ride = await rides.driver_step(ctx.session, ride_id=ride_id, driver_user_id=ctx.user.id, to=to)
    if ride is not None:
        await audit.record(
            ctx.session, actor_user_id=ctx.user.id, action=f"ride_{to.value}", target=f"ride:{ride_id}"
        )
        _show_details(ctx, ride)
        return ride
    current = await rides.get(ctx.session, ride_id)
    if current is None or current.driver_user_id != ctx.user.id:
        await _refuse(ctx, f"a:ride_{to.value}", arg, "not the driver of this ride")
        _toast(ctx, "ride_driver.not_your_ride")
        return None
    # Their ride, but already further along (a double press, an old message): show it fresh.
    _toast(ctx, "ride_driver.step_not_now", status=ctx.t(f"rides.status_{current.status.value}"))
    _show_details(ctx, current)
    return None


def _show_details(ctx: Context, ride: RideData) -> None:
    """Replace the driver's pressed message with fresh details and the next buttons."""
    message = ride_common.driver_details(ride, ctx.t, ctx.lang)
    message.edit_ref = ctx.incoming.message_ref
    ctx.replies.append(message)


async def on_way_action(ctx: Context, router: Router, arg: str) -> None:
    ride = await _step(ctx, arg, RideStatus.ON_THE_WAY)
    if ride is None:
        return
    ctx.enqueued += await ride_common.tell_parties(
        ctx.session,
        ride,
        "ride_driver.on_way_parties",
        dedupe=f"on_way:{_round(ride)}",
        extra=await _card_for(ctx, ctx.user),
    )


async def picked_up_action(ctx: Context, router: Router, arg: str) -> None:
    ride = await _step(ctx, arg, RideStatus.PICKED_UP)
    # The rider is in the car and knows; the booker (family, staff) is told.
    if ride is not None and ride.booker_user_id != ride.rider_user_id:
        await _tell_booker(ctx, ride, "ride_driver.picked_up_booker", dedupe=f"picked_up:{_round(ride)}")


def rating_buttons(ride_id: int, tr: Tr) -> list[list[Choice]]:
    return [[Choice(tr("ride_driver.rate_star", n=n), f"a:ride_rate:{ride_id}:{n}") for n in range(1, 6)]]


async def completed_action(ctx: Context, router: Router, arg: str) -> None:
    ride = await _step(ctx, arg, RideStatus.COMPLETED)
    if ride is None:
        return
    ctx.enqueued += await ride_common.tell_parties(
        ctx.session,
        ride,
        "ride_driver.completed_parties",
        dedupe="completed",
        choices=lambda tr: rating_buttons(ride.id, tr),
    )


async def no_show_action(ctx: Context, router: Router, arg: str) -> None:
    ride = await _step(ctx, arg, RideStatus.NO_SHOW)
    if ride is None:
        return
    await _tell_booker(ctx, ride, "ride_driver.no_show_booker", dedupe="no_show")
    count = await rides.no_shows_since(
        ctx.session,
        rider_user_id=ride.rider_user_id,
        rider_phone=ride.rider_phone,
        since=utcnow() - NO_SHOW_WINDOW,
    )
    if count >= NO_SHOW_ALERT:
        ctx.enqueued += await ride_common.tell_staff(
            ctx.session, ride, "ride_driver.staff_no_shows", dedupe="no_show_alert", count=count
        )


async def release_action(ctx: Context, router: Router, arg: str) -> None:
    ride_id = parse_id(arg)
    if ride_id is None:
        _toast(ctx, "common.old_button")
        return
    ride = await rides.get(ctx.session, ride_id)
    if ride is None or ride.driver_user_id != ctx.user.id:
        await _refuse(ctx, "a:ride_release", arg, "not the driver of this ride")
        _toast(ctx, "ride_driver.not_your_ride")
        return
    if ride.status not in (RideStatus.CLAIMED, RideStatus.ON_THE_WAY):
        status = ctx.t(f"rides.status_{ride.status.value}")
        ctx.say(ctx.t("ride_driver.release_too_late", status=status))
        return
    data = {"ride_id": ride_id, "ref": ctx.incoming.message_ref}
    await router.engine.start(ctx, ride_release.RELEASE, data)


# -- ratings --------------------------------------------------------------------------


async def rate_action(ctx: Context, router: Router, arg: str) -> None:
    raw_id, _, raw_n = arg.partition(":")
    ride_id, stars = parse_id(raw_id), parse_id(raw_n)
    if ride_id is None or stars is None or not 1 <= stars <= 5:
        ctx.say(ctx.t("common.old_button"))
        return
    ride = await rides.rate(ctx.session, ride_id=ride_id, rater_user_id=ctx.user.id, rating=stars)
    if ride is not None:
        shown = ctx.t("ride_driver.rate_star", n=stars)
        ctx.say(
            ctx.t("ride_driver.rate_thanks", stars=shown),
            choices=[
                [Choice(ctx.t("ride_driver.rate_comment_button"), f"a:ride_comment:{ride_id}")],
                [Choice(ctx.t("ride_driver.rate_no_comment"), f"a:ride_comment:{ride_id}:no")],
            ],
            edit_ref=ctx.incoming.message_ref,
        )
        return
    current = await rides.get(ctx.session, ride_id)
    if current is None or ctx.user.id not in (current.booker_user_id, current.rider_user_id):
        await _refuse(ctx, "a:ride_rate", arg, "not the rider or booker")
        ctx.say(ctx.t("ride_driver.rate_not_yours"))
    elif current.rating is not None:
        ctx.say(ctx.t("ride_driver.rate_already"))
    else:
        ctx.say(ctx.t("ride_driver.rate_not_yet"))


async def comment_action(ctx: Context, router: Router, arg: str) -> None:
    raw_id, _, choice = arg.partition(":")
    ride_id = parse_id(raw_id)
    ride = await rides.get(ctx.session, ride_id) if ride_id is not None else None
    if ride is None or ctx.user.id not in (ride.booker_user_id, ride.rider_user_id):
        await _refuse(ctx, "a:ride_comment", arg, "not the rider or booker")
        ctx.say(ctx.t("ride_driver.rate_not_yours"))
        return
    if ride.rating is None:
        ctx.say(ctx.t("ride_driver.comment_failed"))
        return
    if choice == "no":
        stars = ctx.t("ride_driver.rate_star", n=ride.rating)
        ctx.say(ctx.t("ride_driver.rate_thanks_done", stars=stars), edit_ref=ctx.incoming.message_ref)
        return
    await router.engine.start(ctx, ride_release.COMMENT, {"ride_id": ride.id})


async def drivers_command(ctx: Context, router: Router) -> None:
    stats = {s.driver_user_id: s for s in await rides.driver_stats(ctx.session)}
    approved = {u.id: u for u in await users.users_with_role(ctx.session, Role.DRIVER)}
    ids = sorted(set(stats) | set(approved))
    if not ids:
        ctx.say(ctx.t("ride_driver.drivers_none"))
        return
    lines = [ctx.t("ride_driver.drivers_head")]
    for driver_id in ids:
        user = approved.get(driver_id) or await users.get_user(ctx.session, driver_id)
        s = stats.get(driver_id)
        average = f"{s.average:.1f}" if s and s.average is not None else ctx.t("ride_driver.no_average")
        lines.append(
            ctx.t(
                "ride_driver.drivers_line",
                name=_name(user, driver_id),
                completed=s.completed if s else 0,
                no_shows=s.no_shows_reported if s else 0,
                ratings=s.ratings if s else 0,
                average=average,
            )
        )
    ctx.say("\n".join(lines))


# -- staff assignment -----------------------------------------------------------------


async def assign_action(ctx: Context, router: Router, arg: str) -> None:
    ride_id = parse_id(arg)
    ride = await rides.get(ctx.session, ride_id) if ride_id is not None else None
    if ride is None:
        ctx.say(ctx.t("ride_driver.missing_toast"))
        return
    if ride.status is not RideStatus.POSTED:
        status = ctx.t(f"rides.status_{ride.status.value}")
        ctx.say(ctx.t("ride_driver.assign_not_open", id=ride.id, status=status))
        return
    drivers = [
        d
        for d in await users.users_with_role(ctx.session, Role.DRIVER)
        if not d.blocked and d.id not in (ride.booker_user_id, ride.rider_user_id)
    ]
    if not drivers:
        ctx.say(ctx.t("ride_driver.assign_no_drivers"))
        return
    rows = [[Choice(_name(d), f"a:ride_assign_to:{ride.id}:{d.id}")] for d in drivers[:30]]
    ctx.say(ctx.t("ride_driver.assign_pick", id=ride.id), choices=rows)


async def assign_to_action(ctx: Context, router: Router, arg: str) -> None:
    raw_ride, _, raw_driver = arg.partition(":")
    ride_id, driver_id = parse_id(raw_ride), parse_id(raw_driver)
    driver = await users.get_user(ctx.session, driver_id) if driver_id is not None else None
    if ride_id is None or driver is None or not driver.has(Role.DRIVER):
        # Forged data: staff can only hand rides to approved drivers.
        await _refuse(ctx, "a:ride_assign_to", arg, "not an approved driver")
        ctx.say(ctx.t("ride_driver.assign_not_driver"))
        return
    ride = await rides.assign(
        ctx.session, ride_id=ride_id, driver_user_id=driver.id, staff_user_id=ctx.user.id
    )
    if ride is None:
        current = await rides.get(ctx.session, ride_id)
        if current is None:
            ctx.say(ctx.t("ride_driver.missing_toast"))
        else:
            status = ctx.t(f"rides.status_{current.status.value}")
            ctx.say(ctx.t("ride_driver.assign_not_open", id=ride_id, status=status))
        return
    await audit.record(
        ctx.session,
        actor_user_id=ctx.user.id,
        action="ride_assign",
        target=f"ride:{ride.id}",
        detail=f"driver {driver.id}",
    )
    await _driver_won(ctx, ride, driver, assigned=True)
    ctx.enqueued += await _tell_group_assigned(ctx, ride, _name(driver))
    ctx.say(
        ctx.t("ride_driver.assign_done", id=ride.id, driver=_name(driver)), edit_ref=ctx.incoming.message_ref
    )


async def _tell_group_assigned(ctx: Context, ride: RideData, driver_name: str) -> int:
    """Edit the newest delivered group post of this ride; else a short note to the group."""
    group = await rides.get_group(ctx.session, ride.group_id) if ride.group_id is not None else None
    group = group or await rides.group_for(ctx.session, ride.community_id)
    if group is None:
        return 0
    tr = _group_tr()
    stmt = (
        select(col(OutboxMessage.sent_message_id))
        .where(
            col(OutboxMessage.channel) == group.channel,
            col(OutboxMessage.chat_id) == group.chat_id,
            col(OutboxMessage.dedupe_key).like(f"ride:{ride.id}:post:%"),
            col(OutboxMessage.sent_message_id).is_not(None),
        )
        .order_by(col(OutboxMessage.id).desc())
        .limit(1)
    )
    message_id = (await ctx.session.execute(stmt)).scalar_one_or_none()
    if message_id is not None:
        message = Outgoing(ride_common.taken_post(ride, tr, GROUP_LANG, driver_name), edit_ref=message_id)
    else:
        message = Outgoing(tr("ride_driver.assigned_group", id=ride.id, driver=driver_name))
    queued = await outbox.enqueue(
        ctx.session,
        channel=group.channel,
        chat_id=group.chat_id,
        message=message,
        kind="ride-post",
        dedupe_key=f"ride:{ride.id}:assigned:{_round(ride)}",
        is_group=True,
    )
    return int(queued)


def register(registry: Registry) -> None:
    registry.add_command(
        Command(
            "bind_driver_group",
            bind_group_command,
            requires_role=Role.STAFF,
            in_private=False,
            in_groups=True,
            description_key="commands.bind_driver_group",
        )
    )
    registry.add_command(
        Command(
            "unbind_driver_group",
            unbind_group_command,
            requires_role=Role.STAFF,
            in_private=False,
            in_groups=True,
            description_key="commands.unbind_driver_group",
        )
    )
    registry.add_command(
        Command("drivers", drivers_command, requires_role=Role.STAFF, description_key="commands.drivers")
    )
    for flow in ride_release.FLOWS:
        registry.add_flow(flow)
    registry.add_action(Action("claim", claim_action, requires_role=Role.DRIVER))
    registry.add_action(Action("ride_on_way", on_way_action, requires_role=Role.DRIVER))
    registry.add_action(Action("ride_picked_up", picked_up_action, requires_role=Role.DRIVER))
    registry.add_action(Action("ride_completed", completed_action, requires_role=Role.DRIVER))
    registry.add_action(Action("ride_no_show", no_show_action, requires_role=Role.DRIVER))
    registry.add_action(Action("ride_release", release_action, requires_role=Role.DRIVER))
    # Rating and comments: storage checks the presser is the rider or the booker.
    registry.add_action(Action("ride_rate", rate_action))
    registry.add_action(Action("ride_comment", comment_action))
    registry.add_action(Action("ride_assign", assign_action, requires_role=Role.STAFF))
    registry.add_action(Action("ride_assign_to", assign_to_action, requires_role=Role.STAFF))
