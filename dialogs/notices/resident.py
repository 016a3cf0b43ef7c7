"""The resident's side: /settings (mute topics, quiet hours), /noticeboard, /mydata, /forget.

Urgent notices cannot be muted and ignore quiet hours. Quiet hours never drop a
notice: it is held in the outbox until they end (delivery.py).
"""

from __future__ import annotations

import re
from dataclasses import replace

from dialogs.core import Context, Done, Flow, Next, Result, Retry, Step
from dialogs.messages import Choice, Kind
from dialogs.notices import buttons, delivery
from storage import notices, outbox
from storage.notices import Audience, NoticeData, Prefs, Topic

SETTINGS_FLOW = "notice_settings"
BOARD_SHOWN = 10
_RANGE = re.compile(r"^\s*(\d{1,2})(?:[:：](\d{2}))?\s*(?:-|–|—|~|到|至|to)\s*(\d{1,2})(?:[:：](\d{2}))?\s*$")


def _hhmm(hours: str, minutes: str | None) -> str | None:
    h, m = int(hours), int(minutes or 0)
    if h == 24 and m == 0:
        h = 0
    return f"{h:02d}:{m:02d}" if 0 <= h < 24 and 0 <= m < 60 else None


def parse_quiet(text: str) -> tuple[str, str] | None:
    """ "22:00-07:00", "22-7", "22点到7点" → ("22:00", "07:00")."""
    cleaned = text.replace("点", ":00").replace("時", ":00").replace(":00:", ":").strip()[:40]
    match = _RANGE.match(cleaned.replace(":00:00", ":00"))
    if match is None:
        return None
    start, end = _hhmm(match[1], match[2]), _hhmm(match[3], match[4])
    if start is None or end is None or start == end:
        return None
    return start, end


def quiet_text(ctx: Context, p: Prefs) -> str:
    if not p.quiet_on:
        return ctx.t("notices.quiet_off")
    return ctx.t("notices.quiet_on", start=p.quiet_start, end=p.quiet_end)


# -- /settings --------------------------------------------------------------------------


async def ask_menu(ctx: Context) -> None:
    p = await notices.prefs(ctx.session, ctx.user.id)
    lines = [ctx.t("notices.settings_head")]
    rows = []
    for topic in Topic:
        name = ctx.t(f"notices.topic_{topic.value}")
        muted = topic in p.muted
        lines.append(
            ctx.t("notices.settings_topic_muted" if muted else "notices.settings_topic_on", topic=name)
        )
        label = "notices.btn_unmute" if muted else "notices.btn_mute"
        rows.append([ctx.button(label, f"t_{topic.value}", topic=name)])
    lines.append(quiet_text(ctx, p))
    lines.append(ctx.t("notices.settings_urgent_note"))
    rows.append(
        [
            ctx.button("notices.btn_quiet_off" if p.quiet_on else "notices.btn_quiet_on", "quiet_toggle"),
            ctx.button("notices.btn_quiet_edit", "quiet_edit"),
        ]
    )
    rows.append([ctx.button("notices.btn_settings_done", "done")])
    ctx.say("\n".join(lines), choices=rows)


async def on_menu(ctx: Context) -> Result:
    p = await notices.prefs(ctx.session, ctx.user.id)
    value = ctx.value or ""
    if value == "done":
        ctx.say(ctx.t("notices.settings_saved"))
        ctx.show_menu = True
        return Done()
    if value == "quiet_edit":
        return Next("quiet")
    if value == "quiet_toggle":
        await notices.save_prefs(ctx.session, ctx.user.id, replace(p, quiet_on=not p.quiet_on))
        return Retry()
    if value.startswith("t_") and value[2:] in {t.value for t in Topic}:
        topic = Topic(value[2:])
        await notices.save_prefs(ctx.session, ctx.user.id, replace(p, muted=p.muted ^ {topic}))
        return Retry()
    return Retry("common.use_buttons")


async def ask_quiet(ctx: Context) -> None:
    ctx.say(ctx.t("notices.ask_quiet"))


async def on_quiet(ctx: Context) -> Result:
    found = parse_quiet(ctx.incoming.text) if ctx.incoming.kind is Kind.TEXT and ctx.value is None else None
    if found is None:
        return Retry("notices.bad_quiet")
    p = await notices.prefs(ctx.session, ctx.user.id)
    await notices.save_prefs(
        ctx.session, ctx.user.id, replace(p, quiet_on=True, quiet_start=found[0], quiet_end=found[1])
    )
    return Next("menu")


SETTINGS = Flow(
    SETTINGS_FLOW,
    (
        Step("menu", ask_menu, on_menu, goes_to=("quiet",)),
        Step("quiet", ask_quiet, on_quiet, goes_to=("menu",)),
    ),
    command="settings",
    menu_key="notices.settings_menu",
    menu_rank=90,
)


async def open_settings_action(ctx: Context, data: buttons.OpenSettings) -> None:
    await ctx.nav.start(ctx, SETTINGS_FLOW)


# -- /noticeboard ---------------------------------------------------------------------------


def meant_for(ctx: Context, notice: NoticeData) -> bool:
    draft = notice.draft
    if draft.building_id is not None and draft.building_id != ctx.user.building_id:
        return False
    if draft.audience is Audience.EVERYONE:
        return True
    if draft.audience is Audience.RESIDENTS:
        return not any(r.value in notices.SERVICE_ROLES for r in ctx.user.roles)
    return any(r.value == draft.audience.value for r in ctx.user.roles)


async def board_command(ctx: Context) -> None:
    found = [
        n for n in await notices.board(ctx.session, community_id=ctx.user.community_id) if meant_for(ctx, n)
    ]
    found = found[:BOARD_SHOWN]
    settings = [[Choice(ctx.t("notices.btn_settings"), buttons.OpenSettings().pack())]]
    if not found:
        ctx.say(ctx.t("notices.board_none"), choices=settings)
    else:
        ctx.say(ctx.t("notices.board_head", count=len(found)))
        for notice in reversed(found):
            name = await delivery.community_name(ctx.session, notice.draft.community_id, ctx.tr)
            out = delivery.message(notice, name, ctx.tr)
            when = notice.created_at.astimezone(notices.LOCAL)
            out.text = f"{out.text}\n\n{ctx.t('notices.board_date', date=f'{when:%Y-%m-%d %H:%M}')}"
            out.choices = []
            ctx.replies.append(out)
        ctx.say(ctx.t("notices.board_foot"), choices=settings)
    await ctx.nav.reask(ctx)


async def open_board_action(ctx: Context, data: buttons.OpenBoard) -> None:
    await board_command(ctx)


# -- /mydata and /forget ----------------------------------------------------------------------


async def mydata(ctx: Context) -> list[str]:
    p = await notices.prefs(ctx.session, ctx.user.id)
    muted = ", ".join(ctx.t(f"notices.topic_{t.value}") for t in Topic if t in p.muted) or ctx.t(
        "notices.none"
    )
    return [ctx.t("notices.mydata", muted=muted, quiet=quiet_text(ctx, p))]


async def erase(ctx: Context, user_id: int) -> None:
    await notices.erase_user(ctx.session, user_id)
    await outbox.erase_notice_rows(ctx.session, user_id)
