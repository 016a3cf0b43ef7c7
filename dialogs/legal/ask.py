"""/legal: self-help first, then a lawyer.

Someone types a question (or arrives from free text such as "老板拖欠工资怎么办"):
urgent words get emergency numbers before anything else; then the best FAQ entries
with a confidence, the best in full; below the threshold, a lawyer is offered first.
Booking: topic (the answer's topic is offered first), a short description (the
question typed is offered), the opposing party (for the conflict check), a day, a
slot; a full slot offers its waitlist. ``legal_move`` reuses the day and slot steps to
move a booking.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from dialogs.core import Context, Done, Flow, Next, Result, Retry, Step
from dialogs.intents import normalise
from dialogs.legal import cards, kb, matching, service
from dialogs.legal.triage import triage
from dialogs.messages import Choice, Kind
from dialogs.validate import clean_text
from storage import legal
from storage.legal import BookResult, Request, SlotData

NAME = "legal"
MOVE = "legal_move"
MAX_QUESTION = 300
# What people type to reach the service, not a question (answered with the start screen).
GENERIC = frozenset(
    normalise(p)
    for p in (
        "法律咨询", "法律", "律师", "咨询律师", "找律师", "预约律师", "我要预约律师", "法律援助", "维权",
        "春芽小站", "法律明白人", "legal", "legal advice", "lawyer", "book a lawyer", "legal help",
    )
)  # fmt: skip


async def knowledge(ctx: Context) -> matching.Index:
    entries = kb.merge(kb.shipped(), await kb.imported(ctx.session))
    return matching.index_for(entries)


def _entry(index: matching.Index, entry_id: str | None) -> kb.Entry | None:
    return next((e for e in index.entries if e.id == entry_id), None)


# -- self-help ------------------------------------------------------------------------


async def begin(ctx: Context) -> bool:
    """Free text that led here is the first question."""
    if ctx.incoming.kind is Kind.TEXT and normalise(ctx.incoming.text) not in GENERIC:
        await _question(ctx, ctx.incoming.text)
    return True


async def _question(ctx: Context, raw: str) -> bool:
    text = clean_text(raw, max_len=MAX_QUESTION)
    if text is None:
        return False
    urgent = triage(text)
    if urgent is not None:  # before anything else
        ctx.say(cards.urgent_text(urgent, ctx.tr))
    hits = (await knowledge(ctx)).search(text)
    ctx.data["q"] = text
    ctx.data["hits"] = [[h.entry.id, h.score] for h in hits]
    ctx.data["view"] = "hits"
    if hits:
        ctx.data["topic"] = hits[0].entry.topic
    return True


async def ask_faq(ctx: Context) -> None:
    index = await knowledge(ctx)
    view = ctx.data.get("view", "start")
    rows: list[list[Choice]] = []
    if view == "hits":
        hits = [(e, s) for i, s in ctx.data.get("hits", []) if (e := _entry(index, i)) is not None]
        if hits and hits[0][1] >= matching.THRESHOLD:
            best, score = hits[0]
            text = cards.answer_text(best, ctx.tr, score=score)
            others = hits[1:]
            rows.append([ctx.button("legal.btn_book", "book")])
        else:
            text = ctx.t("legal.not_sure")
            others = hits
            rows.append([ctx.button("legal.btn_book_first", "book")])
        if others:
            text += "\n\n" + ctx.t("legal.related")
        for entry, score in others:
            rows.append(
                [
                    ctx.raw_button(
                        ctx.t("legal.hit", title=entry.title(ctx.lang), score=round(score)), f"e{entry.id}"
                    )
                ]
            )
        ctx.say(text, choices=[*rows, *_tail(ctx)])
        return
    if view.startswith("e:"):
        shown = _entry(index, view[2:])
        if shown is not None:
            rows.append([ctx.button("legal.btn_book", "book")])
            ctx.say(cards.answer_text(shown, ctx.tr), choices=[*rows, *_tail(ctx)])
            return
    if view.startswith("t:"):
        topic = view[2:]
        for entry in (e for e in index.entries if e.topic == topic):
            rows.append([ctx.raw_button(entry.title(ctx.lang), f"e{entry.id}")])
        rows.append([ctx.button("legal.btn_book", "book")])
        ctx.say(
            ctx.t("legal.topic_list", topic=cards.topic_name(topic, ctx.tr)), choices=[*rows, *_tail(ctx)]
        )
        return
    topics = [ctx.raw_button(cards.topic_name(t, ctx.tr), f"t{t}") for t in kb.TOPICS]
    rows = [topics[i : i + 3] for i in range(0, len(topics), 3)]
    rows.append([ctx.button("legal.btn_book", "book")])
    rows.append([ctx.button("legal.btn_mine", "mine")])
    ctx.say(ctx.t("legal.start"), choices=rows)


def _tail(ctx: Context) -> list[list[Choice]]:
    return [[ctx.button("legal.btn_again", "again"), ctx.button("legal.btn_solved", "solved")]]


async def on_faq(ctx: Context) -> Result:
    value = ctx.value
    if value is None:
        if ctx.incoming.kind is Kind.TEXT and await _question(ctx, ctx.incoming.text):
            return Retry()
        return Retry("legal.ask_again")
    if value == "book":
        return Next("topic")
    if value == "again":
        ctx.data["view"] = "start"
        return Retry()
    if value == "solved":
        ctx.say(ctx.t("legal.glad"))
        ctx.show_menu = True
        return Done()
    if value == "mine":
        from dialogs.legal.mine import mybookings_command

        await mybookings_command(ctx, reask=False)
        return Retry()
    if value.startswith("e") and _entry(await knowledge(ctx), value[1:]) is not None:
        ctx.data["view"] = f"e:{value[1:]}"
        ctx.data["topic"] = (_entry(await knowledge(ctx), value[1:]) or kb.shipped()[0]).topic
        return Retry()
    if value.startswith("t") and value[1:] in kb.TOPICS:
        ctx.data["view"] = f"t:{value[1:]}"
        ctx.data["topic"] = value[1:]
        return Retry()
    return Retry("common.use_buttons")


# -- booking: what about, against whom ------------------------------------------------


async def ask_topic(ctx: Context) -> None:
    guess = ctx.data.get("topic")
    order = [guess, *(t for t in kb.TOPICS if t != guess)] if guess in kb.TOPICS else list(kb.TOPICS)
    labels = [("⭐ " if t == guess else "") + cards.topic_name(t, ctx.tr) for t in order]
    buttons = [ctx.raw_button(label, t) for label, t in zip(labels, order, strict=True)]
    ctx.say(ctx.t("legal.ask_topic"), choices=[buttons[i : i + 3] for i in range(0, len(buttons), 3)])


async def on_topic(ctx: Context) -> Result:
    if ctx.value in kb.TOPICS:
        ctx.data["topic"] = ctx.value
        return Next("describe")
    return Retry("common.use_buttons")


async def ask_describe(ctx: Context) -> None:
    rows = []
    if ctx.data.get("q"):
        rows.append([ctx.button("legal.use_question", "q")])
    ctx.say(ctx.t("legal.ask_describe"), choices=rows)


async def on_describe(ctx: Context) -> Result:
    if ctx.value == "q" and ctx.data.get("q"):
        ctx.data["desc"] = ctx.data["q"]
        return Next("party")
    if ctx.value is not None or ctx.incoming.kind is not Kind.TEXT:
        return Retry("legal.describe_type")
    text = clean_text(ctx.incoming.text, max_len=500)
    if text is None or len(text) < 4:
        return Retry("legal.describe_bad")
    ctx.data["desc"] = text
    return Next("party")


async def ask_party(ctx: Context) -> None:
    ctx.say(ctx.t("legal.ask_party"), choices=[[ctx.button("legal.party_none", "none")]])


async def on_party(ctx: Context) -> Result:
    if ctx.value == "none":
        ctx.data["party"] = ""
        return Next("day")
    if ctx.value is not None or ctx.incoming.kind is not Kind.TEXT:
        return Retry("legal.party_type")
    text = clean_text(ctx.incoming.text, max_len=100)
    if text is None:
        return Retry("legal.party_bad")
    ctx.data["party"] = text
    return Next("day")


# -- booking: when --------------------------------------------------------------------


async def _slots(ctx: Context) -> list[SlotData]:
    return await service.bookable(
        ctx.session,
        now=ctx.now(),
        resident_id=ctx.user.id,
        client_name=ctx.user.display_name,
        opposing_party=ctx.data.get("party", ""),
    )


async def ask_day(ctx: Context) -> None:
    days: dict[date, list[SlotData]] = {}
    for slot in await _slots(ctx):
        days.setdefault(cards.local(slot.starts_at).date(), []).append(slot)
    if not days:
        ctx.say(ctx.t("legal.no_slots"), choices=[[ctx.button("legal.btn_back_faq", "faq")]])
        return
    rows = []
    for day, slots in sorted(days.items())[:10]:
        free = sum(s.free for s in slots)
        label = (
            ctx.t("legal.day_free", day=cards.day_text(day, ctx.tr), free=free)
            if free
            else ctx.t("legal.day_full", day=cards.day_text(day, ctx.tr))
        )
        rows.append([ctx.raw_button(label, f"d{day:%Y%m%d}")])
    ctx.say(ctx.t("legal.ask_day"), choices=rows)


async def on_day(ctx: Context) -> Result:
    if ctx.value == "faq" and ctx.flow == NAME:
        ctx.data["view"] = "start"
        return Next("faq")
    if ctx.value and ctx.value.startswith("d") and len(ctx.value) == 9 and ctx.value[1:].isdigit():
        ctx.data["day"] = ctx.value[1:]
        return Next("slot")
    return Retry("common.use_buttons")


async def ask_slot(ctx: Context) -> None:
    day = ctx.data.get("day", "")
    slots = [s for s in await _slots(ctx) if f"{cards.local(s.starts_at):%Y%m%d}" == day]
    rows = []
    for slot in slots:
        line = cards.slot_line(slot, await service.lawyer_name(ctx.session, slot.lawyer_user_id), ctx.tr)
        if slot.free:
            rows.append([ctx.raw_button(ctx.t("legal.slot_free", slot=line, free=slot.free), f"s{slot.id}")])
        else:
            rows.append([ctx.raw_button(ctx.t("legal.slot_full", slot=line), f"s{slot.id}")])
    ctx.say(ctx.t("legal.ask_slot" if rows else "legal.day_gone"), choices=rows)


async def on_slot(ctx: Context) -> Result:
    slot_id = ctx.value_id("s")
    shown = {s.id for s in await _slots(ctx)}
    if slot_id is None or slot_id not in shown:
        return Retry("legal.slot_gone")
    ctx.data["slot"] = slot_id
    return Next("confirm")


async def ask_confirm(ctx: Context) -> None:
    slot = await legal.get_slot(ctx.session, int(ctx.data.get("slot", 0)))
    if slot is None:
        ctx.say(ctx.t("legal.slot_gone"), choices=[[ctx.button("legal.btn_other_day", "days")]])
        return
    name = await service.lawyer_name(ctx.session, slot.lawyer_user_id)
    summary = ctx.t(
        "legal.confirm",
        topic=cards.topic_name(ctx.data.get("topic", "wages"), ctx.tr),
        desc=ctx.data.get("desc", ""),
        party=ctx.data.get("party") or "—",
        slot=cards.slot_line(slot, name, ctx.tr),
    )
    if slot.free:
        rows = [[ctx.button("legal.btn_confirm", "yes")]]
    else:
        waiting = await legal.waiting_count(ctx.session, slot.id)
        summary += "\n\n" + ctx.t("legal.full_offer_wait", ahead=waiting)
        rows = [[ctx.button("legal.btn_wait", "wait")]]
    rows.append([ctx.button("legal.btn_other_day", "days")])
    ctx.say(summary, choices=rows)


async def on_confirm(ctx: Context) -> Result:
    if ctx.value == "days":
        return Next("day")
    slot_id = int(ctx.data.get("slot", 0))
    request = Request(
        resident_user_id=ctx.user.id,
        client_name=ctx.user.display_name,
        topic=ctx.data.get("topic", "wages"),
        description=ctx.data.get("desc", ""),
        opposing_party=ctx.data.get("party", ""),
    )
    if ctx.value == "wait":
        _wait, place = await legal.join_waitlist(ctx.session, slot_id=slot_id, request=request)
        ctx.say(ctx.t("legal.waiting", position=place))
        ctx.show_menu = True
        return Done()
    if ctx.value != "yes":
        return Retry("common.use_buttons")
    if ctx.flow == MOVE:
        return await _move(ctx, slot_id)
    if await legal.has_booking(ctx.session, slot_id=slot_id, resident_user_id=ctx.user.id):
        return Retry("legal.already_booked")
    outcome = await legal.book(ctx.session, slot_id=slot_id, request=request, now=ctx.now())
    if outcome.result is BookResult.FULL:
        return Retry("legal.just_full")  # asked again: the waitlist is offered
    if outcome.result is BookResult.GONE or outcome.booking is None:
        return _gone()
    await service.tell_lawyer_booked(ctx.session, outcome.booking)
    await _confirmed(ctx, outcome.booking.slot_id, "legal.booked")
    return Done()


def _gone() -> Result:
    return Next("day")


async def _confirmed(ctx: Context, slot_id: int, key: str) -> None:
    slot = await legal.get_slot(ctx.session, slot_id)
    assert slot is not None
    name = await service.lawyer_name(ctx.session, slot.lawyer_user_id)
    ctx.say(
        ctx.t(
            key,
            slot=cards.slot_line(slot, name, ctx.tr),
            hours=int(cards.CHANGE_CUTOFF.total_seconds() // 3600),
        )
    )
    ctx.show_menu = True


async def _move(ctx: Context, slot_id: int) -> Result:
    old_id = int(ctx.data.get("move", 0))
    old = await legal.get_booking(ctx.session, old_id)
    if old is None or old.resident_user_id != ctx.user.id or not cards.can_change(old, ctx.now()):
        ctx.say(ctx.t("legal.too_late"))
        return Done()
    result, new = await legal.move_booking(ctx.session, booking_id=old_id, to_slot_id=slot_id, now=ctx.now())
    if result is BookResult.FULL:
        return Retry("legal.just_full_move")
    if new is None:
        return _gone()
    await service.free_seat(ctx.session, slot_id=old.slot_id, now=ctx.now())
    await service.tell_lawyer_cancelled(ctx.session, old)
    await service.tell_lawyer_booked(ctx.session, new, moved=True)
    await _confirmed(ctx, new.slot_id, "legal.moved")
    return Done()


STEPS_WHEN: tuple[Step, ...] = (
    Step("day", ask_day, on_day),
    Step("slot", ask_slot, on_slot),
    Step("confirm", ask_confirm, on_confirm),
)

FLOW = Flow(
    name=NAME,
    command="legal",
    menu_key="legal.menu",
    menu_rank=30,
    begin=begin,
    steps=(
        Step("faq", ask_faq, on_faq, can_go_back=False),
        Step("topic", ask_topic, on_topic),
        Step("describe", ask_describe, on_describe),
        Step("party", ask_party, on_party),
        *STEPS_WHEN,
    ),
)


MOVE_FLOW = Flow(name=MOVE, steps=STEPS_WHEN, needs_context=True)


def move_data(booking_id: int, topic: str, desc: str, party: str) -> dict[str, Any]:
    return {"move": booking_id, "topic": topic, "desc": desc, "party": party}
