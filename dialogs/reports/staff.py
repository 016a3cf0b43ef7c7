"""Staff work on reports: binding staff groups, taking and assigning, status changes
with a note or photo, rejecting and marking duplicates (always with a reason), the
lists (/reports, /overdue) and the figures (/stats).

Every action here is declared ``requires_role=STAFF`` (checked by the entry on each
press); the ids in the button data are re-read and checked against the report's state,
and the state changes are conditional UPDATEs, so two staff pressing at once get one
effect and a clear answer each.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from statistics import mean
from typing import Any

from dialogs import notify, places
from dialogs.core import Context, Done, Flow, Result, Retry, Step
from dialogs.feature import NotAllowed
from dialogs.messages import ChatKind, Choice, Kind, Outgoing
from dialogs.reports import buttons, cards, categories
from dialogs.validate import clean_text
from scheduler.jobs import JobSpec
from storage import audit, communities, outbox, reports, users
from storage.data import Role
from storage.reports import ReportData, ReportStatus

CITY_WIDE = ("全市", "兜底", "all", "city")
REOPEN_WITHIN = timedelta(days=7)
LIST_LIMIT = 15


def in_group(ctx: Context) -> bool:
    return ctx.incoming.chat_kind is ChatKind.GROUP


async def load(ctx: Context, report_id: int) -> ReportData:
    report = await reports.get(ctx.session, report_id)
    if report is None:
        raise NotAllowed("report", target=str(report_id), detail="no such report", key="reports.missing")
    return report


def not_now(ctx: Context, report: ReportData) -> None:
    ctx.say(
        ctx.t("reports.not_now", number=report.number, status=cards.status_label(report.status, ctx.tr)),
        toast=ctx.pressed,
    )


async def announce(ctx: Context, report: ReportData, key: str, *, dedupe: str, **fields: Any) -> None:
    """A change: the reporter and followers hear it, and the group card is renewed."""
    await cards.tell_people(
        ctx.session,
        report,
        key,
        dedupe=dedupe,
        skip=ctx.user.id,
        now=ctx.now(),
        reopen_within=REOPEN_WITHIN,
        **fields,
    )
    await cards.tell_group(ctx.session, report, dedupe=f"card:{dedupe}", head=ctx.tr("reports.group_update"))


# -- group binding ------------------------------------------------------------------------


async def bind_group_command(ctx: Context) -> None:
    incoming = ctx.incoming
    names = places.split_names(incoming.text)
    if not names:
        ctx.say(ctx.t("reports.bind_usage"))
        return
    city_wide = any(n.lower() in CITY_WIDE for n in names)
    named = [n for n in names if n.lower() not in CITY_WIDE]
    found, unknown = await places.communities_named(ctx.session, named)
    if unknown or (found and city_wide):
        ctx.say(ctx.t("reports.bind_unknown", names="、".join(unknown) or "—"))
        return
    group = await reports.bind_group(
        ctx.session,
        channel=incoming.channel,
        chat_id=incoming.chat_id,
        title=f"{incoming.channel}:{incoming.chat_id}",
        community_ids=sorted(found),
        bound_by=ctx.user.id,
    )
    await audit.record(
        ctx.session,
        actor_user_id=ctx.user.id,
        action="bind_report_group",
        target=f"report_group:{group.id}",
        detail=",".join(str(c) for c in sorted(found)) or "city-wide",
    )
    if found:
        ctx.say(ctx.t("reports.bound_some", communities="、".join(found[c] for c in sorted(found))))
    else:
        ctx.say(ctx.t("reports.bound_city"))


async def unbind_group_command(ctx: Context) -> None:
    incoming = ctx.incoming
    done = await reports.unbind_group(ctx.session, channel=incoming.channel, chat_id=incoming.chat_id)
    if done:
        await audit.record(
            ctx.session,
            actor_user_id=ctx.user.id,
            action="unbind_report_group",
            target=f"{incoming.channel}:{incoming.chat_id}",
        )
    ctx.say(ctx.t("reports.unbound" if done else "reports.not_bound"))


# -- when something happens to a staff group ----------------------------------------------


async def group_event(ctx: Context) -> None:
    """A staff group moved to a new chat id, or Linli was removed from it (or may no longer
    post there): reports must not go on being sent to a chat nobody reads."""
    incoming = ctx.incoming
    group = await reports.group_by_chat(ctx.session, channel=incoming.channel, chat_id=incoming.chat_id)
    if group is None:
        return
    if incoming.kind is Kind.CHAT_MOVED and incoming.moved_to:
        await reports.move_group(ctx.session, group_id=group.id, chat_id=incoming.moved_to)
        await outbox.move_chat(
            ctx.session, channel=incoming.channel, old_chat_id=incoming.chat_id, new_chat_id=incoming.moved_to
        )
        action, dedupe = "report_group_moved", f"group-moved:{incoming.update_id}"
    elif incoming.kind is Kind.BOT_REMOVED:
        await reports.unbind_group(ctx.session, channel=incoming.channel, chat_id=incoming.chat_id)
        staff = await users.users_with_role(ctx.session, Role.STAFF)
        await notify.to_users(
            ctx.session,
            staff,
            lambda tr: Outgoing(tr("reports.group_lost_staff", who=cards.person_name(ctx.user))),
            kind="report",
            dedupe=f"report-group:{group.id}:lost:{incoming.update_id}",
        )
        action, dedupe = "report_group_lost", f"group-lost:{incoming.update_id}"
    else:
        return
    await audit.record(
        ctx.session,
        actor_user_id=ctx.user.id,
        action=action,
        target=f"report_group:{group.id}",
        detail=incoming.moved_to or incoming.text,
    )
    # The open reports' cards (and their buttons) were in the old chat: post them again,
    # in the new chat or, for a lost group, wherever the community's reports go now.
    for report in await reports.open_in_group(ctx.session, group.id):
        await cards.tell_group(ctx.session, report, dedupe=dedupe)


async def area_command(ctx: Context) -> None:
    """/report_area 春和社区 30.47,114.40 30.47,114.42 30.49,114.42: a community's boundary."""
    parts = ctx.incoming.text.split()
    points: list[tuple[float, float]] = []
    for raw in parts[1:]:
        try:
            lat_s, lon_s = raw.replace("，", ",").split(",")
            lat, lon = float(lat_s), float(lon_s)
        except ValueError:
            points = []
            break
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            points = []
            break
        points.append((lat, lon))
    found = await communities.search_communities(ctx.session, parts[0], limit=1) if parts else []
    if not found or len(points) < 3:
        ctx.say(ctx.t("reports.area_usage"), choices=[[_list_button(ctx, "open")]])
        return
    await reports.set_area(ctx.session, found[0].id, points)
    await audit.record(
        ctx.session, actor_user_id=ctx.user.id, action="report_area", target=f"community:{found[0].id}"
    )
    ctx.say(
        ctx.t("reports.area_set", community=found[0].name, points=len(points)),
        choices=[[_list_button(ctx, "open")]],
    )


