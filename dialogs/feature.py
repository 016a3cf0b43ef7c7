"""What a feature declares: one ``Feature`` per package under dialogs/.

A feature package (dialogs/rides/, dialogs/onboarding/, …) holds everything the
feature says and does and exports one ``FEATURE``; dialogs/features.py lists them.
The entry (handlers/) reads these declarations to route commands, buttons and free
text, to build /mydata and /forget, and to schedule jobs; nothing else registers
anything anywhere.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.buttons import ActionData
from scheduler.jobs import JobSpec
from storage.data import Role
from storage.engine import Database
from storage.models import utcnow

if TYPE_CHECKING:
    from dialogs.core import Context, Flow

D = TypeVar("D", bound=ActionData)


# -- settings and time, handed to features (never module globals) --------------------


@dataclass(frozen=True, slots=True)
class Config:
    """The settings features read; built from the operator's settings in bot/."""

    # Minutes before pickup at which the driver is reminded.
    driver_reminders: tuple[int, ...] = (30, 5)
    # Platform ids of LINLI_ADMINS: staff responsible for every community (notices).
    city_wide_staff: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Env:
    """Settings and the clock: what a step, an action or a job may depend on."""

    config: Config = field(default_factory=Config)
    clock: Callable[[], datetime] = utcnow

    def now(self) -> datetime:
        return self.clock()


# -- what a person can trigger ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    """A command that is not a flow: /help, /mydata, /pending, /myrides…"""

    name: str
    run: Callable[[Context], Awaitable[None]]
    requires_role: Role | None = None
    in_private: bool = True
    in_groups: bool = False
    # Shown in the client's command menu (setMyCommands) when set.
    description_key: str | None = None


@dataclass(frozen=True, slots=True)
class Action(Generic[D]):
    """A stateless button (``a:<name>:<args>``), its data declared by an ``ActionData``
    shape. The role is checked on every press; the action itself must check that the
    presser may act on the ids in the data (raise ``NotAllowed`` if not)."""

    shape: type[D]
    run: Callable[[Context, D], Awaitable[None]]
    requires_role: Role | None = None

    @property
    def name(self) -> str:
        return self.shape.action


@dataclass(frozen=True, slots=True)
class Intent:
    """Free-text phrases (both languages) that lead to a flow or a command.

    A target that is neither is a service announced but not built yet: the person
    hears it is coming (catalog key ``services.<target>``).
    """

    target: str
    phrases: tuple[str, ...]


# -- refusals -----------------------------------------------------------------------


class NotAllowed(Exception):
    """Raised by a feature that refuses an act; the entry audits it and answers.

    ``action`` and ``target`` name the attempt for the audit log, ``detail`` says why.
    The presser hears ``key`` (a catalog key) — as a toast for a button press.
    ``end_flow`` ends the flow the person was in (staff-only steps, for example).
    """

    def __init__(
        self,
        action: str,
        *,
        target: str = "",
        detail: str = "",
        key: str = "common.not_allowed",
        end_flow: bool = False,
        **fields: Any,
    ) -> None:
        super().__init__(f"{action} {target}: {detail}")
        self.action = action
        self.target = target
        self.detail = detail
        self.key = key
        self.end_flow = end_flow
        self.fields = fields


# -- jobs, /mydata, /forget -----------------------------------------------------------

# Reads the feature's rows and returns the jobs they imply (deterministic ids).
JobSource = Callable[[AsyncSession, Env, datetime], Awaitable[list[JobSpec]]]
# Does one job in its own transactions; takes only ids (as text) as its argument.
JobRun = Callable[[Database, Env, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Periodic:
    id: str
    every: timedelta
    run: JobRun


@dataclass(frozen=True, slots=True)
class Jobs:
    sources: tuple[JobSource, ...] = ()
    runners: dict[str, JobRun] = field(default_factory=dict)
    periodic: tuple[Periodic, ...] = ()


# A /mydata section: the lines this feature stores about the person, in their language.
Section = Callable[["Context"], Awaitable[list[str]]]
# A /forget eraser: remove or anonymise this feature's rows about the person.
Eraser = Callable[["Context", int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    flows: Sequence[Flow] = ()
    commands: Sequence[Command] = ()
    actions: Sequence[Action[Any]] = ()
    intents: Sequence[Intent] = ()
    jobs: Jobs = field(default_factory=Jobs)
    mydata: Sequence[Section] = ()
    erasers: Sequence[Eraser] = ()
