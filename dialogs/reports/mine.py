"""The reporter's side: /myreports, confirming a fix, reopening, rating."""

from __future__ import annotations

from dialogs.core import Context
from dialogs.feature import NotAllowed
from dialogs.messages import Choice
from dialogs.reports import buttons, cards, staff
from storage import audit, reports
from storage.reports import ReportData, ReportStatus


async def myreports_command(ctx: Context) -> None:
    await staff.myreports_view(ctx)


async def _own(ctx: Context, report_id: int, action: str) -> ReportData:
    """Only the reporter decides whether it is fixed; button data can be forged."""
    report = await staff.load(ctx, report_id)
    if report.reporter_user_id != ctx.user.id:
        raise NotAllowed(
            f"a:{action}", target=str(report_id), detail="not the reporter", key="reports.not_yours"
        )
    return report


async def confirm_action(ctx: Context, data: buttons.Confirm) -> None:
    report = await _own(ctx, data.report, "report_confirm")
    if not await reports.close(ctx.session, report.id, actor=ctx.user.id, now=ctx.now(), auto=False):
        staff.not_now(ctx, report)
        return
    report = await staff.load(ctx, report.id)
    await staff.announce(ctx, report, "reports.news_closed", dedupe=f"closed:{report.reopened}")
    await cards.tell_assignee(
        ctx.session, report, "reports.assignee_confirmed", dedupe=f"confirmed:{report.reopened}"
    )
    ctx.say(
        ctx.t("reports.ask_rating", number=report.number),
        choices=[cards.stars(report, ctx.tr)],
        edit_ref=ctx.incoming.message_ref,
    )


async def reopen_action(ctx: Context, data: buttons.Reopen) -> None:
    report = await _own(ctx, data.report, "report_reopen")
    resolve_within = staff.categories.get(report.category).resolve_within
    if not await reports.reopen(
        ctx.session,
        report.id,
        reporter=ctx.user.id,
        reason=ctx.t("reports.not_fixed"),
        now=ctx.now(),
        within=staff.REOPEN_WITHIN,
        resolve_within=resolve_within,
    ):
        ctx.say(ctx.t("reports.reopen_too_late", number=report.number), toast=ctx.pressed)
        return
    await audit.record(
        ctx.session, actor_user_id=ctx.user.id, action="report_reopen", target=f"report:{report.id}"
    )
    report = await staff.load(ctx, report.id)
    await staff.announce(ctx, report, "reports.news_reopened", dedupe=f"reopened:{report.reopened}")
    await cards.tell_assignee(
        ctx.session, report, "reports.assignee_reopened", dedupe=f"reopened:{report.reopened}"
    )
    ctx.say(
        ctx.t("reports.reopened", number=report.number, due=cards.when(report.resolve_due, ctx.tr)),
        choices=[[Choice(ctx.t("reports.btn_view"), buttons.View(report=report.id).pack())]],
        edit_ref=ctx.incoming.message_ref,
    )


async def rate_action(ctx: Context, data: buttons.Rate) -> None:
    report = await _own(ctx, data.report, "report_rate")
    if report.status is not ReportStatus.CLOSED or report.rating is not None:
        ctx.say(ctx.t("reports.rate_not_now", number=report.number), toast=ctx.pressed)
        return
    if not await reports.rate(ctx.session, report.id, reporter=ctx.user.id, stars=data.stars):
        ctx.say(ctx.t("reports.rate_not_now", number=report.number), toast=ctx.pressed)
        return
    await cards.tell_assignee(
        ctx.session, report, "reports.assignee_rated", dedupe="rated", stars="⭐" * data.stars
    )
    ctx.say(
        ctx.t("reports.rated", stars="⭐" * data.stars),
        choices=[[Choice(ctx.t("reports.btn_mine"), buttons.Filter(what="mine").pack())]],
        edit_ref=ctx.incoming.message_ref,
    )
