"""/mybookings for residents (and, for lawyers, their consultations first): upcoming
bookings and waitlist places with cancel / move / leave buttons; waitlist offers.

Every button's id is checked against the presser: someone else's booking is refused
(``NotAllowed``: audited, answered kindly)."""

from __future__ import annotations

from dialogs.core import Context
from dialogs.feature import NotAllowed
from dialogs.legal import ask, buttons, cards, lawyer, service
from dialogs.messages import Choice
from storage import legal
from storage.data import Role
from storage.legal import BookingData, BookingStatus, WaitStatus


async def mybookings_command(ctx: Context, *, reask: bool = True) -> None:
    if ctx.user.has(Role.LAWYER):
        await lawyer.lawyer_bookings(ctx)
    now = ctx.now()
    mine = [b for b in await legal.for_resident(ctx.session, ctx.user.id) if b.status is BookingStatus.BOOKED]
    waits = await legal.waits_for(ctx.session, ctx.user.id)
    if not mine and not waits and not ctx.user.has(Role.LAWYER):
        ctx.say(
            ctx.t("legal.mine_none"),
            choices=[[Choice(ctx.t("legal.btn_book"), buttons.BookAgain().pack())]],
        )
    for booking in sorted(mine, key=lambda b: b.starts_at):
        slot = await legal.get_slot(ctx.session, booking.slot_id)
        name = await service.lawyer_name(ctx.session, booking.lawyer_user_id)
        rows = []
        if cards.can_change(booking, now):
            rows.append(
                [
                    Choice(ctx.t("legal.btn_move"), buttons.Reschedule(booking=booking.id).pack()),
                    Choice(ctx.t("legal.btn_cancel"), buttons.CancelBooking(booking=booking.id).pack()),
                ]
            )
        text = cards.booking_line(booking, slot, name, ctx.tr)
        if not rows:
            text += "\n" + ctx.t("legal.change_closed")
        ctx.say(text, choices=rows)
    for wait in waits:
        slot = await legal.get_slot(ctx.session, wait.slot_id)
        if slot is None:
            continue
        line = cards.slot_line(slot, await service.lawyer_name(ctx.session, slot.lawyer_user_id), ctx.tr)
        if wait.status is WaitStatus.OFFERED:
            ctx.say(
                ctx.t("legal.mine_offer", slot=line),
                choices=[
                    [Choice(ctx.t("legal.offer_accept"), buttons.AcceptOffer(wait=wait.id).pack())],
                    [Choice(ctx.t("legal.offer_decline"), buttons.DeclineOffer(wait=wait.id).pack())],
                ],
            )
        else:
            ctx.say(
                ctx.t("legal.mine_wait", slot=line, position=await legal.position(ctx.session, wait)),
                choices=[[Choice(ctx.t("legal.btn_leave_wait"), buttons.LeaveWait(wait=wait.id).pack())]],
            )
    if reask:
        await ctx.nav.reask(ctx)


async def _own(ctx: Context, booking_id: int, action: str) -> BookingData | None:
    booking = await legal.get_booking(ctx.session, booking_id)
    if booking is None:
        ctx.say(ctx.t("common.old_button"))
        return None
    if booking.resident_user_id != ctx.user.id:
        raise NotAllowed(action, target=str(booking_id), detail="not the resident", key="legal.not_yours")
    if booking.status is not BookingStatus.BOOKED:
        ctx.say(ctx.t("legal.not_booked_any_more"))
        return None
    if not cards.can_change(booking, ctx.now()):
        ctx.say(ctx.t("legal.too_late"))
        return None
    return booking


async def cancel_action(ctx: Context, data: buttons.CancelBooking) -> None:
    booking = await _own(ctx, data.booking, "a:legal_cancel")
    if booking is None:
        return
    ctx.say(
        ctx.t("legal.cancel_confirm", when=cards.moment_text(booking.starts_at, ctx.tr)),
        choices=[
            [Choice(ctx.t("legal.cancel_yes"), buttons.CancelBookingYes(booking=booking.id).pack())],
            [Choice(ctx.t("legal.cancel_keep"), buttons.MyBookings().pack())],
        ],
    )


async def cancel_yes_action(ctx: Context, data: buttons.CancelBookingYes) -> None:
    booking = await _own(ctx, data.booking, "a:legal_cancel_yes")
    if booking is None:
        return
    cancelled = await legal.cancel_booking(ctx.session, booking_id=booking.id)
    if cancelled is None:
        ctx.say(ctx.t("legal.not_booked_any_more"))
        return
    await service.free_seat(ctx.session, slot_id=booking.slot_id, now=ctx.now())
    await service.tell_lawyer_cancelled(ctx.session, cancelled)
    ctx.say(ctx.t("legal.cancelled"), edit_ref=ctx.incoming.message_ref)
    ctx.show_menu = True


