"""Routing one incoming message to a command, a flow step, a button action or an intent,
and the one refusal path: every refused act is audited and answered here."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from dialogs import buttons
from dialogs.core import Context, Engine, Flow
from dialogs.feature import Feature, NotAllowed
from dialogs.intents import match as match_intent
from dialogs.messages import ChatKind, Choice, Kind
from dialogs.validate import strip_controls
from handlers.registry import Registry
from storage import audit
from storage.data import Role

log = logging.getLogger("linli.routing")

# Unknown commands are named back only when they look like commands.
SAFE_COMMAND = re.compile(r"[a-z0-9_]{1,32}")


class Router:
    """Implements ``dialogs.core.Nav`` for the features."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.engine = Engine(registry.flows)

    @property
    def features(self) -> Sequence[Feature]:
        return self.registry.features

    async def route(self, ctx: Context) -> None:
        try:
            await self._route(ctx)
        except NotAllowed as refusal:
            await self.refuse(ctx, refusal)
        if ctx.show_menu and ctx.flow is None:
            await self.show_menu(ctx)

    async def _route(self, ctx: Context) -> None:
        incoming = ctx.incoming
        if incoming.chat_kind is ChatKind.GROUP:
            await self._group(ctx)
        elif incoming.kind is Kind.COMMAND:
            await self._command(ctx, incoming.command or "")
        elif incoming.kind is Kind.CHOICE:
            await self._button(ctx, incoming.choice or "")
        elif self.in_flow(ctx):
            await self._feed(ctx)
        elif ctx.flow is not None:
            # State from a flow this version no longer has: start clean, politely.
            self.engine.clear(ctx)
            ctx.say(ctx.t("common.flow_gone"))
            await self.show_menu(ctx)
        elif not ctx.user.onboarded:
            await self.start(ctx, "onboarding")
        elif incoming.kind is Kind.TEXT:
            await self._free_text(ctx)
        elif incoming.kind is Kind.UNSUPPORTED:
            ctx.say(ctx.t("common.unsupported"))
        else:
            ctx.say(ctx.t("common.not_now"))
            await self.show_menu(ctx)

    # -- commands -------------------------------------------------------------

    async def _command(self, ctx: Context, name: str) -> None:
        if name == "start" and ctx.user.onboarded and ctx.flow != "onboarding":
            ctx.say(ctx.t("start.welcome_back", name=ctx.user.display_name or ""))
            if self.in_flow(ctx):  # as /help does: the open question stays open, asked again
                ctx.say(ctx.t("help.in_flow"))
                await self.engine.ask(ctx)
            else:
                await self.show_menu(ctx)
            return
        if name == "start" and ctx.flow == "onboarding":
            ctx.say(ctx.t("start.resume"))
            await self.engine.ask(ctx)
            return
        command = self.registry.commands.get(name)
        if command is not None:
            if not command.in_private:
                ctx.say(ctx.t("common.group_only"))
                return
            if await self._allowed(ctx, command.requires_role, f"/{name}"):
                await command.run(ctx)
            return
        flow = self.registry.flow_for_command(name)
        if flow is not None:
            await self.start(ctx, flow.name)
            return
        shown = name if SAFE_COMMAND.fullmatch(name) else "…"
        ctx.say(ctx.t("common.unknown_command", command=shown))
        await self.resume(ctx)

    # -- buttons --------------------------------------------------------------

    async def _button(self, ctx: Context, data: str) -> None:
        if data in (buttons.BACK, buttons.CANCEL):
            if not self.in_flow(ctx):
                ctx.say(ctx.t("common.old_button"))
                await self.resume(ctx)
            elif data == buttons.BACK:
                await self.engine.back(ctx)
            else:
                await self.cancel(ctx)
            return
        menu = buttons.parse_menu(data)
        if menu is not None:
            await self.start(ctx, menu)
            return
        action = buttons.split_action(data)
        if action is not None:
            await self.run_action(ctx, *action)
            return
        parsed = buttons.parse_step(data)
        if parsed is None:
            log.warning("unknown button data %r from user %s", data[:64], ctx.user.id)
            ctx.say(ctx.t("common.old_button"))
            await self.resume(ctx)
            return
        flow_name, step, value = parsed
        if ctx.flow == flow_name and ctx.step == step and self.in_flow(ctx):
            ctx.value = value
            await self._feed(ctx)
        elif ctx.flow == flow_name and self.in_flow(ctx):
            ctx.say(ctx.t("common.old_question"))
            await self.engine.ask(ctx)
        elif flow_name in self.registry.flows and not self.registry.flows[flow_name].needs_context:
            # A button from a conversation that has ended (or from before a restart
            # that lost nothing but happened mid-change): begin that flow again.
            ctx.say(ctx.t("common.button_restart"))
            await self.start(ctx, flow_name)
        else:
            ctx.say(ctx.t("common.old_button"))
            await self.resume(ctx)

    async def run_action(self, ctx: Context, name: str, args: str) -> None:
        action = self.registry.actions.get(name)
        if action is None:
            log.warning("unknown action %r from user %s", name[:32], ctx.user.id)
            ctx.say(ctx.t("common.old_button"), toast=_in_group(ctx))
            return
        if not await self._allowed(ctx, action.requires_role, f"a:{name}", target=args):
            return
        data = action.shape.unpack(args)
        if data is None:  # forged, or from an older version of the button
            log.warning("button %r with malformed data %r from user %s", name, args[:40], ctx.user.id)
            ctx.say(ctx.t("common.old_button"), toast=_in_group(ctx))
            return
        await action.run(ctx, data)

    # -- flows (the Nav protocol) --------------------------------------------------

    def in_flow(self, ctx: Context) -> bool:
        return ctx.flow is not None and self.engine.current(ctx) is not None

    async def start(self, ctx: Context, flow: str | Flow, data: dict[str, Any] | None = None) -> None:
        if isinstance(flow, Flow):  # a feature hands over a flow with its data
            await self.engine.start(ctx, flow, data)
            return
        found = self.registry.flows.get(flow)
        if found is None or found.needs_context:
            if found is None and self._announced(flow):  # recognised, but not built yet
                ctx.say(ctx.t("common.coming_soon", service=ctx.t(f"services.{flow}")))
                await self.resume(ctx)  # never a dead end: what is open, or the menu
            else:  # forged or outdated menu button
                ctx.say(ctx.t("common.old_button"))
                await self.resume(ctx)
            return
        if found.requires_onboarding and not ctx.user.onboarded:
            ctx.say(ctx.t("common.finish_onboarding_first"))
            await self._resume_onboarding(ctx)
            return
        if not await self._allowed(ctx, found.requires_role, f"flow:{flow}"):
            return
        await self.engine.start(ctx, found, data)

    def _announced(self, target: str) -> bool:
        return any(intent.target == target for intent in self.registry.intents)

    async def _feed(self, ctx: Context) -> None:
        flow = self.engine.current(ctx)
        assert flow is not None
        # Roles can be revoked mid-flow: check again on every step.
        if not await self._allowed(ctx, flow.requires_role, f"flow:{flow.name}"):
            self.engine.clear(ctx)
            return
        if ctx.incoming.kind is Kind.UNSUPPORTED:
            ctx.say(ctx.t("common.unsupported"))
            await self.engine.ask(ctx)
            return
        try:
            await self.engine.feed(ctx)
        except NotAllowed as refusal:
            await self.refuse(ctx, refusal)
            if refusal.end_flow:
                self.engine.clear(ctx)
            else:
                await self.engine.ask(ctx)

    async def cancel(self, ctx: Context) -> None:
        if ctx.flow is None:
            ctx.say(ctx.t("cancel.nothing"), remove_keyboard=True)
            return
        self.engine.clear(ctx)
        ctx.say(ctx.t("cancel.done"), remove_keyboard=True)
        if not ctx.user.onboarded:
            ctx.say(ctx.t("cancel.onboarding_hint"))
        else:  # never a dead end: the menu follows
            ctx.show_menu = True

    async def reask(self, ctx: Context) -> None:
        if self.in_flow(ctx):
            await self.engine.ask(ctx)

    async def resume(self, ctx: Context) -> None:
        if self.in_flow(ctx):
            await self.engine.ask(ctx)
        elif ctx.user.onboarded:
            await self.show_menu(ctx)
        else:
            ctx.say(ctx.t("cancel.onboarding_hint"))

    async def _resume_onboarding(self, ctx: Context) -> None:
        if ctx.flow == "onboarding" and self.in_flow(ctx):
            await self.engine.ask(ctx)
        else:
            await self.engine.start(ctx, self.registry.flows["onboarding"])

    def menu_commands(self, roles: frozenset[Role]) -> list[tuple[str, str]]:
        return self.registry.menu_commands(roles)

    def menu_flows(self, ctx: Context) -> list[Flow]:
        flows = [
            f
            for f in self.registry.flows.values()
            if f.menu_key and (f.requires_role is None or ctx.user.has(f.requires_role))
        ]
        return sorted(flows, key=lambda f: f.menu_rank)

    async def show_menu(self, ctx: Context) -> None:
        rows = [[Choice(ctx.t(f.menu_key or ""), buttons.menu_data(f.name))] for f in self.menu_flows(ctx)]
        ctx.say(ctx.t("help.menu"), choices=rows)

    # -- free text ------------------------------------------------------------

    async def _free_text(self, ctx: Context) -> None:
        target = match_intent(ctx.incoming.text, self.registry.intents)
        if target is None:
            ctx.say(ctx.t("common.not_understood"))
            await self.show_menu(ctx)
        elif target in self.registry.commands:
            await self._command(ctx, target)
        else:
            await self.start(ctx, target)

    # -- groups ---------------------------------------------------------------

    async def _group(self, ctx: Context) -> None:
        incoming = ctx.incoming
        if incoming.kind in (Kind.CHAT_MOVED, Kind.BOT_REMOVED):
            for feature in self.features:
                for on_event in feature.chat_events:
                    await on_event(ctx)
            return
        action = buttons.split_action(incoming.choice or "") if incoming.kind is Kind.CHOICE else None
        if action is not None:
            await self.run_action(ctx, *action)
        elif incoming.kind is Kind.COMMAND:
            command = self.registry.commands.get(incoming.command or "")
            if command is not None and command.in_groups:
                if await self._allowed(ctx, command.requires_role, f"/{command.name}"):
                    await command.run(ctx)
            elif (
                incoming.command in ("start", "help")
                or command
                or self.registry.flow_for_command(incoming.command or "")
            ):
                ctx.say(ctx.t("common.private_only"))
        # Plain group chatter is not for the bot.

    # -- refusals -------------------------------------------------------------

    async def _allowed(self, ctx: Context, role: Role | None, action: str, *, target: str = "") -> bool:
        """Server-side role check; a refusal goes the one refusal path."""
        if role is None or ctx.user.has(role):
            return True
        await self.refuse(ctx, NotAllowed(action, target=target, detail=f"needs role {role.value}"))
        return False

    async def refuse(self, ctx: Context, refusal: NotAllowed) -> None:
        """Audit the attempt and tell the presser why not: a refused button press is
        answered to the presser alone (a toast: in a group, the others need not read
        it), anything typed with a message."""
        # What was forged lands in the log as it came, minus control characters.
        await audit.record(
            ctx.session,
            actor_user_id=ctx.user.id,
            action=strip_controls(refusal.action),
            target=strip_controls(refusal.target),
            allowed=False,
            detail=strip_controls(refusal.detail),
        )
        ctx.say(ctx.t(refusal.key, **refusal.fields), toast=ctx.pressed)


def _in_group(ctx: Context) -> bool:
    return ctx.incoming.chat_kind is ChatKind.GROUP
