"""Commands that are not flows, and the staff actions behind buttons."""

from __future__ import annotations

from dialogs.core import Context
from dialogs.messages import Outgoing
from dialogs.role_applications import decision_buttons, summary
from dialogs.validate import parse_id
from handlers import privacy
from handlers.registry import Action, Command, Registry
from handlers.routing import Router
from storage import applications, audit, users
from storage.data import Role

# Telegram's limit; longer texts are split by the channel, but keep parts whole.
MAX_TEXT = 4000


async def help_command(ctx: Context, router: Router) -> None:
    commands = router.registry.menu_commands(ctx.user.roles)
    lines = [ctx.t("help.intro")]
    lines += [f"/{name} — {ctx.t(key)}" for name, key in commands]
    ctx.say("\n".join(lines))
    if ctx.flow is not None and router.engine.current(ctx) is not None:
        ctx.say(ctx.t("help.in_flow"))
        await router.engine.ask(ctx)
    elif ctx.user.onboarded:
        await router.show_menu(ctx)
    else:
        ctx.say(ctx.t("cancel.onboarding_hint"))


async def cancel_command(ctx: Context, router: Router) -> None:
    await router.cancel(ctx)


async def mydata_command(ctx: Context, router: Router) -> None:
    # Pack sections into as few messages as fit, never splitting a section.
    chunk = ""
    for part in await privacy.render(ctx):
        if chunk and len(chunk) + len(part) + 2 > MAX_TEXT:
            ctx.say(chunk)
            chunk = ""
        chunk = f"{chunk}\n\n{part}" if chunk else part
    if chunk:
        ctx.say(chunk)
    if ctx.flow is not None and router.engine.current(ctx) is not None:
        await router.engine.ask(ctx)


async def pending_command(ctx: Context, router: Router) -> None:
    waiting = await applications.pending(ctx.session)
    if not waiting:
        ctx.say(ctx.t("apply.none_pending"))
        return
    ctx.say(ctx.t("apply.pending_count", count=len(waiting)))
    for app in waiting[:10]:
        applicant = await users.get_user(ctx.session, app.user_id)
        name = (applicant.display_name or applicant.username or f"#{app.user_id}") if applicant else "—"
        ctx.say(summary(ctx.t, app, name), choices=decision_buttons(ctx.t, app.id))


async def _decide(ctx: Context, arg: str, approve: bool) -> None:
    application_id = parse_id(arg)
    if application_id is None:
        ctx.say(ctx.t("common.old_button"))
        return
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
        await ctx.notify(
            applicant,
            lambda tr: Outgoing(tr(f"apply.{outcome}_{decided.role.value}")),
            kind="application",
            dedupe_key=f"application:{decided.id}:outcome",
        )
    name = (applicant.display_name or f"#{decided.user_id}") if applicant else "—"
    ctx.say(
        summary(ctx.t, decided, name) + "\n\n" + ctx.t(f"apply.you_{outcome}"),
        edit_ref=ctx.incoming.message_ref,
    )


async def approve_action(ctx: Context, router: Router, arg: str) -> None:
    await _decide(ctx, arg, approve=True)


async def reject_action(ctx: Context, router: Router, arg: str) -> None:
    await _decide(ctx, arg, approve=False)


def register(registry: Registry) -> None:
    registry.add_command(Command("help", help_command, description_key="commands.help"))
    registry.add_command(Command("cancel", cancel_command, description_key="commands.cancel"))
    registry.add_command(Command("mydata", mydata_command, description_key="commands.mydata"))
    registry.add_command(
        Command(
            "pending",
            pending_command,
            requires_role=Role.STAFF,
            description_key="commands.pending",
        )
    )
    registry.add_action(Action("approve", approve_action, requires_role=Role.STAFF))
    registry.add_action(Action("reject", reject_action, requires_role=Role.STAFF))