# -- the staff panel ------------------------------------------------------------------------


async def panel(ctx: Context, report: ReportData) -> Outgoing:
    body = await cards.card(ctx.session, report, ctx.tr, for_group=False)
    who = await cards.reporter_line(ctx.session, report, ctx.tr, staff=True)
    history = await timeline(ctx, report)
    return Outgoing(f"{body}\n{who}\n{history}", choices=cards.staff_buttons(report, ctx.tr, in_group=False))


async def timeline(ctx: Context, report: ReportData) -> str:
    lines = [ctx.t("reports.history")]
    for item in (await reports.events(ctx.session, report.id))[-12:]:
        actor = await users.get_user(ctx.session, item.actor_user_id) if item.actor_user_id else None
        name = cards.person_name(actor) if actor and actor.has(Role.STAFF) else ""
        note = (
            f"：{item.note}"
            if item.note and item.event in ("resolved", "rejected", "duplicate", "reopened")
            else ""
        )
        lines.append(
            ctx.t(
                "reports.history_line",
                when=cards.when(item.at, ctx.tr),
                what=ctx.t(f"reports.event_{item.event}"),
                who=name,
                note=note,
            )
        )
    return "\n".join(lines)


async def _private_panel(ctx: Context, report: ReportData) -> None:
    """Pressed in the group: the full panel goes to the presser privately."""
    message = await panel(ctx, report)
    await ctx.notify(ctx.user, lambda _tr: message, kind="report")
    ctx.toast("reports.panel_sent")


