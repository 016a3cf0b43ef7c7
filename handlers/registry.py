"""What the router can reach, assembled from the feature list: flows, commands,
button actions, free-text phrases and scheduled jobs. Names are checked once here,
so two features can never claim the same command, action or flow."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.core import Flow, check_next_targets
from dialogs.feature import Action, Command, Env, Feature, Intent, JobRun, JobSource
from scheduler.jobs import Jobs, JobSpec, Periodic, Runner, Source
from storage.data import Role
from storage.engine import Database


@dataclass
class Registry:
    features: tuple[Feature, ...] = ()
    flows: dict[str, Flow] = field(default_factory=dict)
    commands: dict[str, Command] = field(default_factory=dict)
    actions: dict[str, Action[Any]] = field(default_factory=dict)
    intents: list[Intent] = field(default_factory=list)

    @classmethod
    def build(cls, features: Sequence[Feature]) -> Registry:
        registry = cls(features=tuple(features))
        for feature in features:
            for flow in feature.flows:
                _add(registry.flows, flow.name, flow, "flow")
            for command in feature.commands:
                _add(registry.commands, command.name, command, "command")
            for action in feature.actions:
                _add(registry.actions, action.name, action, "action")
            registry.intents.extend(feature.intents)
        check_next_targets(list(registry.flows.values()))
        for flow in registry.flows.values():
            if flow.command and flow.command in registry.commands:
                raise ValueError(f"/{flow.command} is both a command and flow {flow.name!r}")
        return registry

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

    def install_jobs(self, jobs: Jobs, env: Env) -> None:
        """Hand every feature's job sources and runners to the scheduler, bound to ``env``."""
        for feature in self.features:
            declared = feature.jobs
            for source in declared.sources:
                jobs.add_source(_bound_source(source, env))
            runners = {**declared.runners, **{p.id: p.run for p in declared.periodic}}
            for name, run in runners.items():
                if name in jobs.runners:
                    raise ValueError(f"job runner {name!r} declared twice")
                jobs.add_runner(name, _bound_runner(run, env))
            for periodic in declared.periodic:
                jobs.add_periodic(Periodic(id=periodic.id, every=periodic.every, runner=periodic.id))


def _bound_source(source: JobSource, env: Env) -> Source:
    async def specs(session: AsyncSession, now: datetime) -> list[JobSpec]:
        return await source(session, env, now)

    return specs


def _bound_runner(run: JobRun, env: Env) -> Runner:
    async def runner(db: Database, arg: str) -> None:
        await run(db, env, arg)

    return runner


def _add(into: dict[str, Any], name: str, value: Any, what: str) -> None:
    if name in into:
        raise ValueError(f"{what} {name!r} declared twice")
    into[name] = value
