"""The dialog engine: flows declared as data, run one step per incoming message.

A ``Flow`` is a named list of ``Step``s. Each step has ``ask`` (say the question)
and ``handle`` (read the answer, return ``Next``, ``Retry`` or ``Done``). The
engine keeps the position and answers in ``Context.data`` (JSON, persisted by the
handler), offers Back and Cancel, and turns stale buttons into polite restarts.
Where a flow is declared it is checked: step names fit in button data, and every
``Next("step")`` its module returns names a step the flow has.

Button data is built and parsed by dialogs/buttons.py.
"""

from __future__ import annotations

import ast
import inspect
import logging
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from dialogs import buttons, notify
from dialogs.feature import Env, Feature
from dialogs.i18n import Tr, t
from dialogs.messages import Ask, Choice, Incoming, Outgoing
from scheduler.jobs import JobSpec
from storage.data import Role, UserData

log = logging.getLogger("linli.dialogs")

HISTORY = "_history"
# The buttons of the question on screen, by label: someone who types a button's label
# ("跳过", "现在") instead of tapping it has answered as if they tapped.
LABELS = "_labels"
_NOT_IN_LABEL = re.compile(r"[\W_]+")


def _label_key(text: str) -> str:
    """A label as people may type it: no emoji, punctuation, spaces or case."""
    return _NOT_IN_LABEL.sub("", text).casefold()


@dataclass(frozen=True, slots=True)
class Next:
    step: str


@dataclass(frozen=True, slots=True)
class Retry:
    """Stay on the step: say why (a catalog key), then ask again."""

    error_key: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Done:
    pass


Result = Next | Retry | Done
AskFn = Callable[["Context"], Awaitable[None]]
HandleFn = Callable[["Context"], Awaitable[Result]]
BeginFn = Callable[["Context"], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    ask: AskFn
    handle: HandleFn
    # A step that shows a location/contact keyboard; leaving it removes the keyboard.
    asks_for: Ask | None = None
    can_go_back: bool = True
    # Steps this one may lead to, when its handler is shared (see dialogs/answers.py);
    # checked where the flow is declared.
    goes_to: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Flow:
    name: str
    steps: tuple[Step, ...]
    # The command that starts it ("driver" for /driver), if any.
    command: str | None = None
    # Catalog key of the button label in /help's menu, if it is listed there.
    menu_key: str | None = None
    # Place in the menu: services people come for first, settings last.
    menu_rank: int = 50
    requires_role: Role | None = None
    requires_onboarding: bool = True
    # Runs before the first step; returning False means "not now" (it said why).
    begin: BeginFn | None = None
    # Started only by an action that hands it its data (which ride to release…),
    # never from a menu, a command or an old button.
    needs_context: bool = False

    def __post_init__(self) -> None:
        names = [s.name for s in self.steps]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"flow {self.name!r} needs steps with distinct names: {names}")
        for name in names:
            buttons.check_step_names(self.name, name)
        for step in self.steps:
            for target in step.goes_to:
                if target not in names:
                    raise ValueError(f"{self.name}.{step.name} leads to {target!r}, which is no step of it")

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"{self.name} has no step {name!r}")

    def steps_names(self) -> frozenset[str]:
        return frozenset(s.name for s in self.steps)

    def has_step(self, name: str | None) -> bool:
        return any(s.name == name for s in self.steps)


@cache
def _module_next_targets(module_name: str) -> frozenset[str]:
    """Every ``Next("<literal>")`` in a module's source."""
    module = sys.modules.get(module_name)
    try:
        source = inspect.getsource(module) if module is not None else ""
    except (OSError, TypeError):  # no source (frozen, interactive): nothing to check
        return frozenset()
    found = set()
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "Next"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return frozenset(found)


def check_next_targets(flows: Sequence[Flow]) -> None:
    """Every ``Next("step")`` in a module that declares steps must name a step of a flow
    whose steps that module handles. Run once when the flows are assembled, so a typo
    fails at start-up (and in every test) instead of when someone presses a button."""
    steps_by_module: dict[str, set[str]] = {}
    for flow in flows:
        for step in flow.steps:
            steps_by_module.setdefault(step.handle.__module__, set()).update(flow.steps_names())
    for module, known in sorted(steps_by_module.items()):
        unknown = _module_next_targets(module) - known
        if unknown:
            raise ValueError(f"{module}: Next() names steps no flow there has: {sorted(unknown)}")