# -- take and assign ---------------------------------------------------------------------------


async def take_action(ctx: Context, data: buttons.Take) -> None:
    report = await load(ctx, data.report)
    points = categories.get(report.category).points
    if not await reports.accept(
        ctx.session, report.id, assignee=ctx.user.id, actor=ctx.user.id, now=ctx.now(), points=points
    ):
        not_now(ctx, report)
        return
    await audit.record(
        ctx.session, actor_user_id=ctx.user.id, action="report_take", target=f"report:{report.id}"
    )
    report = await load(ctx, report.id)
    await accepted(ctx, report)
    if in_group(ctx):
        ctx.toast("reports.taken_toast", number=report.number)
    else:
        ctx.say(ctx.t("reports.taken_toast", number=report.number))
        ctx.replies.append(await panel(ctx, report))


async def accepted(ctx: Context, report: ReportData) -> None:
    assignee = await users.get_user(ctx.session, report.assignee_user_id or 0)
    await announce(
        ctx,
        report,
        "reports.news_accepted",
        dedupe=f"accepted:{report.assignee_user_id}",
        name=cards.person_name(assignee),
    )
    await cards.tell_assignee(
        ctx.session, report, "reports.yours", dedupe=f"assignee:{report.assignee_user_id}"
    )


async def assign_action(ctx: Context, data: buttons.Assign) -> None:
    report = await load(ctx, data.report)
    if not report.is_open:
        not_now(ctx, report)
        return
    staff = [u for u in await users.users_with_role(ctx.session, Role.STAFF) if not u.blocked]
    rows = [
        [Choice(cards.person_name(u), buttons.AssignTo(report=report.id, user=u.id).pack())]
        for u in staff[:30]
    ]
    message = Outgoing(ctx.t("reports.assign_pick", number=report.number), choices=rows)
    if in_group(ctx):
        await ctx.notify(ctx.user, lambda _tr: message, kind="report")
        ctx.toast("reports.panel_sent")
    else:
        ctx.replies.append(message)


async def assign_to_action(ctx: Context, data: buttons.AssignTo) -> None:
    chosen = await users.get_user(ctx.session, data.user)
    if chosen is None or not chosen.has(Role.STAFF) or chosen.forgotten:
        raise NotAllowed(
            "a:report_assign_to",
            target=f"{data.report}:{data.user}",
            detail="not staff",
            key="reports.assign_not_staff",
        )
    report = await load(ctx, data.report)
    if not await reports.assign(ctx.session, report.id, assignee=chosen.id, actor=ctx.user.id, now=ctx.now()):
        not_now(ctx, report)
        return
    await audit.record(
        ctx.session,
        actor_user_id=ctx.user.id,
        action="report_assign",
        target=f"report:{report.id}",
        detail=str(chosen.id),
    )
    report = await load(ctx, report.id)
    await accepted(ctx, report)
    ctx.say(
        ctx.t("reports.assigned", number=report.number, name=cards.person_name(chosen)),
        edit_ref=ctx.incoming.message_ref,
    )


