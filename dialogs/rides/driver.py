"""The driver side of a ride: the claim button, status buttons, release, and the
rider's rating afterwards.

Button data can be forged, so every action re-checks on the server: the entry checks
the role, and the storage calls are conditional UPDATEs that only touch a ride in the
right state and belonging to the right person; anything else raises ``NotAllowed``
(audited, and the presser told). The group sees the rider's phone masked; the full
details go to the driver privately, and the driver's card to rider and booker, only
once the claim is won.
"""

from __future__ import annotations

from datetime import timedelta

from dialogs.core import Context
from dialogs.feature import NotAllowed
from dialogs.i18n import Tr
from dialogs.messages import ChatKind, Choice, Outgoing
from dialogs.rides import buttons, cards, news, release
from storage import audit, outbox, rides, users
from storage.data import UserData
from storage.models import utcnow
from storage.rides import ClaimResult, RideData, RideStatus

LOW_RATING = 2  # 1–2 stars reach staff, with the comment when one follows

# Repeated no-shows within this window are flagged to staff.
NO_SHOW_WINDOW = timedelta(days=90)
NO_SHOW_ALERT = 2


def in_group(ctx: Context) -> bool:
    return ctx.incoming.chat_kind is ChatKind.GROUP


def claim_round(ride: RideData) -> str:
    """Which claim of the ride this is: a released and re-claimed ride tells everyone again."""
    claimed = int(ride.claimed_at.timestamp() * 1_000_000) if ride.claimed_at else 0
    return f"{ride.driver_user_id}:{claimed}"


async def driver_won(ctx: Context, ride: RideData, driver: UserData, *, assigned: bool = False) -> None:
    """What follows a won claim or a staff assignment: details both ways, privately."""

    def details(tr: Tr) -> Outgoing:
        message = cards.driver_details(ride, tr)
        if assigned:
            message.text = f"{tr('ride_driver.assigned_to_you')}\n{message.text}"
        return message

    round_key = claim_round(ride)
    await ctx.notify(driver, details, kind="ride", dedupe_key=f"ride:{ride.id}:driver:{round_key}")
    await news.tell_parties(
        ctx.session,
        ride,
        "ride_driver.claimed_parties",
        dedupe=f"claimed:{round_key}",
        extra=await cards.driver_card(ctx.session, driver),
    )


# -- claim ----------------------------------------------------------------------------


async def _check_offered(ctx: Context, ride: RideData) -> None:
    """A claim counts only when pressed on this ride's post in the driver group it was
    offered to: ride ids are guessable, so a claim typed into a private chat, sent from
    another group, or pressed on anything but that post is refused (and audited)."""

    def refuse(detail: str) -> NotAllowed:
        return NotAllowed("a:claim", target=str(ride.id), detail=detail, key="ride_driver.claim_not_offered")

    incoming = ctx.incoming
    if not in_group(ctx):
        raise refuse("pressed outside a driver group")
    group = await rides.group_by_chat(ctx.session, channel=incoming.channel, chat_id=incoming.chat_id)
    offered_to = await news.group_of(ctx.session, ride)
    if group is None or offered_to is None or group.id != offered_to.id:
        raise refuse("not offered to this group")
    if not incoming.message_ref or not await outbox.was_sent_as(
        ctx.session,
        channel=incoming.channel,
        chat_id=incoming.chat_id,
        dedupe_prefix=f"ride:{ride.id}:post:",
        message_id=incoming.message_ref,
    ):
        raise refuse("not pressed on the ride's post")


async def claim_action(ctx: Context, data: buttons.Claim) -> None:
    ride = await rides.get(ctx.session, data.ride)
    if ride is None:
        ctx.toast("ride_driver.missing_toast")
        return
    await _check_offered(ctx, ride)
    result = await rides.claim(ctx.session, ride_id=data.ride, driver_user_id=ctx.user.id)
    ride = await rides.get(ctx.session, data.ride)
    if result is ClaimResult.WON:
        assert ride is not None
        ctx.toast("ride_driver.claim_won_toast")
        _edit_post(ctx, ride, cards.person_name(ctx.user))
        await driver_won(ctx, ride, ctx.user)
        return
    if result is ClaimResult.TAKEN:
        ctx.toast("ride_driver.taken_toast")
        if ride is not None:
            driver = await users.get_user(ctx.session, ride.driver_user_id) if ride.driver_user_id else None
            _edit_post(ctx, ride, cards.person_name(driver, ride.driver_user_id))
        return
    key = {
        ClaimResult.CLOSED: "ride_driver.closed_toast",
        ClaimResult.OWN_RIDE: "ride_driver.own_ride_toast",
    }.get(result, "ride_driver.missing_toast")
    ctx.toast(key)
    if result is ClaimResult.CLOSED and ride is not None and in_group(ctx) and ctx.incoming.message_ref:
        # The post still offers a claim button for a ride that is over: take it away.
        ctx.say(cards.closed_post(ride, cards.group_tr()), edit_ref=ctx.incoming.message_ref)


