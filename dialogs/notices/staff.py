"""/notices: staff see recent and scheduled notices with their progress, and cancel one.

Cancel is a stateless button (cancel, then "yes, cancel"): every press checks on the
server that the notice is in the presser's communities. Cancelling stops further
sendings, stops writing recipients, and cancels the outbox rows not yet sent; the
author gets the report of what went out before.
"""

from __future__ import annotations

from dialogs.buttons import menu_data
from dialogs.core import Context
from dialogs.feature import NotAllowed
from dialogs.messages import Choice
from dialogs.notices import buttons, delivery
from dialogs.notices.compose import describe_audience, describe_when
from dialogs.notices.scope import may_target, staff_scope
from storage import notices, outbox
from storage.notices import NoticeData, NoticeStatus, RunStatus

SHOWN = 8


async def _status_line(ctx: Context, notice: NoticeData) -> str:
    runs = await notices.runs_of(ctx.session, notice.id)
    if notice.status is NoticeStatus.CANCELLED and not runs:
        return ctx.t("notices.status_cancelled")
    if not runs:
        return ctx.t("notices.status_scheduled", when=describe_when(ctx, notice.draft, now=False))
    run = runs[0]
    p = await delivery.progress(ctx.session, run)
    state = {
        RunStatus.EXPANDING: "notices.status_preparing",
        RunStatus.SENDING: "notices.status_sending",
        RunStatus.DONE: "notices.status_done",
        RunStatus.CANCELLED: "notices.status_cancelled",
    }[run.status]
    line = ctx.t(
        "notices.progress",
        state=ctx.t(state),
        sent=p.sent,
        total=p.total,
        blocked=p.blocked,
        failed=p.failed,
        deferred=p.deferred,
        muted=p.muted,
    )
    if notice.draft.weekly and notice.status is NoticeStatus.ACTIVE:
        line += "\n" + ctx.t("notices.status_repeats", when=describe_when(ctx, notice.draft, now=False))
    return line


async def notice_card(ctx: Context, notice: NoticeData) -> tuple[str, list[list[Choice]]]:
    preview = notice.text if len(notice.text) <= 60 else notice.text[:60] + "…"
    text = "\n".join(
        [
            ctx.t("notices.card_head", id=notice.id, preview=preview),
            await describe_audience(ctx, notice.draft),
            await _status_line(ctx, notice),
        ]
    )
    rows = [[Choice(ctx.t("notices.btn_refresh"), buttons.NoticeProgress(notice=notice.id).pack())]]
    if notice.status is NoticeStatus.ACTIVE:
        rows[0].append(Choice(ctx.t("notices.btn_cancel"), buttons.CancelNotice(notice=notice.id).pack()))
    return text, rows


async def notices_command(ctx: Context) -> None:
    scope = await staff_scope(ctx)
    shown = await notices.recent(ctx.session, communities=scope, limit=SHOWN)
    if not shown:
        ctx.say(ctx.t("notices.list_none"), choices=[[ctx_new_button(ctx)]])
    else:
        ctx.say(ctx.t("notices.list_head", count=len(shown)))
        for notice in shown:
            text, rows = await notice_card(ctx, notice)
            ctx.say(text, choices=rows)
        ctx.say(ctx.t("notices.list_foot"), choices=[[ctx_new_button(ctx)]])
    await ctx.nav.reask(ctx)


def ctx_new_button(ctx: Context) -> Choice:
    return Choice(ctx.t("notices.btn_new"), menu_data("notice"))


async def _mine(ctx: Context, notice_id: int, action: str) -> NoticeData | None:
    notice = await notices.get(ctx.session, notice_id)
    if notice is None:
        ctx.say(ctx.t("common.old_button"))
        return None
    if (
        not may_target(await staff_scope(ctx), notice.draft.community_id)
        and notice.author_user_id != ctx.user.id
    ):
        raise NotAllowed(
            action, target=str(notice_id), detail="not the staff's community", key="notices.not_your_notice"
        )
    return notice


async def progress_action(ctx: Context, data: buttons.NoticeProgress) -> None:
    notice = await _mine(ctx, data.notice, "a:notice_progress")
    if notice is None:
        return
    text, rows = await notice_card(ctx, notice)
    ctx.say(text, choices=rows, edit_ref=ctx.incoming.message_ref)


async def cancel_action(ctx: Context, data: buttons.CancelNotice) -> None:
    notice = await _mine(ctx, data.notice, "a:notice_cancel")
    if notice is None:
        return
    if notice.status is not NoticeStatus.ACTIVE:
        ctx.say(ctx.t("notices.already_over"), choices=[[ctx_new_button(ctx)]])
        return
    ctx.say(
        ctx.t("notices.cancel_confirm", id=notice.id),
        choices=[
            [Choice(ctx.t("notices.btn_cancel_yes"), buttons.CancelNoticeYes(notice=notice.id).pack())],
            [Choice(ctx.t("notices.btn_keep"), buttons.KeepNotice(notice=notice.id).pack())],
        ],
    )


async def cancel_yes_action(ctx: Context, data: buttons.CancelNoticeYes) -> None:
    notice = await _mine(ctx, data.notice, "a:notice_cancel_yes")
    if notice is None:
        return
    runs = await notices.cancel(ctx.session, notice.id)
    if runs is None:
        ctx.say(ctx.t("notices.already_over"), choices=[[ctx_new_button(ctx)]])
        return
    await outbox.cancel_runs(ctx.session, runs)
    for run_id in runs:
        run = await notices.get_run(ctx.session, run_id)
        if run is not None:
            p = await delivery.progress(ctx.session, run)
            await delivery.tell_author(
                ctx.session, notice, run, p, stage="cancel", final=True, cancelled=True
            )
    ctx.say(
        ctx.t("notices.cancelled", id=notice.id),
        edit_ref=ctx.incoming.message_ref,
        choices=[[Choice(ctx.t("notices.btn_refresh"), buttons.NoticeProgress(notice=notice.id).pack())]],
    )


async def keep_action(ctx: Context, data: buttons.KeepNotice) -> None:
    ctx.say(
        ctx.t("notices.kept"),
        edit_ref=ctx.incoming.message_ref,
        choices=[[Choice(ctx.t("notices.btn_refresh"), buttons.NoticeProgress(notice=data.notice).pack())]],
    )
