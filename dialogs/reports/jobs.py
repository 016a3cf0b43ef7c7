"""Jobs that keep a report's promise: photos fetched and stored, a reminder at 80 % of
each deadline, escalation when it passes, and closing 72 hours after a fix nobody
answered.

Every job is derived from rows (a restart re-creates it; one that ran is not repeated)
and its id names the deadline it belongs to, so a reopened report gets new ones.
Runners re-read the row before acting and send with dedupe keys.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from dialogs import notify
from dialogs.feature import Env, Jobs
from dialogs.i18n import Tr
from dialogs.messages import Outgoing
from dialogs.reports import cards, staff
from scheduler.jobs import JobSpec
from storage import reports, reports_media, users
from storage.data import Role, UserData
from storage.engine import Database
from storage.reports import ReportData, ReportStatus

log = logging.getLogger("linli.reports")

REMIND_AT = 0.8
AUTO_CLOSE_AFTER = timedelta(hours=72)
FETCH_TIMEOUT = 30.0


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _at(start: datetime, due: datetime) -> datetime:
    return start + (due - start) * REMIND_AT


def report_specs(report: ReportData) -> list[JobSpec]:
    r, epoch = report.id, _epoch(report.due_from)
    specs: list[JobSpec] = []
    if report.status is ReportStatus.SUBMITTED:
        stage, due = "accept", report.accept_due
        escalated = report.escalated_accept_at
    elif report.status in reports.WORKING:
        stage, due = "resolve", report.resolve_due
        escalated = report.escalated_resolve_at
    elif report.status is ReportStatus.RESOLVED and report.resolved_at is not None:
        at = report.resolved_at + AUTO_CLOSE_AFTER
        return [JobSpec(f"report-close:{r}:{_epoch(report.resolved_at)}", at, "report-close", str(r))]
    else:
        return []
    arg = f"{r}:{stage}:{epoch}"
    specs.append(JobSpec(f"report-remind:{arg}", _at(report.due_from, due), "report-remind", arg))
    if escalated is None:
        specs.append(JobSpec(f"report-escalate:{arg}", due, "report-escalate", arg))
    return specs


async def report_jobs(session: AsyncSession, env: Env, now: datetime) -> list[JobSpec]:
    specs: list[JobSpec] = []
    for report in await reports.with_status(session, (*reports.OPEN, ReportStatus.RESOLVED)):
        specs += report_specs(report)
    for photo in await reports.photos_to_fetch(session):
        specs.append(JobSpec(f"report-photo:{photo.id}", now, "report-photo", str(photo.id)))
    return specs


def _parse(arg: str) -> tuple[int, str, int]:
    report_id, stage, epoch = arg.split(":")
    return int(report_id), stage, int(epoch)


def _current(report: ReportData | None, stage: str, epoch: int) -> bool:
    """Whether the job still belongs to the report as it is now."""
    if report is None or _epoch(report.due_from) != epoch:
        return False
    if stage == "accept":
        return report.status is ReportStatus.SUBMITTED
    return report.status in reports.WORKING


async def remind(db: Database, env: Env, arg: str) -> None:
    report_id, stage, epoch = _parse(arg)
    async with db.transaction() as session:
        report = await reports.get(session, report_id)
        if report is None or not _current(report, stage, epoch):
            return
        due = report.accept_due if stage == "accept" else report.resolve_due
        if stage == "resolve" and report.assignee_user_id is not None:
            await cards.tell_assignee(
                session,
                report,
                "reports.remind_resolve",
                dedupe=f"remind:{stage}:{epoch}",
                due=cards.when(due, Tr("zh")),
            )
            return
        head = cards.group_tr()(
            f"reports.remind_{stage}", number=report.number, due=cards.when(due, cards.group_tr())
        )
        await cards.tell_group(session, report, dedupe=f"remind:{stage}:{epoch}", head=head)


async def escalation_targets(session: AsyncSession, env: Env) -> list[UserData]:
    """The next level: the people configured (LINLI_REPORT_ESCALATION), else all staff."""
    found: list[UserData] = []
    for entry in env.config.report_escalation:
        channel, _, external = entry.rpartition(":")
        person = await users.find_by_external(session, channel=channel or "telegram", external_id=external)
        if person is not None and not person.forgotten:
            found.append(person)
    return found or await users.users_with_role(session, Role.STAFF)


def _fixed(message: Outgoing) -> Callable[[Tr], Outgoing]:
    return lambda _tr: message


async def escalate(db: Database, env: Env, arg: str) -> None:
    report_id, stage, epoch = _parse(arg)
    async with db.transaction() as session:
        report = await reports.get(session, report_id)
        if report is None or not _current(report, stage, epoch):
            return
        if not await reports.mark_escalated(session, report.id, stage=stage, now=env.now()):
            return
        report = await reports.get(session, report_id)
        assert report is not None
        due = report.accept_due if stage == "accept" else report.resolve_due
        for person in await escalation_targets(session, env):
            tr = Tr(person.language)
            body = await cards.card(session, report, tr, for_group=False)
            message = Outgoing(
                f"{tr(f'reports.escalated_{stage}', number=report.number, due=cards.when(due, tr))}\n{body}",
                choices=cards.staff_buttons(report, tr, in_group=False),
            )
            await notify.to_user(
                session,
                person,
                _fixed(message),
                kind="report",
                dedupe_key=f"report:{report.id}:escalate:{stage}:{epoch}:{person.id}",
            )
        head = cards.group_tr()(f"reports.overdue_{stage}", number=report.number)
        await cards.tell_group(session, report, dedupe=f"escalate:{stage}:{epoch}", head=head)


async def auto_close(db: Database, env: Env, arg: str) -> None:
    async with db.transaction() as session:
        report = await reports.get(session, int(arg))
        if report is None or report.status is not ReportStatus.RESOLVED or report.resolved_at is None:
            return
        if env.now() < report.resolved_at + AUTO_CLOSE_AFTER:
            return  # reopened and resolved again since: a later job closes it
        if not await reports.close(session, report.id, actor=None, now=env.now(), auto=True):
            return
        report = await reports.get(session, report.id)
        assert report is not None
        await cards.tell_people(
            session,
            report,
            "reports.news_auto_closed",
            dedupe=f"autoclosed:{report.reopened}",
            now=env.now(),
            reopen_within=staff.REOPEN_WITHIN,
        )


async def fetch_photo(db: Database, env: Env, arg: str) -> None:
    """Ask the channel for the photo, store it (no transaction is open while fetching),
    then show it to whoever the report's news goes to: the group for a problem photo,
    reporter and followers for a photo of the fix."""
    async with db.transaction() as session:
        photo = await reports.get_photo(session, int(arg))
    if photo is None or photo.path is not None or not photo.ref:
        return
    try:
        async with asyncio.timeout(FETCH_TIMEOUT):
            content = await env.photos.fetch(photo.channel, photo.ref)
        stored = reports_media.save(env.config.media_dir, content)
    except Exception:
        async with db.transaction() as session:
            await reports.photo_failed(session, photo.id)
        raise
    async with db.transaction() as session:
        if not await reports.photo_stored(
            session, photo.id, path=stored.path, sha256=stored.sha256, size=stored.size
        ):
            return
        report = await reports.get(session, photo.report_id)
        if report is None:
            return
        ref = "file:" + str(reports_media.absolute(env.config.media_dir, stored.path))
        if photo.kind == "problem":
            group = await cards.group_of(session, report)
            if group is not None:
                caption = cards.group_tr()("reports.photo_caption", number=report.number)
                await notify.to_group(
                    session,
                    channel=group.channel,
                    chat_id=group.chat_id,
                    message=Outgoing(caption, photo_ref=ref),
                    kind="report",
                    dedupe_key=f"report:{report.id}:photo:{photo.id}",
                )
            return
        for person in await cards.audience(session, report):
            await notify.to_user(
                session,
                person,
                lambda tr: Outgoing(tr("reports.fix_photo_caption", number=report.number), photo_ref=ref),
                kind="report",
                dedupe_key=f"report:{report.id}:photo:{photo.id}:{person.id}",
            )


JOBS = Jobs(
    sources=(report_jobs,),
    runners={
        "report-remind": remind,
        "report-escalate": escalate,
        "report-close": auto_close,
        "report-photo": fetch_photo,
    },
)