def _edit_post(ctx: Context, ride: RideData, driver_name: str) -> None:
    """The pressed group post now says who took it, without a button."""
    if in_group(ctx) and ctx.incoming.message_ref:
        ctx.say(cards.taken_post(ride, cards.group_tr(), driver_name), edit_ref=ctx.incoming.message_ref)


# -- driver status --------------------------------------------------------------------


async def _step(ctx: Context, ride_id: int, to: RideStatus) -> RideData | None:
    """Move the presser's own ride to ``to``; refuse (and audit) anyone else's."""
    ride = await rides.driver_step(ctx.session, ride_id=ride_id, driver_user_id=ctx.user.id, to=to)
    if ride is not None:
        await audit.record(
            ctx.session, actor_user_id=ctx.user.id, action=f"ride_{to.value}", target=f"ride:{ride_id}"
        )
        _show_details(ctx, ride)
        return ride
    current = await rides.get(ctx.session, ride_id)
    if current is None or current.driver_user_id != ctx.user.id:
        raise NotAllowed(
            f"a:ride_{to.value}",
            target=str(ride_id),
            detail="not the driver of this ride",
            key="ride_driver.not_your_ride",
        )
    # Their ride, but already further along (a double press, an old message): show it fresh.
    ctx.toast("ride_driver.step_not_now", status=ctx.t(f"rides.status_{current.status.value}"))
    _show_details(ctx, current)
    return None


def _show_details(ctx: Context, ride: RideData) -> None:
    """Replace the driver's pressed message with fresh details and the next buttons."""
    message = cards.driver_details(ride, ctx.tr)
    message.edit_ref = ctx.incoming.message_ref
    ctx.replies.append(message)


async def on_way_action(ctx: Context, data: buttons.OnWay) -> None:
    ride = await _step(ctx, data.ride, RideStatus.ON_THE_WAY)
    if ride is not None:
        await news.tell_parties(
            ctx.session,
            ride,
            "ride_driver.on_way_parties",
            dedupe=f"on_way:{claim_round(ride)}",
            extra=await cards.driver_card(ctx.session, ctx.user),
        )


async def picked_up_action(ctx: Context, data: buttons.PickedUp) -> None:
    ride = await _step(ctx, data.ride, RideStatus.PICKED_UP)
    # The rider is in the car and knows; the booker (family, staff) is told.
    if ride is not None and ride.booker_user_id != ride.rider_user_id:
        await news.tell_booker(
            ctx.session, ride, "ride_driver.picked_up_booker", dedupe=f"picked_up:{claim_round(ride)}"
        )


async def completed_action(ctx: Context, data: buttons.Completed) -> None:
    ride = await _step(ctx, data.ride, RideStatus.COMPLETED)
    if ride is not None:
        await news.tell_parties(
            ctx.session,
            ride,
            "ride_driver.completed_parties",
            dedupe="completed",
            choices=lambda tr: cards.rating_buttons(ride.id, tr),
        )