async def view_action(ctx: Context, data: buttons.View) -> None:
    """The report's page: staff get the panel; the reporter and followers their view."""
    report = await load(ctx, data.report)
    if ctx.user.has(Role.STAFF):
        if in_group(ctx):
            await _private_panel(ctx, report)
        else:
            ctx.replies.append(await panel(ctx, report))
        return
    followers = await reports.followers(ctx.session, report.id)
    if ctx.user.id != report.reporter_user_id and ctx.user.id not in followers:
        raise NotAllowed("a:report_view", target=str(data.report), detail="not reporter, follower or staff")
    body = await cards.card(ctx.session, report, ctx.tr, for_group=False)
    rows = (
        cards.reporter_buttons(report, ctx.tr, ctx.now(), REOPEN_WITHIN)
        if ctx.user.id == report.reporter_user_id
        else []
    )
    ctx.say(f"{body}\n{await timeline(ctx, report)}", choices=[*rows, [_mine_button(ctx)]])


def _mine_button(ctx: Context) -> Choice:
    return Choice(ctx.t("reports.btn_mine"), buttons.Filter(what="mine").pack())


# -- status -------------------------------------------------------------------------------------


async def start_action(ctx: Context, data: buttons.Start) -> None:
    report = await load(ctx, data.report)
    if not await reports.start(ctx.session, report.id, actor=ctx.user.id):
        not_now(ctx, report)
        return
    report = await load(ctx, report.id)
    await announce(ctx, report, "reports.news_in_progress", dedupe="in_progress")
    ctx.replies.append(await panel(ctx, report))


async def resolve_action(ctx: Context, data: buttons.Resolve) -> None:
    report = await load(ctx, data.report)
    if report.status not in reports.WORKING:
        not_now(ctx, report)
        return
    if in_group(ctx):
        await _private_panel(ctx, report)
        return
    await ctx.nav.start(ctx, RESOLVE, {"report": report.id})


async def reject_action(ctx: Context, data: buttons.Reject) -> None:
    await _reason(ctx, data.report, "rejected")


async def duplicate_action(ctx: Context, data: buttons.Duplicate) -> None:
    await _reason(ctx, data.report, "duplicate")


async def _reason(ctx: Context, report_id: int, to: str) -> None:
    report = await load(ctx, report_id)
    if not report.is_open:
        not_now(ctx, report)
        return
    if in_group(ctx):
        await _private_panel(ctx, report)
        return
    await ctx.nav.start(ctx, REASON, {"report": report.id, "to": to})


async def who_action(ctx: Context, data: buttons.Who) -> None:
    """Who reported, for the staff member who pressed, and only them (a toast in a group)."""
    report = await load(ctx, data.report)
    await audit.record(
        ctx.session, actor_user_id=ctx.user.id, action="report_who", target=f"report:{report.id}"
    )
    line = await cards.reporter_line(ctx.session, report, ctx.tr, staff=True)
    ctx.say(line, toast=in_group(ctx))


# -- resolve: a note or a photo of the fix ----------------------------------------------------------


def _staff_step(ctx: Context) -> None:
    if not ctx.user.has(Role.STAFF):
        raise NotAllowed("report:staff_step", detail="needs role staff", end_flow=True)


async def ask_proof(ctx: Context) -> None:
    report = await reports.get(ctx.session, int(ctx.data["report"]))
    number = report.number if report else ""
    ctx.say(ctx.t("reports.ask_proof", number=number))


