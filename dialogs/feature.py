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
    # Where Linli keeps files people sent (report photos): LINLI_MEDIA_DIR.
    media_dir: str = "media"
    # Problem reports: the categories offered, in order (empty: all known ones).
    report_categories: tuple[str, ...] = ()
    # Who hears of a report past its deadline ("<channel>:<platform id>", or a Telegram id).
    report_escalation: tuple[str, ...] = ()
    # A point farther than this from every community centre goes to the city-wide group.
    report_centre_radius_km: float = 2.0
    # Platform ids of LINLI_ADMINS: staff responsible for every community (notices).
    city_wide_staff: frozenset[str] = frozenset()


# -- photos people sent, fetched from their channel ---------------------------------------

# Returns the bytes of a photo from the platform reference a channel put into
# ``Incoming.photo_ref``; raises when the platform cannot give it (now).
FetchPhoto = Callable[[str], Awaitable[bytes]]


class Photos:
    """The one channel-neutral way to get a photo's bytes: each channel registers how it
    downloads one (Telegram: getFile and the file URL); features ask by channel and
    reference and never learn what a platform is. Filled in by bot/ at start-up."""

    def __init__(self) -> None:
        self._fetchers: dict[str, FetchPhoto] = {}

    def register(self, channel: str, fetch: FetchPhoto) -> None:
        self._fetchers[channel] = fetch

    def can_fetch(self, channel: str) -> bool:
        return channel in self._fetchers

    async def fetch(self, channel: str, ref: str) -> bytes:
        fetcher = self._fetchers.get(channel)
        if fetcher is None:
            raise LookupError(f"no way to fetch photos from channel {channel!r}")
        return await fetcher(ref)


@dataclass(frozen=True, slots=True)
class Env:
    """Settings, the clock and the channels' photo fetchers: what a step, an action
    or a job may depend on."""

    config: Config = field(default_factory=Config)
    clock: Callable[[], datetime] = utcnow
    photos: Photos = field(default_factory=Photos)

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
# Told when something happens to a group chat (Kind.CHAT_MOVED, Kind.BOT_REMOVED).
ChatEvent = Callable[["Context"], Awaitable[None]]


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
    chat_events: Sequence[ChatEvent] = ()