async def arrived_action(ctx: Context, data: buttons.Arrived) -> None:
    """At the pickup point: rider and booker hear it; "rider not there" opens after a wait."""
    ride = await _step(ctx, data.ride, RideStatus.ARRIVED)
    if ride is not None:
        minutes = int(rides.NO_SHOW_WAIT.total_seconds() // 60)
        ctx.say(ctx.t("ride_driver.arrived_wait", minutes=minutes))
        await news.tell_parties(
            ctx.session, ride, "ride_driver.arrived_parties", dedupe=f"arrived:{claim_round(ride)}"
        )


async def no_show_action(ctx: Context, data: buttons.NoShow) -> None:
    """First press: after the wait, ask to confirm; nothing changes yet."""
    ride = await rides.get(ctx.session, data.ride)
    if ride is None or ride.driver_user_id != ctx.user.id:
        raise NotAllowed(
            "a:ride_no_show", target=str(data.ride), detail="not the driver", key="ride_driver.not_your_ride"
        )
    if ride.status is not RideStatus.ARRIVED or ride.arrived_at is None:
        ctx.say(ctx.t("ride_driver.no_show_arrive_first"))
        return
    waited = utcnow() - ride.arrived_at
    if waited < rides.NO_SHOW_WAIT:
        left = int((rides.NO_SHOW_WAIT - waited).total_seconds() // 60) + 1
        ctx.say(ctx.t("ride_driver.no_show_wait", minutes=left))
        return
    ctx.say(
        ctx.t("ride_driver.no_show_confirm", id=ride.id),
        choices=[[Choice(ctx.t("ride_driver.no_show_yes"), buttons.NoShowYes(ride=ride.id).pack())]],
    )


async def no_show_yes_action(ctx: Context, data: buttons.NoShowYes) -> None:
    ride = await _step(ctx, data.ride, RideStatus.NO_SHOW)
    if ride is None:
        return
    contact = await news.staff_contact(ctx.session, ride)
    await news.tell_parties(ctx.session, ride, "ride_driver.no_show_booker", dedupe="no_show", extra=contact)
    count = await rides.no_shows_since(
        ctx.session,
        rider_user_id=ride.rider_user_id,
        rider_phone=ride.rider_phone,
        since=utcnow() - NO_SHOW_WINDOW,
    )
    if count >= NO_SHOW_ALERT:
        await news.tell_staff(
            ctx.session, ride, "ride_driver.staff_no_shows", dedupe="no_show_alert", count=count
        )


async def release_action(ctx: Context, data: buttons.Release) -> None:
    ride = await rides.get(ctx.session, data.ride)
    if ride is None or ride.driver_user_id != ctx.user.id:
        raise NotAllowed(
            "a:ride_release",
            target=str(data.ride),
            detail="not the driver of this ride",
            key="ride_driver.not_your_ride",
        )
    if ride.status not in (RideStatus.CLAIMED, RideStatus.ON_THE_WAY):
        status = ctx.t(f"rides.status_{ride.status.value}")
        ctx.say(ctx.t("ride_driver.release_too_late", status=status))
        return
    await ctx.nav.start(ctx, release.RELEASE, {"ride_id": ride.id, "ref": ctx.incoming.message_ref})


# -- ratings --------------------------------------------------------------------------


async def rate_action(ctx: Context, data: buttons.Rate) -> None:
    if not 1 <= data.stars <= 5:
        ctx.say(ctx.t("common.old_button"))
        return
    ride = await rides.rate(ctx.session, ride_id=data.ride, rater_user_id=ctx.user.id, rating=data.stars)
    if ride is not None and ride.rating is not None and ride.rating <= LOW_RATING:
        await news.tell_staff(
            ctx.session, ride, "ride_driver.staff_low_rating", dedupe="low_rating", stars=ride.rating
        )
    if ride is not None:
        shown = ctx.t("ride_driver.rate_star", n=data.stars)
        ctx.say(
            ctx.t("ride_driver.rate_thanks", stars=shown),
            choices=[
                [Choice(ctx.t("ride_driver.rate_comment_button"), buttons.Comment(ride=data.ride).pack())],
                [
                    Choice(
                        ctx.t("ride_driver.rate_no_comment"),
                        buttons.Comment(ride=data.ride, choice="no").pack(),
                    )
                ],
            ],
            edit_ref=ctx.incoming.message_ref,
        )
        return
    current = await rides.get(ctx.session, data.ride)
    if current is None or ctx.user.id not in (current.booker_user_id, current.rider_user_id):
        raise NotAllowed(
            "a:ride_rate",
            target=data.pack(),
            detail="not the rider or booker",
            key="ride_driver.rate_not_yours",
        )
    ctx.say(ctx.t("ride_driver.rate_already" if current.rating is not None else "ride_driver.rate_not_yet"))


async def comment_action(ctx: Context, data: buttons.Comment) -> None:
    ride = await rides.get(ctx.session, data.ride)
    if ride is None or ctx.user.id not in (ride.booker_user_id, ride.rider_user_id):
        raise NotAllowed(
            "a:ride_comment",
            target=data.pack(),
            detail="not the rider or booker",
            key="ride_driver.rate_not_yours",
        )
    if ride.rating is None:
        ctx.say(ctx.t("ride_driver.comment_failed"))
        return
    if data.choice == "no":
        stars = ctx.t("ride_driver.rate_star", n=ride.rating)
        ctx.say(ctx.t("ride_driver.rate_thanks_done", stars=stars), edit_ref=ctx.incoming.message_ref)
        return
    await ctx.nav.start(ctx, release.COMMENT, {"ride_id": ride.id})