class Nav(Protocol):
    """What the entry offers features beyond the engine: other flows, the menu, the
    feature list. handlers/ implements it; features never import handlers/."""

    @property
    def features(self) -> Sequence[Feature]: ...

    async def start(self, ctx: Context, flow: str | Flow, data: dict[str, Any] | None = None) -> None:
        """Start a flow (one that ``needs_context`` too, handing it ``data``)."""
        ...

    def in_flow(self, ctx: Context) -> bool:
        """Whether a flow this version knows is in progress."""
        ...

    async def resume(self, ctx: Context) -> None:
        """Ask the current question again, or show the menu when no flow is open."""
        ...

    async def reask(self, ctx: Context) -> None:
        """Ask the current question again, if a flow is open (else nothing)."""
        ...

    async def show_menu(self, ctx: Context) -> None: ...

    async def cancel(self, ctx: Context) -> None: ...

    def menu_commands(self, roles: frozenset[Role]) -> list[tuple[str, str]]:
        """(command, description key) for the client's menu, for someone with these roles."""
        ...


@dataclass
class Context:
    """Everything a step may use while handling one incoming message."""

    incoming: Incoming
    user: UserData
    session: AsyncSession
    nav: Nav
    env: Env = field(default_factory=Env)
    flow: str | None = None
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    replies: list[Outgoing] = field(default_factory=list)
    # Set by /forget: the conversation must not be written back.
    erased: bool = False
    value: str | None = None  # the button value for the current step, if a button was pressed
    # Ask the handler to show the main menu after this step.
    show_menu: bool = False
    # Jobs to (re)schedule once this transaction commits.
    jobs: list[JobSpec] = field(default_factory=list)

    @property
    def lang(self) -> str:
        return self.user.language

    @property
    def tr(self) -> Tr:
        return Tr(self.lang)

    def t(self, key: str, **fields: Any) -> str:
        return t(self.lang, key, **fields)

    def now(self) -> datetime:
        return self.env.now()

    @property
    def pressed(self) -> bool:
        """Whether this message is a button press (answers to it may be toasts)."""
        return self.incoming.kind == "choice"

    def toast(self, key: str, **fields: Any) -> None:
        """A short note for the presser alone (over the chat on Telegram)."""
        self.say(self.t(key, **fields), toast=True)

    def say(self, text: str, *, choices: list[list[Choice]] | None = None, **kw: Any) -> Outgoing:
        out = Outgoing(text=text, choices=choices or [], **kw)
        self.replies.append(out)
        return out

    def button(self, label_key: str, value: str, **fields: Any) -> Choice:
        """A button answering the current step, labelled from the catalog."""
        return self.raw_button(self.t(label_key, **fields), value)

    def raw_button(self, label: str, value: str) -> Choice:
        if not (self.flow and self.step):
            raise RuntimeError("buttons belong to a flow step")
        return Choice(label=label, data=buttons.step_data(self.flow, self.step, value))

    def value_id(self, prefix: str) -> int | None:
        """The id in a pressed step value like ``u17`` (prefix "u"); None otherwise."""
        return buttons.prefixed_id(self.value, prefix)

    async def notify(
        self,
        recipient: UserData,
        build: notify.Build,
        *,
        kind: str = "message",
        dedupe_key: str | None = None,
    ) -> bool:
        """Queue a message for someone else, in their language (see dialogs/notify.py)."""
        return await notify.to_user(self.session, recipient, build, kind=kind, dedupe_key=dedupe_key)


def nav_row(ctx: Context, *, back: bool) -> list[Choice]:
    row = [Choice(ctx.t("common.back"), buttons.BACK)] if back else []
    row.append(Choice(ctx.t("common.cancel"), buttons.CANCEL))
    return row


