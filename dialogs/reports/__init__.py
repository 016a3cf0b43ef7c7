"""Neighbourhood problem reports (随手拍): a rider reports a missing manhole cover in
five taps; it is routed to the staff group of the community that covers the point,
taken, fixed before its deadline (or escalated), confirmed and rated by the reporter.

Read in this order: categories.py, flow.py (/report), cards.py (how a report reads
and who hears what), staff.py (the staff side), mine.py (the reporter's side), jobs.py.
"""

from __future__ import annotations

from dialogs.core import Context
from dialogs.feature import Action, Command, Feature, Intent
from dialogs.reports import buttons, cards, categories, flow, jobs, mine, staff
from storage import reports
from storage.data import Role


async def _report_for(ctx: Context) -> None:
    """Staff file a report for a resident who phoned in."""
    await ctx.nav.start(ctx, flow.FLOW, {"mode": "phoned"})


async def _mydata(ctx: Context) -> list[str]:
    mine_ = await reports.for_reporter(ctx.session, ctx.user.id, limit=50)
    followed = await reports.followed_by(ctx.session, ctx.user.id, limit=50)
    points = await reports.points_of(ctx.session, ctx.user.id)
    if not mine_ and not followed and not points:
        return []
    lines = [ctx.t("reports.mydata_title", count=len(mine_), followed=len(followed), points=points)]
    for report in mine_:
        lines.append(
            ctx.t(
                "reports.mydata_line",
                number=report.number,
                category=cards.category_label(report.category, ctx.tr),
                status=cards.status_label(report.status, ctx.tr),
                description=(report.description or "—")[:60],
                hidden=ctx.t("reports.mydata_hidden") if report.reporter_hidden else "",
            )
        )
    return ["\n".join(lines)]


async def _erase(ctx: Context, user_id: int) -> None:
    person = ctx.user if ctx.user.id == user_id else None
    words = [w for w in (person.display_name, person.phone, (person.phone or "")[3:]) if w] if person else []
    await reports.erase_person(ctx.session, user_id, words=words)


_PHRASES = (
    "井盖坏了",
    "井盖",
    "井盖丢了",
    "路灯坏了",
    "路灯不亮",
    "随手拍",
    "报修",
    "隐患",
    "路面坑洼",
    "路上有坑",
    "漏水",
    "积水",
    "垃圾没人收",
    "举报问题",
    "反映问题",
    "树倒了",
    "电线",
    "电梯坏了",
    "消防通道被堵",
    "噪音扰民",
    "report a problem",
    "report",
    "hazard",
    "manhole",
    "pothole",
    "broken streetlight",
    "street light",
    "something is broken",
    "leak",
    "flooding",
    "lift is broken",
)

FEATURE = Feature(
    name="reports",
    flows=(flow.FLOW, staff.RESOLVE, staff.REASON),
    commands=(
        Command("myreports", mine.myreports_command, description_key="commands.myreports"),
        Command("report_for", _report_for, requires_role=Role.STAFF, description_key="commands.report_for"),
        Command(
            "reports", staff.reports_command, requires_role=Role.STAFF, description_key="commands.reports"
        ),
        Command(
            "overdue", staff.overdue_command, requires_role=Role.STAFF, description_key="commands.overdue"
        ),
        Command("stats", staff.stats_command, requires_role=Role.STAFF, description_key="commands.stats"),
        Command(
            "report_area",
            staff.area_command,
            requires_role=Role.STAFF,
            description_key="commands.report_area",
        ),
        Command(
            "bind_report_group",
            staff.bind_group_command,
            requires_role=Role.STAFF,
            in_private=False,
            in_groups=True,
            description_key="commands.bind_report_group",
        ),
        Command(
            "unbind_report_group",
            staff.unbind_group_command,
            requires_role=Role.STAFF,
            in_private=False,
            in_groups=True,
            description_key="commands.unbind_report_group",
        ),
    ),
    chat_events=(staff.group_event,),
    actions=(
        # Viewing: the action checks staff, reporter or follower.
        Action(buttons.View, staff.view_action),
        Action(buttons.Take, staff.take_action, requires_role=Role.STAFF),
        Action(buttons.Assign, staff.assign_action, requires_role=Role.STAFF),
        Action(buttons.AssignTo, staff.assign_to_action, requires_role=Role.STAFF),
        Action(buttons.Start, staff.start_action, requires_role=Role.STAFF),
        Action(buttons.Resolve, staff.resolve_action, requires_role=Role.STAFF),
        Action(buttons.Reject, staff.reject_action, requires_role=Role.STAFF),
        Action(buttons.Duplicate, staff.duplicate_action, requires_role=Role.STAFF),
        Action(buttons.Who, staff.who_action, requires_role=Role.STAFF),
        # The reporter's verdict: the action checks the presser is the reporter.
        Action(buttons.Confirm, mine.confirm_action),
        Action(buttons.Reopen, mine.reopen_action),
        Action(buttons.Rate, mine.rate_action),
        # Lists: "mine" for anyone, the others the action checks are staff.
        Action(buttons.Filter, staff.filter_action),
    ),
    intents=(Intent(flow.NAME, _PHRASES),),
    jobs=jobs.JOBS,
    mydata=(_mydata,),
    erasers=(_erase,),
)

__all__ = ["FEATURE", "categories"]
