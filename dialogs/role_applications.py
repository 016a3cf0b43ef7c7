"""What driver and lawyer applications share: checks before starting, and filing."""

from __future__ import annotations

from typing import Any

from dialogs.core import Context
from dialogs.messages import Choice, Outgoing
from storage import applications, users
from storage.data import ApplicationData, Role


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
    application = await applications.submit(
        ctx.session, user_id=ctx.user.id, role=role, details=details
    )
    if application is None:
        ctx.say(ctx.t("apply.already_pending"))
        return
    applicant = ctx.user.display_name or ctx.user.username or f"#{ctx.user.id}"
    for staff in await users.users_with_role(ctx.session, Role.STAFF):
        await ctx.notify(
            staff,
            lambda tr, a=application: Outgoing(
                text=summary(tr, a, applicant), choices=decision_buttons(tr, a.id)
            ),
            kind="application",
            dedupe_key=f"application:{application.id}:staff:{staff.id}",
        )
    ctx.say(ctx.t("apply.submitted"))
