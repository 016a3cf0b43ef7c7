"""Staff work on rides: binding a chat as a driver group, per-driver figures
(/drivers), and giving an open ride to a driver directly."""

from __future__ import annotations

import re

from dialogs import notify, places
from dialogs.core import Context
from dialogs.feature import NotAllowed
from dialogs.i18n import Tr
from dialogs.messages import Choice, Kind, Outgoing
from dialogs.rides import buttons, cards, driver, news
from storage import audit, outbox, rides, users
from storage.data import Role
from storage.rides import RideData, RideStatus

# -- group binding --------------------------------------------------------------------


# An invite link staff pass when binding: how an approved driver joins the group.
_INVITE = re.compile(r"https://t\.me/(?:\+|joinchat/)[A-Za-z0-9_-]{6,64}")


async def bind_group_command(ctx: Context) -> None:
    """/bind_driver_group [invite link] [communities]: this chat becomes the driver group."""
    incoming = ctx.incoming
    link = _INVITE.search(incoming.text)
    rest = _INVITE.sub(" ", incoming.text) if link else incoming.text
    found, unknown = await places.communities_named(ctx.session, places.split_names(rest))
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
        invite_link=link.group(0) if link else None,
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
    ctx.say(ctx.t("ride_driver.bound_invite" if group.invite_link else "ride_driver.bound_no_invite"))


async def unbind_group_command(ctx: Context) -> None:
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


# -- figures --------------------------------------------------------------------------


async def drivers_command(ctx: Context) -> None:
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
                name=cards.person_name(user, driver_id),
                completed=s.completed if s else 0,
                no_shows=s.no_shows_reported if s else 0,
                ratings=s.ratings if s else 0,
                average=average,
            )
        )
    ctx.say("\n".join(lines))


# -- assignment -----------------------------------------------------------------------


async def assign_action(ctx: Context, data: buttons.Assign) -> None:
    ride = await rides.get(ctx.session, data.ride)
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
    rows = [
        [Choice(cards.person_name(d), buttons.AssignTo(ride=ride.id, driver=d.id).pack())]
        for d in drivers[:30]
    ]
    ctx.say(ctx.t("ride_driver.assign_pick", id=ride.id), choices=rows)


async def assign_to_action(ctx: Context, data: buttons.AssignTo) -> None:
    chosen = await users.get_user(ctx.session, data.driver)
    if chosen is None or not chosen.has(Role.DRIVER):
        # Forged data: staff can only hand rides to approved drivers.
        raise NotAllowed(
            "a:ride_assign_to",
            target=f"{data.ride}:{data.driver}",
            detail="not an approved driver",
            key="ride_driver.assign_not_driver",
        )
    ride = await rides.assign(
        ctx.session, ride_id=data.ride, driver_user_id=chosen.id, staff_user_id=ctx.user.id
    )
    if ride is None:
        current = await rides.get(ctx.session, data.ride)
        if current is None:
            ctx.say(ctx.t("ride_driver.missing_toast"))
        else:
            status = ctx.t(f"rides.status_{current.status.value}")
            ctx.say(ctx.t("ride_driver.assign_not_open", id=data.ride, status=status))
        return
    await audit.record(
        ctx.session,
        actor_user_id=ctx.user.id,
        action="ride_assign",
        target=f"ride:{ride.id}",
        detail=f"driver {chosen.id}",
    )
    await driver.driver_won(ctx, ride, chosen, assigned=True)
    await _tell_group_assigned(ctx, ride, cards.person_name(chosen))
    ctx.say(
        ctx.t("ride_driver.assign_done", id=ride.id, driver=cards.person_name(chosen)),
        edit_ref=ctx.incoming.message_ref,
    )


async def _tell_group_assigned(ctx: Context, ride: RideData, driver_name: str) -> None:
    """Edit the newest delivered group post of this ride; else a short note to the group."""
    group = await news.group_of(ctx.session, ride)
    if group is None:
        return
    tr = cards.group_tr()
    message_id = await outbox.last_sent_message_id(
        ctx.session, channel=group.channel, chat_id=group.chat_id, dedupe_prefix=f"ride:{ride.id}:post:"
    )
    if message_id is not None:
        message = Outgoing(cards.taken_post(ride, tr, driver_name), edit_ref=message_id)
    else:
        message = Outgoing(tr("ride_driver.assigned_group", id=ride.id, driver=driver_name))
    await notify.to_group(
        ctx.session,
        channel=group.channel,
        chat_id=group.chat_id,
        message=message,
        kind="ride-post",
        dedupe_key=f"ride:{ride.id}:assigned:{driver.claim_round(ride)}",
    )


# -- when something happens to the driver group -----------------------------------------


async def group_event(ctx: Context) -> None:
    """The driver group moved to a new chat id, or Linli was removed from it (or may no
    longer post there): rides must not go on being posted to nobody."""
    incoming = ctx.incoming
    group = await rides.group_by_chat(ctx.session, channel=incoming.channel, chat_id=incoming.chat_id)
    if group is None:
        return
    if incoming.kind is Kind.CHAT_MOVED and incoming.moved_to:
        await _group_moved(ctx, group.id, incoming.moved_to)
    elif incoming.kind is Kind.BOT_REMOVED:
        await _group_lost(ctx, group.id)


async def _group_moved(ctx: Context, group_id: int, new_chat_id: str) -> None:
    incoming = ctx.incoming
    await rides.move_group(ctx.session, group_id=group_id, chat_id=new_chat_id)
    await outbox.move_chat(
        ctx.session, channel=incoming.channel, old_chat_id=incoming.chat_id, new_chat_id=new_chat_id
    )
    await audit.record(
        ctx.session,
        actor_user_id=ctx.user.id,
        action="driver_group_moved",
        target=f"group:{group_id}",
        detail=f"{incoming.chat_id} -> {new_chat_id}",
    )
    # The old posts' claim buttons now point at a chat that is gone: post the open rides again.
    again = int(ctx.now().timestamp() * 1000)
    for ride in await rides.open_in_group(ctx.session, group_id):
        await news.announce(ctx.session, ride, again=True, round_no=again)


async def _group_lost(ctx: Context, group_id: int) -> None:
    incoming = ctx.incoming
    await rides.unbind_group(ctx.session, channel=incoming.channel, chat_id=incoming.chat_id)
    await audit.record(
        ctx.session,
        actor_user_id=ctx.user.id,
        action="driver_group_lost",
        target=f"group:{group_id}",
        detail=incoming.text,
    )
    staff = await users.users_with_role(ctx.session, Role.STAFF)
    await notify.to_users(
        ctx.session,
        staff,
        lambda tr: Outgoing(tr("ride_driver.group_lost_staff", who=cards.person_name(ctx.user))),
        kind="ride",
        dedupe=f"driver-group:{group_id}:lost:{incoming.update_id}",
    )
    # Open rides of that group now need staff: each with an assign button.
    for ride in await rides.open_in_group(ctx.session, group_id):
        await _needs_staff(ctx, ride, dedupe=f"group-lost:{incoming.update_id}")


async def _needs_staff(ctx: Context, ride: RideData, *, dedupe: str) -> None:
    def assign(tr: Tr) -> list[list[Choice]]:
        return cards.staff_ride_buttons(ride, tr)

    await news.tell_staff(ctx.session, ride, "rides.staff_no_group", dedupe=dedupe, choices=assign)
