"""Staff decide applications: /pending lists them, approve and reject buttons decide.

A decision is a conditional UPDATE (the first staff member to press wins); the role
is re-read from the database on every press, so a revoked staff member is refused.
"""

from __future__ import annotations

from collections.abc import Callable

from dialogs.applications.common import Approve, Reject, decision_buttons, summary, who_applied
from dialogs.core import Context
from dialogs.i18n import Tr
from dialogs.messages import Outgoing
from storage import applications, audit, rides, users
from storage.data import Role, UserData


async def pending_command(ctx: Context) -> None:
    waiting = await applications.pending(ctx.session)
    if not waiting:
        ctx.say(ctx.t("apply.none_pending"))
        return
    ctx.say(ctx.t("apply.pending_count", count=len(waiting)))
    for app in waiting[:10]:
        who = await who_applied(ctx.session, app.user_id)
        ctx.say(summary(ctx.tr, app, who), choices=decision_buttons(ctx.tr, app.id))


async def _decide(ctx: Context, application_id: int, approve: bool) -> None:
    decided = await applications.decide(
        ctx.session, application_id=application_id, approve=approve, staff_user_id=ctx.user.id
    )
    if decided is None:
        existing = await applications.get(ctx.session, application_id)
        key = "apply.not_found" if existing is None else "apply.already_decided"
        status = ctx.t(f"apply.status_{existing.status}") if existing else ""
        ctx.say(ctx.t(key, status=status))
        return
    await audit.record(
        ctx.session,
        actor_user_id=ctx.user.id,
        action="approve" if approve else "reject",
        target=f"application:{decided.id}",
    )
    applicant = await users.get_user(ctx.session, decided.user_id)
    outcome = "approved" if approve else "rejected"
    if applicant is not None:
        join = await _how_to_join(ctx, applicant) if approve and decided.role is Role.DRIVER else None

        def news(tr: Tr) -> Outgoing:
            text = tr(f"apply.{outcome}_{decided.role.value}")
            return Outgoing(f"{text}\n{join(tr)}" if join else text)

        await ctx.notify(applicant, news, kind="application", dedupe_key=f"application:{decided.id}:outcome")
    who = await who_applied(ctx.session, decided.user_id)
    ctx.say(
        summary(ctx.tr, decided, who) + "\n\n" + ctx.t(f"apply.you_{outcome}"),
        edit_ref=ctx.incoming.message_ref,
    )


async def _how_to_join(ctx: Context, driver: UserData) -> Callable[[Tr], str]:
    """An approved driver learns how to get into the driver group that serves them: its
    invite link when staff gave one, else to ask staff."""
    group = await rides.group_for(ctx.session, driver.community_id)
    link = group.invite_link if group is not None else ""
    if link:
        return lambda tr: tr("apply.join_group_link", link=link)
    return lambda tr: tr("apply.join_group_ask")


async def approve_action(ctx: Context, data: Approve) -> None:
    await _decide(ctx, data.application, approve=True)


async def reject_action(ctx: Context, data: Reject) -> None:
    await _decide(ctx, data.application, approve=False)
