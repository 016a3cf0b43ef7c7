"""What driver and lawyer applications share: checks, the card staff see, filing,
and the staff reminder job."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dialogs import notify
from dialogs.buttons import ActionData
from dialogs.core import Context
from dialogs.feature import Env
from dialogs.i18n import Tr
from dialogs.messages import Choice, Outgoing
from dialogs.validate import show_phone
from scheduler.jobs import JobSpec
from storage import applications, communities, users
from storage.data import ApplicationData, Role
from storage.engine import Database

APPLICATION_REMINDER_AFTER = timedelta(hours=24)


class Approve(ActionData, action="approve"):
    application: int


class Reject(ActionData, action="reject"):
    application: int


async def can_apply(ctx: Context, role: Role) -> bool:
    """Refuse kindly when the person already has the role or is waiting for a decision."""
    if ctx.user.has(role):
        ctx.say(ctx.t(f"apply.already_{role.value}"))
        return False
    if await applications.pending_for(ctx.session, user_id=ctx.user.id, role=role):
        ctx.say(ctx.t("apply.already_pending"))
        return False
    return True


def summary(tr: Tr, application: ApplicationData, applicant: str) -> str:
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


def decision_buttons(tr: Tr, application_id: int) -> list[list[Choice]]:
    return [
        [
            Choice(tr("apply.approve"), Approve(application=application_id).pack()),
            Choice(tr("apply.reject"), Reject(application=application_id).pack()),
        ]
    ]


async def who_applied(session: AsyncSession, user_id: int) -> str:
    """The applicant as staff need to see them: name, phone, community and building."""
    user = await users.get_user(session, user_id)
    if user is None:
        return "—"
    parts = [user.display_name or user.username or f"#{user.id}"]
    if user.phone:
        parts.append(show_phone(user.phone))
    if user.community_id is not None:
        community = await communities.get_community(session, user.community_id)
        building = await communities.get_building(session, user.building_id) if user.building_id else None
        if community is not None:
            parts.append(f"{community.name} {building.name}" if building else community.name)
    return " · ".join(parts)


async def file_application(ctx: Context, role: Role, details: dict[str, Any]) -> None:
    """Store the application and put it in front of every staff member."""
    application = await applications.submit(ctx.session, user_id=ctx.user.id, role=role, details=details)
    if application is None:
        ctx.say(ctx.t("apply.already_pending"))
        return
    applicant = await who_applied(ctx.session, ctx.user.id)

    def message(tr: Tr) -> Outgoing:
        return Outgoing(
            text=summary(tr, application, applicant), choices=decision_buttons(tr, application.id)
        )

    staff = await users.users_with_role(ctx.session, Role.STAFF)
    await notify.to_users(
        ctx.session, staff, message, kind="application", dedupe=f"application:{application.id}:staff"
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


async def application_reminders(session: AsyncSession, env: Env, now: datetime) -> list[JobSpec]:
    return [reminder_for(app) for app in await applications.pending(session)]


async def remind_staff(db: Database, env: Env, arg: str) -> None:
    """Tell every staff member an application still waits (once per application)."""
    async with db.transaction() as session:
        app = await applications.get(session, int(arg))
        if app is None or app.status != "pending":
            return

        def message(tr: Tr) -> Outgoing:
            return Outgoing(
                tr("apply.reminder", id=app.id, role=tr(f"roles.{app.role.value}")),
                choices=decision_buttons(tr, app.id),
            )

        staff = await users.users_with_role(session, Role.STAFF)
        await notify.to_users(
            session, staff, message, kind="application", dedupe=f"application:{app.id}:reminder"
        )
