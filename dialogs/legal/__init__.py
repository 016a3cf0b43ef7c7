"""Free legal consultations (春芽小站, 法律明白人): self-help from a shipped FAQ with
urgent triage first, then volunteer lawyers' published hours, booking with seats,
conflict check, waitlist offers, reminders, and the lawyer's side.

Read in this order: triage.py and matching.py (self-help), ask.py (the /legal flow and
booking), mine.py (/mybookings, cancel, move, waitlist offers), lawyer.py (hours,
conflicts, done/no-show/notes, cancelling a slot, staff), service.py, jobs.py; the
knowledge base is knowledge.toml (kb.py reads it and staff's imports).
"""

from __future__ import annotations

from dialogs.core import Context
from dialogs.feature import Action, Command, Feature, Intent
from dialogs.legal import ask, buttons, cards, jobs, lawyer, mine, service
from storage import legal
from storage.data import Role
from storage.legal import BookingStatus


async def _mydata(ctx: Context) -> list[str]:
    bookings = await legal.for_resident(ctx.session, ctx.user.id, limit=20)
    waits = await legal.waits_for(ctx.session, ctx.user.id)
    lines = []
    if bookings or waits:
        lines.append(ctx.t("mydata.legal_title", bookings=len(bookings), waits=len(waits)))
        for b in bookings:
            lines.append(
                ctx.t(
                    "mydata.legal_line",
                    when=cards.moment_text(b.starts_at, ctx.tr),
                    topic=cards.topic_name(b.topic, ctx.tr),
                    desc=b.description or "—",
                    party=b.opposing_party or "—",
                    status=ctx.t(f"legal.status_{b.status.value}"),
                )
            )
    if ctx.user.has(Role.LAWYER):
        windows = await legal.windows(ctx.session, lawyer_user_id=ctx.user.id)
        conflicts = await legal.conflicts(ctx.session, ctx.user.id)
        if windows or conflicts:
            lines.append(ctx.t("mydata.legal_lawyer", windows=len(windows), conflicts=len(conflicts)))
    return ["\n".join(lines)] if lines else []


async def _erase(ctx: Context, user_id: int) -> None:
    """Upcoming bookings are cancelled (their seats go to the waitlist) and the lawyers
    told; then what the person typed and who they are leave every booking."""
    now = ctx.now()
    for booking in await legal.for_resident(ctx.session, user_id, limit=1000):
        if booking.status is BookingStatus.BOOKED and booking.starts_at > now:
            cancelled = await legal.cancel_booking(ctx.session, booking_id=booking.id)
            if cancelled is not None:
                await service.free_seat(ctx.session, slot_id=booking.slot_id, now=now)
                await service.tell_lawyer_cancelled(ctx.session, cancelled)
    for wait in await legal.waits_for(ctx.session, user_id):
        if wait.offer_expires_at is not None and wait.status.value == "offered":
            await legal.end_offer(ctx.session, wait_id=wait.id, now=now, status=legal.WaitStatus.DECLINED)
            await service.free_seat(ctx.session, slot_id=wait.slot_id, now=now)
    await legal.erase_resident(ctx.session, user_id)
    if ctx.user.id == user_id and ctx.user.has(Role.LAWYER):
        for slot in await legal.lawyer_slots(ctx.session, lawyer_user_id=user_id, since=now):
            await service.cancel_slot(ctx.session, slot_id=slot.id, lawyer_id=user_id, now=now)
        await legal.erase_lawyer(ctx.session, user_id)


FEATURE = Feature(
    name="legal",
    flows=(ask.FLOW, ask.MOVE_FLOW, lawyer.HOURS_FLOW, lawyer.NOTE_FLOW),
    commands=(
        Command("mybookings", mine.mybookings_command, description_key="commands.mybookings"),
        Command(
            "legal_bookings",
            lawyer.staff_bookings_command,
            requires_role=Role.STAFF,
            description_key="commands.legal_bookings",
        ),
    ),
    actions=(
        # Residents' buttons: each action checks the presser owns the booking or place.
        Action(buttons.CancelBooking, mine.cancel_action),
        Action(buttons.CancelBookingYes, mine.cancel_yes_action),
        Action(buttons.Reschedule, mine.reschedule_action),
        Action(buttons.LeaveWait, mine.leave_wait_action),
        Action(buttons.AcceptOffer, mine.accept_action),
        Action(buttons.DeclineOffer, mine.decline_action),
        Action(buttons.Rebook, mine.rebook_action),
        Action(buttons.MyBookings, mine.mine_action),
        Action(buttons.BookAgain, mine.book_again_action),
        # Lawyers' buttons: the role, then that it is their booking or slot.
        Action(buttons.MarkDone, lawyer.done_action, requires_role=Role.LAWYER),
        Action(buttons.MarkNoShow, lawyer.no_show_action, requires_role=Role.LAWYER),
        Action(buttons.Note, lawyer.note_action, requires_role=Role.LAWYER),
        Action(buttons.CancelSlot, lawyer.cancel_slot_action, requires_role=Role.LAWYER),
        Action(buttons.CancelSlotYes, lawyer.cancel_slot_yes_action, requires_role=Role.LAWYER),
    ),
    intents=(
        Intent(
            "legal",
            (
                "法律咨询",
                "法律",
                "律师",
                "咨询律师",
                "预约律师",
                "找律师",
                "工资拖欠",
                "拖欠工资",
                "欠薪",
                "不发工资",
                "工伤",
                "劳动合同",
                "劳动仲裁",
                "社保",
                "物业费",
                "纠纷",
                "离婚",
                "继承",
                "遗嘱",
                "赡养",
                "维权",
                "骑手",
                "摔伤",
                "受伤",
                "工资",
                "辞退",
                "赔偿",
                "遗产",
                "彩礼",
                "抚养费",
                "劳动关系",
                "押金",
                "房东",
                "车祸",
                "交通事故",
                "家暴",
                "春芽小站",
                "法律明白人",
                "legal advice",
                "legal",
                "lawyer",
                "unpaid wages",
                "injury at work",
                "contract",
                "dispute",
                "divorce",
                "inheritance",
                "landlord",
                "deposit",
            ),
        ),
    ),
    jobs=jobs.JOBS,
    mydata=(_mydata,),
    erasers=(_erase,),
)
