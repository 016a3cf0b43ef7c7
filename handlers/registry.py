"""What the router can reach: flows, plain commands and button actions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dialogs.core import Context, Flow
from storage.data import Role

if TYPE_CHECKING:
    from handlers.routing import Router

CommandFn = Callable[[Context, "Router"], Awaitable[None]]
ActionFn = Callable[[Context, "Router", str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Command:
    """A command that is not a flow: /help, /mydata, /cancel, /pending…"""

    name: str
    run: CommandFn
    requires_role: Role | None = None
    in_private: bool = True
    in_groups: bool = False
    # Shown in the client's command menu (setMyCommands) when set.
    description_key: str | None = None


@dataclass(frozen=True, slots=True)
class Action:
    """A stateless button (``a:<name>:<arg>``); its role is re-checked on every press."""

    name: str
    run: ActionFn
    requires_role: Role | None = None


@dataclass
class Registry:
    flows: dict[str, Flow] = field(default_factory=dict)
    commands: dict[str, Command] = field(default_factory=dict)
    actions: dict[str, Action] = field(default_factory=dict)

    def add_flow(self, flow: Flow) -> None:
        if flow.name in self.flows:
            raise ValueError(f"flow {flow.name!r} registered twice")
        self.flows[flow.name] = flow

    def add_command(self, command: Command) -> None:
        if command.name in self.commands:
            raise ValueError(f"command {command.name!r} registered twice")
        self.commands[command.name] = command

    def add_action(self, action: Action) -> None:
        if action.name in self.actions:
            raise ValueError(f"action {action.name!r} registered twice")
        self.actions[action.name] = action

    def flow_for_command(self, command: str) -> Flow | None:
        return next((f for f in self.flows.values() if f.command == command), None)

    def menu_commands(self, roles: frozenset[Role]) -> list[tuple[str, str]]:
        """(command, description key) for the client's menu, for someone with these roles."""
        out: list[tuple[str, str]] = []
        for flow in self.flows.values():
            if flow.command and (flow.requires_role is None or flow.requires_role in roles):
                out.append((flow.command, f"commands.{flow.command}"))
        for cmd in self.commands.values():
            if (
                cmd.description_key
                and cmd.in_private
                and (cmd.requires_role is None or cmd.requires_role in roles)
            ):
                out.append((cmd.name, cmd.description_key))
        return out
