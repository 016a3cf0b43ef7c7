"""Routing one incoming message to a command, a flow step, a button action or an intent."""

from __future__ import annotations

import logging
import re

from dialogs.core import Context, Engine, Flow, parse_step_button
from dialogs.intents import INTENTS
from dialogs.intents import match as match_intent
from dialogs.messages import ChatKind, Choice, Kind
from handlers.registry import Registry
from storage import audit
from storage.data import Role

log = logging.getLogger("linli.routing")

# Services people can ask for by name; those without a flow yet are "coming soon".
KNOWN_SERVICES = frozenset(intent.target for intent in INTENTS)
# Unknown commands are named back only when they look like commands.
SAFE_COMMAND = re.compile(r"[a-z0-9_]{1,32}")

# Commands that work before onboarding is finished.
OPEN_COMMANDS = frozenset({"start", "help", "cancel", "language", "mydata", "forget"})


class Router:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.engine = Engine(registry.flows)

    async def route(self, ctx: Context) -> None:
        await self._route(ctx)
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
        elif ctx.flow is not None and self.engine.current(ctx) is not None:
            await self._feed(ctx)
        elif ctx.flow is not None:
            # State from a flow this version no longer has: start clean, politely.
            self.engine.clear(ctx)
            ctx.say(ctx.t("common.flow_gone"))
            await self.show_menu(ctx)
        elif not ctx.user.onboarded:
            await self.start_flow(ctx, "onboarding")
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
            if not await self._allowed(ctx, command.requires_role, f"/{name}"):
                return
            await command.run(ctx, self)
            return
        flow = self.registry.flow_for_command(name)
        if flow is not None:
            await self.start_flow(ctx, flow.name)
            return
        shown = name if SAFE_COMMAND.fullmatch(name) else "…"
        ctx.say(ctx.t("common.unknown_command", command=shown))
        await self._reask_or_menu(ctx)

    # -- buttons --------------------------------------------------------------

    async def _button(self, ctx: Context, data: str) -> None:
        if data in ("n:back", "n:cancel"):
            if ctx.flow is None or self.engine.current(ctx) is None:
                ctx.say(ctx.t("common.old_button"))
                await self._reask_or_menu(ctx)
            elif data == "n:back":
                await self.engine.back(ctx)
            else:
                await self.cancel(ctx)
            return
        if data.startswith("m:"):
            await self.start_flow(ctx, data[2:])
            return
        if data.startswith("a:"):
            name, _, arg = data[2:].partition(":")
            await self.run_action(ctx, name, arg)
            return
        parsed = parse_step_button(data)
        if parsed is None:
            log.warning("unknown button data %r from user %s", data[:64], ctx.user.id)
            ctx.say(ctx.t("common.old_button"))
            await self._reask_or_menu(ctx)
            return
        flow_name, step, value = parsed
        if ctx.flow == flow_name and ctx.step == step and self.engine.current(ctx):
            ctx.value = value
            await self._feed(ctx)
        elif ctx.flow == flow_name and self.engine.current(ctx):
            ctx.say(ctx.t("common.old_question"))
            await self.engine.ask(ctx)
        elif flow_name in self.registry.flows and not self.registry.flows[flow_name].needs_context:
            # A button from a conversation that has ended (or from before a restart
            # that lost nothing but happened mid-change): begin that flow again.
            ctx.say(ctx.t("common.button_restart"))
            await self.start_flow(ctx, flow_name)
        else:
            ctx.say(ctx.t("common.old_button"))
            await self._reask_or_menu(ctx)

    async def run_action(self, ctx: Context, name: str, arg: str) -> None:
        action = self.registry.actions.get(name)
        if action is None:
            log.warning("unknown action %r from user %s", name[:32], ctx.user.id)
            ctx.say(ctx.t("common.old_button"))
            return
        if not await self._allowed(ctx, action.requires_role, f"a:{name}", target=arg):
            return
        await action.run(ctx, self, arg[:40])

    # -- flows ----------------------------------------------------------------

    async def start_flow(self, ctx: Context, name: str) -> None:
        flow = self.registry.flows.get(name)
        if flow is None or flow.needs_context:
            if flow is None and name in KNOWN_SERVICES:  # recognised, but its flow is not installed yet
                ctx.say(ctx.t("common.coming_soon", service=ctx.t(f"services.{name}")))
            else:  # forged or outdated menu button
                ctx.say(ctx.t("common.old_button"))
                await self._reask_or_menu(ctx)
            return
        if flow.requires_onboarding and not ctx.user.onboarded:
            ctx.say(ctx.t("common.finish_onboarding_first"))
            await self._resume_onboarding(ctx)
            return
        if not await self._allowed(ctx, flow.requires_role, f"flow:{name}"):
            return
        await self.engine.start(ctx, flow)

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
        await self.engine.feed(ctx)

    async def cancel(self, ctx: Context) -> None:
        if ctx.flow is None:
            ctx.say(ctx.t("cancel.nothing"), remove_keyboard=True)
            return
        self.engine.clear(ctx)
        ctx.say(ctx.t("cancel.done"), remove_keyboard=True)
        if not ctx.user.onboarded:
            ctx.say(ctx.t("cancel.onboarding_hint"))

    async def _resume_onboarding(self, ctx: Context) -> None:
        if ctx.flow == "onboarding" and self.engine.current(ctx):
            await self.engine.ask(ctx)
        else:
            await self.engine.start(ctx, self.registry.flows["onboarding"])

    async def _reask_or_menu(self, ctx: Context) -> None:
        if ctx.flow is not None and self.engine.current(ctx) is not None:
            await self.engine.ask(ctx)
        elif ctx.user.onboarded:
            await self.show_menu(ctx)
        else:
            ctx.say(ctx.t("cancel.onboarding_hint"))

    # -- free text ------------------------------------------------------------

    async def _free_text(self, ctx: Context) -> None:
        target = match_intent(ctx.incoming.text)
        if target is None:
            ctx.say(ctx.t("common.not_understood"))
            await self.show_menu(ctx)
        elif target in self.registry.commands:
            await self._command(ctx, target)
        else:
            await self.start_flow(ctx, target)

    # -- groups ---------------------------------------------------------------

    async def _group(self, ctx: Context) -> None:
        incoming = ctx.incoming
        if incoming.kind is Kind.CHOICE and (incoming.choice or "").startswith("a:"):
            name, _, arg = (incoming.choice or "")[2:].partition(":")
            await self.run_action(ctx, name, arg)
        elif incoming.kind is Kind.COMMAND:
            command = self.registry.commands.get(incoming.command or "")
            if command is not None and command.in_groups:
                if await self._allowed(ctx, command.requires_role, f"/{command.name}"):
                    await command.run(ctx, self)
            elif (
                incoming.command in ("start", "help")
                or command
                or self.registry.flow_for_command(incoming.command or "")
            ):
                ctx.say(ctx.t("common.private_only"))
        # Plain group chatter is not for the bot.

    # -- shared ---------------------------------------------------------------

    async def _allowed(self, ctx: Context, role: Role | None, action: str, *, target: str = "") -> bool:
        """Server-side role check; refusals are answered and written to the audit log."""
        if role is None or ctx.user.has(role):
            return True
        await audit.record(
            ctx.session,
            actor_user_id=ctx.user.id,
            action=action,
            target=target,
            allowed=False,
            detail=f"needs role {role.value}",
        )
        # A refused button press is told to the presser alone (in a group, not to everyone).
        ctx.say(ctx.t("common.not_allowed"), toast=ctx.incoming.kind is Kind.CHOICE)
        return False

    def menu_flows(self, ctx: Context) -> list[Flow]:
        flows = [
            f
            for f in self.registry.flows.values()
            if f.menu_key and (f.requires_role is None or ctx.user.has(f.requires_role))
        ]
        return sorted(flows, key=lambda f: f.menu_rank)

    async def show_menu(self, ctx: Context) -> None:
        flows = self.menu_flows(ctx)
        rows = [[Choice(ctx.t(f.menu_key or ""), f"m:{f.name}")] for f in flows]
        ctx.say(ctx.t("help.menu"), choices=rows)