async def on_proof(ctx: Context) -> Result:
    _staff_step(ctx)
    report = await load(ctx, int(ctx.data["report"]))
    incoming = ctx.incoming
    photo_ref = incoming.photo_ref if incoming.kind is Kind.PHOTO else None
    raw = incoming.text if incoming.kind in (Kind.TEXT, Kind.PHOTO) and not ctx.value else ""
    note = clean_text(raw, max_len=500) or "" if raw else ""
    if raw and not note:
        return Retry("reports.too_long", {"max": 500})
    if not note and photo_ref is None:
        return Retry("reports.proof_needed")
    if report.status not in reports.WORKING:
        not_now(ctx, report)
        return Done()
    photo_id = None
    if photo_ref is not None:
        photo_id = await reports.add_photo(
            ctx.session, report.id, channel=incoming.channel, ref=photo_ref, kind="fix", uploader=ctx.user.id
        )
        ctx.jobs.append(JobSpec(f"report-photo:{photo_id}", ctx.now(), "report-photo", str(photo_id)))
    if (
        await reports.resolve(
            ctx.session, report.id, actor=ctx.user.id, note=note, photo_id=photo_id, now=ctx.now()
        )
        is None
    ):
        not_now(ctx, report)
        return Done()
    await audit.record(
        ctx.session, actor_user_id=ctx.user.id, action="report_resolve", target=f"report:{report.id}"
    )
    report = await load(ctx, report.id)
    fix = note or ctx.t("reports.fix_photo_only")
    await announce(ctx, report, "reports.news_resolved", dedupe="resolved:" + str(report.reopened), note=fix)
    ctx.say(ctx.t("reports.resolved_done", number=report.number))
    ctx.show_menu = True
    return Done()


RESOLVE = Flow(
    name="report_resolve",
    needs_context=True,
    requires_role=Role.STAFF,
    steps=(Step("proof", ask_proof, on_proof, can_go_back=False),),
)


# -- reject or duplicate: always with a reason ------------------------------------------------------

QUICK_REASONS = ("not_ours", "no_info", "already_fixed", "private")


async def ask_reason(ctx: Context) -> None:
    report = await reports.get(ctx.session, int(ctx.data["report"]))
    number = report.number if report else ""
    if ctx.data.get("to") == "duplicate":
        rows = []
        if report is not None and report.latitude is not None and report.longitude is not None:
            near = await reports.nearby_open(
                ctx.session,
                category=report.category,
                latitude=report.latitude,
                longitude=report.longitude,
                metres=max(categories.get(report.category).radius_m, 200),
                since=ctx.now() - timedelta(days=30),
                limit=5,
            )
            rows = [
                [
                    ctx.raw_button(
                        ctx.t("reports.dup_of_button", number=n.report.number, metres=n.metres),
                        f"r{n.report.id}",
                    )
                ]
                for n in near
                if n.report.id != report.id
            ]
        ctx.say(ctx.t("reports.ask_original", number=number), choices=rows)
        return
    rows = [[ctx.button(f"reports.reason_{r}", r)] for r in QUICK_REASONS]
    ctx.say(ctx.t("reports.ask_reason", number=number), choices=rows)


async def on_reason(ctx: Context) -> Result:
    _staff_step(ctx)
    report = await load(ctx, int(ctx.data["report"]))
    to = ReportStatus.DUPLICATE if ctx.data.get("to") == "duplicate" else ReportStatus.REJECTED
    original: ReportData | None = None
    if to is ReportStatus.DUPLICATE:
        original_id = ctx.value_id("r") if ctx.value else None
        if original_id is None and ctx.incoming.kind is Kind.TEXT:
            original_id = reports.parse_number(ctx.incoming.text)
        original = await reports.get(ctx.session, original_id) if original_id else None
        if original is None or original.id == report.id:
            return Retry("reports.bad_original")
        reason = ctx.t("reports.dup_reason", number=original.number)
    elif ctx.value in QUICK_REASONS:
        reason = ctx.t(f"reports.reason_{ctx.value}")
    elif ctx.incoming.kind is Kind.TEXT and not ctx.value:
        typed = clean_text(ctx.incoming.text, max_len=200)
        if typed is None or len(typed) < 2:
            return Retry("reports.bad_reason")
        reason = typed
    else:
        return Retry("common.use_buttons")
    done = await reports.refuse(
        ctx.session,
        report.id,
        to=to,
        actor=ctx.user.id,
        reason=reason,
        now=ctx.now(),
        duplicate_of=original.id if original else None,
    )
    if not done:
        not_now(ctx, report)
        return Done()
    await audit.record(
        ctx.session, actor_user_id=ctx.user.id, action=f"report_{to.value}", target=f"report:{report.id}"
    )
    if original is not None:
        # The reporter and followers now follow the original: they hear when it is fixed.
        for person in await cards.audience(ctx.session, report):
            await reports.follow(ctx.session, original.id, person.id)
    report = await load(ctx, report.id)
    await announce(ctx, report, f"reports.news_{to.value}", dedupe=to.value, reason=reason)
    ctx.say(
        ctx.t("reports.refused_done", number=report.number, status=cards.status_label(report.status, ctx.tr))
    )
    ctx.show_menu = True
    return Done()