class Engine:
    """Runs flows: start, feed an answer, go back, cancel."""

    def __init__(self, flows: dict[str, Flow]) -> None:
        self.flows = flows

    def current(self, ctx: Context) -> Flow | None:
        return self.flows.get(ctx.flow) if ctx.flow else None

    async def start(self, ctx: Context, flow: Flow, data: dict[str, Any] | None = None) -> None:
        ctx.flow, ctx.step, ctx.data = flow.name, flow.steps[0].name, dict(data or {})
        if flow.begin is not None and not await flow.begin(ctx):
            self.clear(ctx)
            return
        if ctx.flow is None:  # begin() finished the flow itself
            return
        await self.ask(ctx)

    async def ask(self, ctx: Context) -> None:
        flow = self.current(ctx)
        if flow is None or ctx.step is None:
            raise RuntimeError("no flow in progress")
        step = flow.step(ctx.step)
        before = len(ctx.replies)
        await step.ask(ctx)
        # Offer Back/Cancel under the question (the last message the step said).
        if len(ctx.replies) > before:
            question = ctx.replies[-1]
            back = step.can_go_back and bool(ctx.data.get(HISTORY))
            if question.ask is None:
                question.choices.append(nav_row(ctx, back=back))
        self._remember_labels(ctx, flow, ctx.step, ctx.replies[before:])

    @staticmethod
    def _remember_labels(ctx: Context, flow: Flow, step: str, said: list[Outgoing]) -> None:
        prefix = f"f:{flow.name}:{step}:"
        labels: dict[str, str] = {}
        for message in said:
            for choice in message.all_choices():
                key = _label_key(choice.label)
                if choice.data.startswith(prefix) and key:
                    # Two buttons reading alike: typing that is no answer to either.
                    labels[key] = "" if key in labels else choice.data[len(prefix) :]
        if labels:
            ctx.data[LABELS] = {k: v for k, v in labels.items() if v}
        else:
            ctx.data.pop(LABELS, None)

    async def feed(self, ctx: Context) -> None:
        """Give the current step the incoming message."""
        flow = self.current(ctx)
        if flow is None or ctx.step is None:
            raise RuntimeError("no flow in progress")
        step = flow.step(ctx.step)
        if ctx.value is None and ctx.incoming.kind == "text":
            typed = _label_key(ctx.incoming.text)
            ctx.value = (ctx.data.get(LABELS) or {}).get(typed) if typed else None
        before = len(ctx.replies)
        result = await step.handle(ctx)
        if step.asks_for in (Ask.LOCATION, Ask.CONTACT) and not isinstance(result, Retry):
            self._remove_keyboard(ctx, before)
        await self.apply(ctx, flow, step, result)

    @staticmethod
    def _remove_keyboard(ctx: Context, first: int) -> None:
        """Leaving a location/contact question: the first answer takes its keyboard away.

        A message cannot carry both an inline keyboard and a keyboard removal, so
        when the first answer has buttons a short acknowledgement goes before it.
        """
        if first < len(ctx.replies) and not ctx.replies[first].choices:
            ctx.replies[first].remove_keyboard = True
        else:
            ctx.replies.insert(first, Outgoing(ctx.t("common.received"), remove_keyboard=True))

    async def apply(self, ctx: Context, flow: Flow, step: Step, result: Result) -> None:
        if isinstance(result, Retry):
            if result.error_key:
                ctx.say(ctx.t(result.error_key, **result.fields))
            await self.ask(ctx)
            return
        if isinstance(result, Done):
            self.clear(ctx)
            return
        history = list(ctx.data.get(HISTORY, []))
        history.append(step.name)
        ctx.data[HISTORY] = history
        ctx.step = result.step
        await self.ask(ctx)

    async def back(self, ctx: Context) -> None:
        flow = self.current(ctx)
        history = list(ctx.data.get(HISTORY, []))
        # No Back button is offered on such steps; a stale or forged one just re-asks.
        if flow is not None and ctx.step is not None and not flow.step(ctx.step).can_go_back:
            history = []
        if flow is None or not history:
            if flow is not None:
                await self.ask(ctx)
            return
        ctx.step = history.pop()
        ctx.data[HISTORY] = history
        await self.ask(ctx)

    def clear(self, ctx: Context) -> None:
        ctx.flow, ctx.step, ctx.data = None, None, {}
