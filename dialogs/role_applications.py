"""What driver and lawyer applications share: checks, filing, and the staff reminder job."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.core import Context
from dialogs.i18n import t
from dialogs.messages import Choice, Outgoing
from scheduler.jobs import Jobs, JobSpec
from storage import applications, outbox, users
from storage.data import ApplicationData, Role
from storage.engine import Database

APPLICATION_REMINDER_AFTER = timedelta(hours=24)


async def can_apply(ctx: Context, role: Role) -> bool:
    """Refuse kindly when the person already has the role or is waiting for a decision."""
    if ctx.user.has(role):
        ctx.say(ctx.t(f"apply.already_{role.value}"))
        return False
    if await applications.pending_for(ctx.session, user_id=ctx.user.id, role=role):
        ctx.say(ctx.t("apply.already_pending"))
        return False
    return True


def summary(tr: Any, application: ApplicationData, applicant: str) -> str:
    """The text staff and the applicant see for an application."""
    d = application.details
    if application.role is Role.DRIVER:
        body = tr("apply.driver_summary", plate=d.get("plate", ""), model=d.get("car_model", ""))
    else:
        specialties = "、".join(tr(f"apply.specialty_{s}") for s in d.get("specialties", []))
        body = tr(
            "apply.lawyer_summary",
            firm=d.get("firm", ""),
            licence=d.get("licence", ""),
            specialties=specialties or "—",
        )
    return tr(
        "apply.staff_new",
        id=application.id,
        role=tr(f"roles.{application.role.value}"),
        name=applicant,
        details=body,
    )


def decision_buttons(tr: Any, application_id: int) -> list[list[Choice]]:
    return [
        [
            Choice(tr("apply.approve"), f"a:approve:{application_id}"),
            Choice(tr("apply.reject"), f"a:reject:{application_id}"),
        ]
    ]


async def file_application(ctx: Context, role: Role, details: dict[str, Any]) -> None:
    """Store the application and put it in front of every staff member."""
    application = await applications.submit(ctx.session, user_id=ctx.user.id, role=role, details=details)
    if application is None:
        ctx.say(ctx.t("apply.already_pending"))
        return
    applicant = ctx.user.display_name or ctx.user.username or f"#{ctx.user.id}"

    def message(tr: Callable[..., str]) -> Outgoing:
        return Outgoing(
            text=summary(tr, application, applicant), choices=decision_buttons(tr, application.id)
        )

    for staff in await users.users_with_role(ctx.session, Role.STAFF):
        await ctx.notify(
            staff,
            message,
            kind="application",
            dedupe_key=f"application:{application.id}:staff:{staff.id}",
        )
    ctx.jobs.append(reminder_for(application))
    ctx.say(ctx.t("apply.submitted"))


# -- the reminder job: staff hear about an application left waiting a day ----


def reminder_for(app: ApplicationData) -> JobSpec:
    return JobSpec(
        id=f"application-reminder:{app.id}",
        run_at=app.created_at + APPLICATION_REMINDER_AFTER,
        runner="application-reminder",
        arg=str(app.id),
    )


async def application_reminders(session: AsyncSession, now: datetime) -> list[JobSpec]:
    return [reminder_for(app) for app in await applications.pending(session)]


async def remind_staff(db: Database, arg: str) -> int:
    """Tell every staff member an application still waits (once per application)."""
    async with db.transaction() as session:
        app = await applications.get(session, int(arg))
        if app is None or app.status != "pending":
            return 0
        queued = 0
        for staff in await users.users_with_role(session, Role.STAFF):
            if staff.blocked:
                continue

            def tr(key: str, _lang: str = staff.language, **fields: Any) -> str:
                return t(_lang, key, **fields)

            queued += await outbox.enqueue(
                session,
                channel=staff.channel,
                chat_id=staff.chat_id,
                user_id=staff.id,
                message=Outgoing(
                    tr("apply.reminder", id=app.id, role=tr(f"roles.{app.role.value}")),
                    choices=decision_buttons(tr, app.id),
                ),
                kind="application",
                dedupe_key=f"application:{app.id}:reminder:{staff.id}",
            )
        return queued


def register_jobs(jobs: Jobs) -> None:
    jobs.add_source(application_reminders)
    jobs.add_runner("application-reminder", remind_staff)