async def reschedule_action(ctx: Context, data: buttons.Reschedule) -> None:
    booking = await _own(ctx, data.booking, "a:legal_move")
    if booking is None:
        return
    await ctx.nav.start(
        ctx,
        ask.MOVE_FLOW,
        ask.move_data(booking.id, booking.topic, booking.description, booking.opposing_party),
    )


async def _own_wait(ctx: Context, wait_id: int, action: str) -> legal.WaitData | None:
    wait = await legal.get_wait(ctx.session, wait_id)
    if wait is None:
        ctx.say(ctx.t("common.old_button"))
        return None
    if wait.resident_user_id != ctx.user.id:
        raise NotAllowed(
            action, target=str(wait_id), detail="not the waiting resident", key="legal.not_yours"
        )
    return wait


async def leave_wait_action(ctx: Context, data: buttons.LeaveWait) -> None:
    wait = await _own_wait(ctx, data.wait, "a:legal_leave_wait")
    if wait is None:
        return
    if wait.status is WaitStatus.OFFERED:
        await decline_action(ctx, buttons.DeclineOffer(wait=wait.id))
        return
    left = await legal.leave_waitlist(ctx.session, wait_id=wait.id, resident_user_id=ctx.user.id)
    ctx.say(ctx.t("legal.left_wait" if left else "legal.offer_over"))
    ctx.show_menu = True


async def accept_action(ctx: Context, data: buttons.AcceptOffer) -> None:
    wait = await _own_wait(ctx, data.wait, "a:legal_offer_yes")
    if wait is None:
        return
    booking = await legal.accept_offer(
        ctx.session, wait_id=wait.id, resident_user_id=ctx.user.id, now=ctx.now()
    )
    if booking is None:
        ctx.say(ctx.t("legal.offer_over"))
        ctx.show_menu = True
        return
    await service.tell_lawyer_booked(ctx.session, booking)
    await ask._confirmed(ctx, booking.slot_id, "legal.booked")


async def decline_action(ctx: Context, data: buttons.DeclineOffer) -> None:
    wait = await _own_wait(ctx, data.wait, "a:legal_offer_no")
    if wait is None:
        return
    ended = await legal.end_offer(
        ctx.session, wait_id=wait.id, now=ctx.now(), status=WaitStatus.DECLINED, resident_user_id=ctx.user.id
    )
    if ended is None:
        ctx.say(ctx.t("legal.offer_over"))
        return
    await service.free_seat(ctx.session, slot_id=wait.slot_id, now=ctx.now())
    ctx.say(ctx.t("legal.declined"))
    ctx.show_menu = True


async def rebook_action(ctx: Context, data: buttons.Rebook) -> None:
    """After the lawyer cancelled: the same request in one of the slots offered."""
    old = await legal.get_booking(ctx.session, data.booking)
    if old is None:
        ctx.say(ctx.t("common.old_button"))
        return
    if old.resident_user_id != ctx.user.id:
        raise NotAllowed(
            "a:legal_rebook", target=str(data.booking), detail="not the resident", key="legal.not_yours"
        )
    allowed = {
        s.id
        for s in await service.bookable(
            ctx.session,
            now=ctx.now(),
            resident_id=ctx.user.id,
            client_name=old.client_name,
            opposing_party=old.opposing_party,
        )
    }
    if old.status is not BookingStatus.LAWYER_CANCELLED or data.slot not in allowed:
        ctx.say(
            ctx.t("legal.slot_gone"),
            choices=[[Choice(ctx.t("legal.btn_book_again"), buttons.BookAgain().pack())]],
        )
        return
    request = legal.Request(ctx.user.id, old.client_name, old.topic, old.description, old.opposing_party)
    outcome = await legal.book(ctx.session, slot_id=data.slot, request=request, now=ctx.now())
    if outcome.booking is None:
        ctx.say(
            ctx.t("legal.just_full_short"),
            choices=[[Choice(ctx.t("legal.btn_book_again"), buttons.BookAgain().pack())]],
        )
        return
    await service.tell_lawyer_booked(ctx.session, outcome.booking)
    await ask._confirmed(ctx, outcome.booking.slot_id, "legal.booked")


async def mine_action(ctx: Context, data: buttons.MyBookings) -> None:
    await mybookings_command(ctx)


async def book_again_action(ctx: Context, data: buttons.BookAgain) -> None:
    await ctx.nav.start(ctx, ask.NAME)
