"""The dialog engine: flows declared as data, run one step per incoming message.

A ``Flow`` is a named list of ``Step``s. Each step has ``ask`` (say the question)
and ``handle`` (read the answer, return ``Next``, ``Retry`` or ``Done``). The
engine keeps the position and answers in ``Context.data`` (JSON, persisted by the
handler), offers Back and Cancel, and turns stale buttons into polite restarts.

Button data formats (Telegram allows 64 bytes):
  ``f:<flow>:<step>:<value>``  an answer to a step
  ``n:back`` / ``n:cancel``     navigation inside the current flow
  ``m:<flow>``                  start a flow from a menu
  ``a:<action>:<arg>``          a stateless action (approve an application…)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.i18n import t
from dialogs.messages import Ask, Choice, Incoming, Outgoing
from scheduler.jobs import JobSpec
from storage import outbox
from storage.data import Role, UserData

log = logging.getLogger("linli.dialogs")

MAX_BUTTON_DATA = 64
HISTORY = "_history"


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
    # Free-text phrases that lead here, per language; matched fuzzily.
    intents: tuple[str, ...] = ()
    requires_role: Role | None = None
    requires_onboarding: bool = True
    # Runs before the first step; returning False means "not now" (it said why).
    begin: BeginFn | None = None
    # Started only by an action that hands it its data (which ride to release…),
    # never from a menu, a command or an old button.
    needs_context: bool = False

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"{self.name} has no step {name!r}")

    def has_step(self, name: str | None) -> bool:
        return any(s.name == name for s in self.steps)


Notifier = Callable[[], None]


@dataclass
class Context:
    """Everything a step may use while handling one incoming message."""

    incoming: Incoming
    user: UserData
    session: AsyncSession
    flow: str | None = None
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    replies: list[Outgoing] = field(default_factory=list)
    staff_ids: frozenset[str] = frozenset()
    enqueued: int = 0
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

    def t(self, key: str, **fields: Any) -> str:
        return t(self.lang, key, **fields)

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
        return Choice(label=label, data=button_data(f"f:{self.flow}:{self.step}:{value}"))

    async def notify(
        self,
        recipient: UserData,
        build: Callable[[Callable[..., str]], Outgoing],
        *,
        kind: str = "message",
        dedupe_key: str | None = None,
    ) -> None:
        """Queue a message for someone else, in their language, through the outbox."""
        if recipient.blocked or recipient.forgotten:
            return

        def tr(key: str, **fields: Any) -> str:
            return t(recipient.language, key, **fields)

        await outbox.enqueue(
            self.session,
            channel=recipient.channel,
            chat_id=recipient.chat_id,
            user_id=recipient.id,
            message=build(tr),
            kind=kind,
            dedupe_key=dedupe_key,
        )
        self.enqueued += 1


def button_data(data: str) -> str:
    if len(data.encode()) > MAX_BUTTON_DATA:
        raise ValueError(f"button data over {MAX_BUTTON_DATA} bytes: {data!r}")
    return data


def nav_row(ctx: Context, *, back: bool) -> list[Choice]:
    row = [Choice(ctx.t("common.back"), "n:back")] if back else []
    row.append(Choice(ctx.t("common.cancel"), "n:cancel"))
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

    async def feed(self, ctx: Context) -> None:
        """Give the current step the incoming message."""
        flow = self.current(ctx)
        if flow is None or ctx.step is None:
            raise RuntimeError("no flow in progress")
        step = flow.step(ctx.step)
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


def parse_step_button(data: str) -> tuple[str, str, str] | None:
    """``f:<flow>:<step>:<value>`` → (flow, step, value); None if malformed."""
    parts = data.split(":", 3)
    if len(parts) != 4 or parts[0] != "f" or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2], parts[3]