REASON = Flow(
    name="report_reason",
    needs_context=True,
    requires_role=Role.STAFF,
    steps=(Step("reason", ask_reason, on_reason, can_go_back=False),),
)


# -- lists ------------------------------------------------------------------------------------------

FILTERS = ("open", "overdue", "mine", "submitted", "in_progress", "resolved", "closed")


def _list_button(ctx: Context, what: str) -> Choice:
    return Choice(ctx.t(f"reports.filter_{what}"), buttons.Filter(what=what).pack())


async def reports_command(ctx: Context) -> None:
    words = ctx.incoming.text.strip().lower().split()
    await show_list(ctx, words[0] if words else "open")


async def overdue_command(ctx: Context) -> None:
    await show_list(ctx, "overdue")


async def filter_action(ctx: Context, data: buttons.Filter) -> None:
    if data.what == "mine" and not ctx.user.has(Role.STAFF):
        await myreports_view(ctx)
        return
    if not ctx.user.has(Role.STAFF):
        raise NotAllowed("a:report_filter", target=data.what, detail="needs role staff")
    await show_list(ctx, data.what)


async def show_list(ctx: Context, what: str) -> None:
    category = what if what in categories.BY_KEY else None
    statuses: tuple[ReportStatus, ...] = reports.OPEN
    assignee = overdue = None
    if what in ("resolved", "closed", "submitted", "in_progress"):
        statuses = (ReportStatus(what),)
    elif what == "mine":
        assignee = ctx.user.id
    elif what == "overdue":
        overdue = ctx.now()
    elif what != "open" and category is None:
        what = "open"
    found = await reports.search(
        ctx.session,
        statuses=statuses,
        category=category,
        assignee=assignee,
        overdue_at=overdue,
        limit=LIST_LIMIT,
    )
    title = cards.category_label(category, ctx.tr) if category else ctx.t(f"reports.filter_{what}")
    lines = [ctx.t("reports.list_head", what=title, count=len(found))]
    rows: list[list[Choice]] = []
    now = ctx.now()
    for report in found:
        late = ctx.t("reports.late_mark") if report.overdue(now) else ""
        lines.append(
            ctx.t(
                "reports.list_line",
                number=report.number,
                category=cards.category_label(report.category, ctx.tr),
                status=cards.status_label(report.status, ctx.tr),
                late=late,
                description=(report.description or "—")[:40],
            )
        )
        rows.append(
            [
                Choice(
                    f"{report.number} {cards.category_label(report.category, ctx.tr)}",
                    buttons.View(report=report.id).pack(),
                )
            ]
        )
    if not found:
        lines.append(ctx.t("reports.list_empty"))
    rows.append([_list_button(ctx, f) for f in ("open", "overdue", "mine")])
    rows.append([_list_button(ctx, f) for f in ("submitted", "in_progress", "resolved")])
    ctx.say("\n".join(lines), choices=rows)


