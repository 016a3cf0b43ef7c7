"""How a report reads: the card, the number, the status, the buttons under it, and who
hears what (reporter and followers in their language, the staff group, the assignee)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from dialogs import notify
from dialogs.i18n import DEFAULT_LANGUAGE, Tr
from dialogs.messages import Choice, Outgoing
from dialogs.reports import buttons, categories
from storage import communities, geo, reports, users
from storage.data import Role, UserData
from storage.reports import GroupData, ReportData, ReportStatus

LOCAL = ZoneInfo("Asia/Shanghai")


def group_tr() -> Tr:
    """Staff groups are read by many people at once: the default language."""
    return Tr(DEFAULT_LANGUAGE)


def when(moment: datetime, tr: Tr) -> str:
    here = moment.astimezone(LOCAL)
    return tr("reports.moment", month=here.month, day=here.day, time=f"{here:%H:%M}")


def category_label(key: str, tr: Tr) -> str:
    return f"{categories.get(key).emoji} {tr(f'reports.cat_{categories.get(key).key}')}"


def status_label(status: ReportStatus, tr: Tr) -> str:
    return tr(f"reports.status_{status.value}")


def person_name(user: UserData | None) -> str:
    if user is None or user.forgotten:
        return "—"
    return user.display_name or user.username or f"#{user.id}"


def map_link(report: ReportData) -> str:
    if report.latitude is None or report.longitude is None:
        return ""
    lat, lon = geo.wgs84_to_gcj02(report.latitude, report.longitude)
    return f"https://uri.amap.com/marker?position={lon:.6f},{lat:.6f}&name={quote(report.number)}"


async def place_text(session: AsyncSession, report: ReportData, tr: Tr) -> str:
    community = await communities.get_community(session, report.community_id) if report.community_id else None
    parts = [p for p in (report.address, community.name if community else "") if p]
    if report.latitude is not None and report.longitude is not None:
        parts.append(f"{report.latitude:.5f}, {report.longitude:.5f}")
    return " · ".join(dict.fromkeys(parts)) or tr("reports.no_place")


async def card(session: AsyncSession, report: ReportData, tr: Tr, *, for_group: bool) -> str:
    """The report as staff and reporter read it. In a group the reporter is named only
    when they did not hide themselves; their phone never is."""
    lines = [
        tr(
            "reports.card",
            number=report.number,
            category=category_label(report.category, tr),
            status=status_label(report.status, tr),
            place=await place_text(session, report, tr),
            description=report.description or "—",
            created=when(report.created_at, tr),
        )
    ]
    link = map_link(report)
    if link:
        lines.append(link)
    if report.status is ReportStatus.SUBMITTED:
        lines.append(tr("reports.accept_by", due=when(report.accept_due, tr)))
    elif report.is_open:
        lines.append(tr("reports.resolve_by", due=when(report.resolve_due, tr)))
    if report.assignee_user_id is not None:
        assignee = await users.get_user(session, report.assignee_user_id)
        lines.append(tr("reports.assignee", name=person_name(assignee)))
    if report.reason:
        lines.append(tr("reports.reason_line", reason=report.reason))
    if for_group:
        lines.append(await reporter_line(session, report, tr, staff=False))
    return "\n".join(lines)


async def reporter_line(session: AsyncSession, report: ReportData, tr: Tr, *, staff: bool) -> str:
    """Who reported: for staff in full (name, phone); for a group only the name, and
    nothing at all when the reporter hid themselves."""
    if report.filed_by_user_id is not None and report.reporter_user_id is None:
        if staff:
            return tr(
                "reports.reporter_caller", name=report.caller_name or "—", phone=report.caller_phone or "—"
            )
        return tr("reports.reporter_phoned")
    if report.reporter_user_id is None:
        return tr("reports.reporter_anonymous")
    if report.reporter_hidden and not staff:
        return tr("reports.reporter_hidden")
    person = await users.get_user(session, report.reporter_user_id)
    if staff:
        return tr(
            "reports.reporter_full", name=person_name(person), phone=(person.phone if person else None) or "—"
        )
    return tr("reports.reporter_named", name=person_name(person))


def staff_buttons(report: ReportData, tr: Tr, *, in_group: bool) -> list[list[Choice]]:
    """What staff can do with the report now. In the group: take, assign, open the full
    panel privately, see who reported; in private the status changes too."""
    r = report.id
    rows: list[list[Choice]] = []
    if report.status is ReportStatus.SUBMITTED:
        rows.append([Choice(tr("reports.btn_take"), buttons.Take(report=r).pack())])
    if report.is_open:
        rows.append([Choice(tr("reports.btn_assign"), buttons.Assign(report=r).pack())])
    if not in_group and report.status is ReportStatus.ACCEPTED:
        rows.append([Choice(tr("reports.btn_start"), buttons.Start(report=r).pack())])
    if not in_group and report.status in reports.WORKING:
        rows.append([Choice(tr("reports.btn_resolve"), buttons.Resolve(report=r).pack())])
    if not in_group and report.is_open:
        rows.append(
            [
                Choice(tr("reports.btn_reject"), buttons.Reject(report=r).pack()),
                Choice(tr("reports.btn_duplicate"), buttons.Duplicate(report=r).pack()),
            ]
        )
    if in_group:
        rows.append(
            [
                Choice(tr("reports.btn_manage"), buttons.View(report=r).pack()),
                Choice(tr("reports.btn_who"), buttons.Who(report=r).pack()),
            ]
        )
    return rows


def reporter_buttons(report: ReportData, tr: Tr, now: datetime, reopen_within: object) -> list[list[Choice]]:
    from datetime import timedelta

    assert isinstance(reopen_within, timedelta)
    r = report.id
    rows: list[list[Choice]] = []
    if report.status is ReportStatus.RESOLVED:
        rows.append([Choice(tr("reports.btn_confirm"), buttons.Confirm(report=r).pack())])
    if report.status in reports.FINISHED and report.resolved_at and now - report.resolved_at <= reopen_within:
        rows.append([Choice(tr("reports.btn_reopen"), buttons.Reopen(report=r).pack())])
    if report.status is ReportStatus.CLOSED and report.rating is None:
        rows.append(stars(report, tr))
    return rows


def stars(report: ReportData, tr: Tr) -> list[Choice]:
    return [
        Choice(tr("reports.star", n=n), buttons.Rate(report=report.id, stars=n).pack()) for n in range(1, 6)
    ]


# -- who hears what ------------------------------------------------------------------------


async def audience(session: AsyncSession, report: ReportData, *, skip: int | None = None) -> list[UserData]:
    """The reporter and the followers (once each), except whoever caused the news."""
    ids = [report.reporter_user_id, *await reports.followers(session, report.id)]
    found: list[UserData] = []
    for user_id in dict.fromkeys(i for i in ids if i is not None and i != skip):
        person = await users.get_user(session, user_id)
        if person is not None:
            found.append(person)
    return found


async def tell_people(
    session: AsyncSession,
    report: ReportData,
    key: str,
    *,
    dedupe: str,
    skip: int | None = None,
    now: datetime,
    reopen_within: object,
    **fields: object,
) -> int:
    """News of a change to reporter and followers, each in their language; the reporter
    also gets the buttons that fit (confirm, reopen, rate)."""
    reporter = report.reporter_user_id

    def build_for(person: UserData) -> Callable[[Tr], Outgoing]:
        def build(tr: Tr) -> Outgoing:
            text = tr(key, number=report.number, category=category_label(report.category, tr), **fields)
            rows = reporter_buttons(report, tr, now, reopen_within) if person.id == reporter else []
            rows.append([Choice(tr("reports.btn_view"), buttons.View(report=report.id).pack())])
            return Outgoing(text, choices=rows)

        return build

    sent = 0
    for person in await audience(session, report, skip=skip):
        sent += await notify.to_user(
            session,
            person,
            build_for(person),
            kind="report",
            dedupe_key=f"report:{report.id}:{dedupe}:{person.id}",
        )
    return sent


async def group_of(session: AsyncSession, report: ReportData) -> GroupData | None:
    group = await reports.get_group(session, report.group_id) if report.group_id is not None else None
    return group or await reports.group_for(session, report.community_id)


async def tell_group(
    session: AsyncSession,
    report: ReportData,
    *,
    dedupe: str,
    head: str | None = None,
    edit_ref: str | None = None,
) -> bool:
    """The report card in its staff group (or, with no group at all, to every staff member)."""
    tr = group_tr()
    group = await group_of(session, report)
    text = await card(session, report, tr, for_group=True)
    if head:
        text = f"{head}\n{text}"
    if group is None:
        staff = await users.users_with_role(session, Role.STAFF)

        async def private(person: UserData) -> bool:
            ptr = Tr(person.language)
            body = await card(session, report, ptr, for_group=False)
            heading = ptr("reports.staff_no_group")
            message = Outgoing(f"{heading}\n{body}", choices=staff_buttons(report, ptr, in_group=False))
            return await notify.to_user(
                session,
                person,
                lambda _tr: message,
                kind="report",
                dedupe_key=f"report:{report.id}:{dedupe}:{person.id}",
            )

        return any([await private(p) for p in staff])
    return await notify.to_group(
        session,
        channel=group.channel,
        chat_id=group.chat_id,
        message=Outgoing(text, choices=staff_buttons(report, tr, in_group=True), edit_ref=edit_ref),
        kind="report",
        dedupe_key=f"report:{report.id}:{dedupe}",
    )


async def tell_assignee(
    session: AsyncSession, report: ReportData, key: str, *, dedupe: str, **fields: object
) -> bool:
    if report.assignee_user_id is None:
        return False
    person = await users.get_user(session, report.assignee_user_id)
    if person is None:
        return False
    tr = Tr(person.language)
    body = await card(session, report, tr, for_group=False)
    who = await reporter_line(session, report, tr, staff=True)
    message = Outgoing(
        f"{tr(key, number=report.number, **fields)}\n{body}\n{who}",
        choices=staff_buttons(report, tr, in_group=False),
    )
    return await notify.to_user(
        session,
        person,
        lambda _tr: message,
        kind="report",
        dedupe_key=f"report:{report.id}:{dedupe}:{person.id}",
    )
