"""/notice: staff compose a notice — text, photo, English text, audience, topic, urgency,
when — see a preview with the number of recipients, and confirm.

Which communities may be chosen is decided on the server at every step that touches
them (scope.py): the community buttons offer only the staff member's own, a forged
value is refused, and the confirmation checks again before anything is written.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from dialogs import answers, timeparse
from dialogs.core import Context, Done, Flow, Next, Result, Retry, Step
from dialogs.feature import NotAllowed
from dialogs.messages import Kind
from dialogs.notices import delivery
from dialogs.notices.scope import may_target, staff_scope
from storage import communities, notices
from storage.data import Role
from storage.notices import Audience, NoticeDraft, Topic

FLOW_NAME = "notice"
MAX_AHEAD = timedelta(days=90)
_PER_ROW = 3


def _rows(ctx: Context, items: list[tuple[str, str]], per_row: int = _PER_ROW) -> list[list[Any]]:
    buttons = [ctx.raw_button(label, value) for label, value in items]
    return [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]


def refuse(ctx: Context, community_id: int | None) -> NotAllowed:
    return NotAllowed(
        "notice_target",
        target=str(community_id if community_id is not None else "all"),
        detail="community outside the staff member's responsibility",
        key="notices.not_your_community",
        end_flow=True,
    )


# -- begin ------------------------------------------------------------------------------


async def begin(ctx: Context) -> bool:
    scope = await staff_scope(ctx)
    if scope is not None and not scope:
        ctx.say(ctx.t("notices.no_scope"))
        ctx.show_menu = True
        return False
    return True


# -- text, photo, English --------------------------------------------------------------

text_step = answers.text_step(
    "text",
    "notices.ask_text",
    read=answers.text(max_len=notices.MAX_TEXT, min_len=2),
    error="notices.bad_text",
    save="text",
    then="photo",
    fields=lambda ctx: {"max": notices.MAX_TEXT},
)


async def ask_photo(ctx: Context) -> None:
    ctx.say(ctx.t("notices.ask_photo"), choices=[[ctx.button("notices.btn_no_photo", "skip")]])


async def on_photo(ctx: Context) -> Result:
    if ctx.value == "skip":
        ctx.data["photo"] = None
        return Next("english")
    if ctx.incoming.kind is Kind.PHOTO and ctx.incoming.photo_ref:
        if len(ctx.data.get("text", "")) > notices.MAX_CAPTION_TEXT:
            return Retry("notices.photo_text_too_long", {"max": notices.MAX_CAPTION_TEXT})
        ctx.data["photo"] = ctx.incoming.photo_ref[:200]
        return Next("english")
    return Retry("notices.bad_photo")


async def ask_english(ctx: Context) -> None:
    ctx.say(ctx.t("notices.ask_english"), choices=[[ctx.button("notices.btn_no_english", "skip")]])


async def on_english(ctx: Context) -> Result:
    if ctx.value == "skip":
        ctx.data["text_en"] = None
        return Next("community")
    limit = notices.MAX_CAPTION_TEXT if ctx.data.get("photo") else notices.MAX_TEXT
    value = (
        answers.text(max_len=limit, min_len=2)(ctx.incoming.text) if ctx.incoming.kind is Kind.TEXT else None
    )
    if value is None or ctx.value is not None:
        return Retry("notices.bad_text_en", {"max": limit})
    ctx.data["text_en"] = value
    return Next("community")


# -- audience -----------------------------------------------------------------------------


async def ask_community(ctx: Context) -> None:
    scope = await staff_scope(ctx)
    everything = await communities.list_communities(ctx.session)
    items = [(c.name, f"c{c.id}") for c in everything if may_target(scope, c.id)]
    if scope is None:
        items.insert(0, (ctx.t("notices.all_communities"), "all"))
    ctx.say(ctx.t("notices.ask_community"), choices=_rows(ctx, items, 2))


async def on_community(ctx: Context) -> Result:
    if ctx.value is None:
        return Retry("common.use_buttons")
    community_id = None if ctx.value == "all" else ctx.value_id("c")
    if ctx.value != "all" and community_id is None:
        return Retry("common.use_buttons")
    if not may_target(await staff_scope(ctx), community_id):
        raise refuse(ctx, community_id)
    if community_id is not None and await communities.get_community(ctx.session, community_id) is None:
        return Retry("common.use_buttons")
    ctx.data["community"] = community_id
    ctx.data["building"] = None
    return Next("building") if community_id is not None else Next("audience")


async def ask_building(ctx: Context) -> None:
    found = await communities.list_buildings(ctx.session, int(ctx.data["community"]))
    items = [(ctx.t("notices.whole_community"), "all")] + [(b.name, f"b{b.id}") for b in found]
    ctx.say(ctx.t("notices.ask_building"), choices=_rows(ctx, items, 4))


async def on_building(ctx: Context) -> Result:
    if ctx.value == "all":
        ctx.data["building"] = None
        return Next("audience")
    building_id = ctx.value_id("b")
    building = await communities.get_building(ctx.session, building_id) if building_id is not None else None
    if building is None or building.community_id != ctx.data.get("community"):
        return Retry("common.use_buttons")
    ctx.data["building"] = building.id
    return Next("audience")


async def ask_audience(ctx: Context) -> None:
    items = [(ctx.t(f"notices.audience_{a.value}"), a.value) for a in Audience]
    ctx.say(ctx.t("notices.ask_audience"), choices=_rows(ctx, items, 2))


async def on_audience(ctx: Context) -> Result:
    if ctx.value not in {a.value for a in Audience}:
        return Retry("common.use_buttons")
    ctx.data["audience"] = ctx.value
    return Next("topic")


async def ask_topic(ctx: Context) -> None:
    items = [(ctx.t(f"notices.topic_{t.value}"), t.value) for t in Topic]
    ctx.say(ctx.t("notices.ask_topic"), choices=_rows(ctx, items, 2))


async def on_topic(ctx: Context) -> Result:
    if ctx.value not in {t.value for t in Topic}:
        return Retry("common.use_buttons")
    ctx.data["topic"] = ctx.value
    return Next("urgent")


async def ask_urgent(ctx: Context) -> None:
    ctx.say(
        ctx.t("notices.ask_urgent"),
        choices=[[ctx.button("notices.btn_normal", "no"), ctx.button("notices.btn_urgent", "yes")]],
    )


async def on_urgent(ctx: Context) -> Result:
    if ctx.value not in ("yes", "no"):
        return Retry("common.use_buttons")
    ctx.data["urgent"] = ctx.value == "yes"
    return Next("when")


# -- when ---------------------------------------------------------------------------------


async def ask_when(ctx: Context) -> None:
    ctx.say(
        ctx.t("notices.ask_when"),
        choices=[
            [ctx.button("notices.btn_now", "now")],
            [ctx.button("notices.btn_later", "later")],
            [ctx.button("notices.btn_weekly", "weekly")],
        ],
    )


async def on_when(ctx: Context) -> Result:
    if ctx.value == "now":
        ctx.data["weekly"] = False
        ctx.data["send_at"] = None
        return Next("preview")
    if ctx.value in ("later", "weekly"):
        ctx.data["weekly"] = ctx.value == "weekly"
        return Next("time")
    return Retry("common.use_buttons")


async def ask_time(ctx: Context) -> None:
    key = "notices.ask_time_weekly" if ctx.data.get("weekly") else "notices.ask_time"
    ctx.say(ctx.t(key))


async def on_time(ctx: Context) -> Result:
    if ctx.incoming.kind is not Kind.TEXT or ctx.value is not None:
        return Retry("notices.bad_time")
    parsed = timeparse.parse_when(ctx.incoming.text, now=ctx.now(), max_ahead=MAX_AHEAD)
    if parsed is timeparse.TimeError.IN_PAST:
        return Retry("notices.time_past")
    if parsed is timeparse.TimeError.TOO_FAR:
        return Retry("notices.time_far")
    if not isinstance(parsed, timeparse.ParsedTime):
        return Retry("notices.bad_time")
    ctx.data["send_at"] = parsed.when.isoformat()
    return Next("preview")


# -- preview and confirm --------------------------------------------------------------------


def draft_of(ctx: Context) -> NoticeDraft:
    raw = ctx.data.get("send_at")
    return NoticeDraft(
        text=ctx.data["text"],
        text_en=ctx.data.get("text_en"),
        photo_ref=ctx.data.get("photo"),
        community_id=ctx.data.get("community"),
        building_id=ctx.data.get("building"),
        audience=Audience(ctx.data["audience"]),
        topic=Topic(ctx.data["topic"]),
        urgent=bool(ctx.data.get("urgent")),
        send_at=datetime.fromisoformat(raw) if raw else ctx.now(),
        weekly=bool(ctx.data.get("weekly")),
    )


async def describe_audience(ctx: Context, draft: NoticeDraft) -> str:
    where = await delivery.community_name(ctx.session, draft.community_id, ctx.tr)
    if draft.building_id is not None:
        building = await communities.get_building(ctx.session, draft.building_id)
        if building is not None:
            where = f"{where} {building.name}"
    return ctx.t("notices.audience_line", where=where, who=ctx.t(f"notices.audience_{draft.audience.value}"))


def describe_when(ctx: Context, draft: NoticeDraft, *, now: bool) -> str:
    if now:
        return ctx.t("notices.when_now")
    moment = timeparse.describe(draft.send_at, now=ctx.now(), lang=ctx.lang)
    return ctx.t("notices.when_weekly" if draft.weekly else "notices.when_at", when=moment)


async def ask_preview(ctx: Context) -> None:
    draft = draft_of(ctx)
    count = await notices.count_audience(ctx.session, draft)
    ctx.say(
        ctx.t(
            "notices.preview",
            text=draft.text,
            english=draft.text_en or ctx.t("notices.none"),
            photo=ctx.t("notices.yes" if draft.photo_ref else "notices.none"),
            audience=await describe_audience(ctx, draft),
            topic=ctx.t(f"notices.topic_{draft.topic.value}"),
            urgent=ctx.t("notices.btn_urgent" if draft.urgent else "notices.btn_normal"),
            when=describe_when(ctx, draft, now=ctx.data.get("send_at") is None),
            count=count,
        ),
        choices=[[ctx.button("notices.btn_confirm", "yes")]],
    )


async def on_preview(ctx: Context) -> Result:
    if ctx.value != "yes":
        return Retry("common.use_buttons")
    draft = draft_of(ctx)
    # Checked again: responsibility may have been taken away since the question.
    if not may_target(await staff_scope(ctx), draft.community_id):
        raise refuse(ctx, draft.community_id)
    notice = await notices.create(ctx.session, author_user_id=ctx.user.id, draft=draft)
    ctx.jobs.append(delivery.send_now_spec(notice))
    key = "notices.confirmed_now" if ctx.data.get("send_at") is None else "notices.confirmed_later"
    ctx.say(ctx.t(key, id=notice.id, when=describe_when(ctx, draft, now=False)))
    ctx.show_menu = True
    return Done()


FLOW = Flow(
    FLOW_NAME,
    (
        text_step,
        Step("photo", ask_photo, on_photo, goes_to=("english",)),
        Step("english", ask_english, on_english, goes_to=("community",)),
        Step("community", ask_community, on_community, goes_to=("building", "audience")),
        Step("building", ask_building, on_building, goes_to=("audience",)),
        Step("audience", ask_audience, on_audience, goes_to=("topic",)),
        Step("topic", ask_topic, on_topic, goes_to=("urgent",)),
        Step("urgent", ask_urgent, on_urgent, goes_to=("when",)),
        Step("when", ask_when, on_when, goes_to=("preview", "time")),
        Step("time", ask_time, on_time, goes_to=("preview",)),
        Step("preview", ask_preview, on_preview),
    ),
    command="notice",
    menu_key="notices.menu",
    menu_rank=70,
    requires_role=Role.STAFF,
    begin=begin,
)