async def myreports_view(ctx: Context) -> None:
    mine = await reports.for_reporter(ctx.session, ctx.user.id)
    followed = [
        r for r in await reports.followed_by(ctx.session, ctx.user.id) if r.id not in {m.id for m in mine}
    ]
    lines = [ctx.t("reports.mine_head", count=len(mine))]
    rows: list[list[Choice]] = []
    for report in mine + followed:
        lines.append(
            ctx.t(
                "reports.mine_line",
                number=report.number,
                category=cards.category_label(report.category, ctx.tr),
                status=cards.status_label(report.status, ctx.tr),
                when=cards.when(report.created_at, ctx.tr),
                following=ctx.t("reports.following_mark") if report in followed else "",
            )
        )
        rows.append(
            [
                Choice(
                    f"{report.number} · {cards.status_label(report.status, ctx.tr)}",
                    buttons.View(report=report.id).pack(),
                )
            ]
        )
    if not mine and not followed:
        lines.append(ctx.t("reports.mine_empty"))
    rows.append([Choice(ctx.t("menu.report"), "m:report")])
    ctx.say("\n".join(lines), choices=rows[-16:])


# -- figures ----------------------------------------------------------------------------------------

STATS_WINDOW = timedelta(days=90)


def _minutes(a: datetime | None, b: datetime) -> float | None:
    return None if a is None else (a - b).total_seconds() / 60


def _figures(ctx: Context, items: list[ReportData], now: datetime) -> str:
    accept = [m for r in items if (m := _minutes(r.accepted_at, r.created_at)) is not None]
    resolve = [m for r in items if (m := _minutes(r.resolved_at, r.created_at)) is not None]
    judged = [r for r in items if r.resolved_at is not None or (r.is_open and now > r.resolve_due)]
    on_time = [
        r
        for r in judged
        if r.resolved_at is not None
        and r.resolved_at <= r.resolve_due
        and r.accepted_at is not None
        and r.accepted_at <= r.accept_due
    ]
    ratings = [r.rating for r in items if r.rating is not None]
    return ctx.t(
        "reports.stats_line",
        count=len(items),
        accept=f"{mean(accept) / 60:.1f}" if accept else "—",
        resolve=f"{mean(resolve) / 60:.1f}" if resolve else "—",
        on_time=f"{100 * len(on_time) / len(judged):.0f}%" if judged else "—",
        rating=f"{mean(ratings):.1f}" if ratings else "—",
        ratings=len(ratings),
    )


def month_start(now: datetime) -> datetime:
    here = now.astimezone(cards.LOCAL)
    return here.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


async def stats_command(ctx: Context) -> None:
    now = ctx.now()
    items = [
        r
        for r in await reports.since(ctx.session, now - STATS_WINDOW)
        if r.status is not ReportStatus.DUPLICATE
    ]
    lines = [
        ctx.t("reports.stats_head", days=STATS_WINDOW.days),
        ctx.t("reports.stats_all") + _figures(ctx, items, now),
    ]
    by_community: dict[int | None, list[ReportData]] = {}
    by_category: dict[str, list[ReportData]] = {}
    for report in items:
        by_community.setdefault(report.community_id, []).append(report)
        by_category.setdefault(report.category, []).append(report)
    if by_community:
        lines.append(ctx.t("reports.stats_by_community"))
    for community_id, group in sorted(by_community.items(), key=lambda kv: -len(kv[1])):
        community = await communities.get_community(ctx.session, community_id) if community_id else None
        name = community.name if community else ctx.t("reports.city_wide")
        lines.append(f"• {name}：" + _figures(ctx, group, now))
    if by_category:
        lines.append(ctx.t("reports.stats_by_category"))
    for key, group in sorted(by_category.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"• {cards.category_label(key, ctx.tr)}：" + _figures(ctx, group, now))
    top = await reports.top_reporters(ctx.session, start=month_start(now))
    lines.append(ctx.t("reports.top_head"))
    for rank, (user_id, points, count) in enumerate(top, 1):
        person = await users.get_user(ctx.session, user_id)
        lines.append(
            ctx.t("reports.top_line", rank=rank, name=cards.person_name(person), points=points, count=count)
        )
    if not top:
        lines.append(ctx.t("reports.top_none"))
    ctx.say("\n".join(lines), choices=[[_list_button(ctx, "open"), _list_button(ctx, "overdue")]])
