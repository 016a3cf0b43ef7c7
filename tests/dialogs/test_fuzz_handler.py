"""Property-based fuzzing of ``Handler.handle``: random people send random messages.

A handful of people with different roles (the demo people on the terminal channel,
fresh Telegram users, the Telegram admin from LINLI_ADMINS) send random sequences of
texts, commands, button presses (on-screen, stale and forged), locations, contacts,
photos and stickers, mostly in private chats and sometimes in a group, where the group
may also be moved to a new chat id or remove Linli. One database
is used per test function, so people accumulate state across examples as real users
do. After every single message these properties are checked:

* ``handle()`` never raises, and never answers with the generic error message (which
  would mean an internal exception was swallowed);
* every private message gets at least one reply; every reply (and every message queued
  in the outbox) has a non-empty text of at most 4096 characters, non-empty button
  labels and button data of at most 64 bytes, and survives the outbox JSON round trip;
* no privileged action succeeds for a role that lacks it: only staff decide
  applications, driver/lawyer roles come from an approved application (or the demo
  data), staff from the demo data or LINLI_ADMINS; a forged ``a:approve``/``a:reject``
  from anyone else leaves an ``audit_log`` row with ``allowed=False`` and changes no
  application, while the same press from staff on a pending application decides it;
* conversation state is valid JSON and names a registered flow and one of its steps
  (history included), or is empty;
* a redelivered update (same update id) changes nothing and is answered as the first
  time (or not at all).

``LINLI_FUZZ_EXAMPLES`` sets the number of sequences for the SQLite test (default 150;
the PostgreSQL test runs a fifth of that), ``LINLI_FUZZ_STEPS`` the longest sequence
(default 25), ``LINLI_FUZZ_SEED`` replays a run (a failure prints its seed; the handler's
clock is a moment of the coming week chosen by the seed, so the replay is exact). A failure
also prints every message of the failing sequence with the replies, and the traceback
the handler logged if it swallowed an exception.

The bugs the fuzzer found have their minimal examples as regression tests at the end.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import random
import traceback
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, NoReturn

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlmodel import col

from dialogs.applications.lawyer import SPECIALTIES
from dialogs.buttons import MAX_BUTTON_DATA
from dialogs.core import HISTORY, Flow
from dialogs.i18n import LANGUAGES, t
from dialogs.messages import ChatKind, Contact, Incoming, Kind, Location, Outgoing, Sender
from dialogs.validate import strip_controls
from storage import demo, rides
from storage.applications import RoleApplication
from storage.data import Role
from storage.engine import Database
from storage.models import AuditEntry, Conversation, OutboxMessage, ProcessedUpdate, User
from storage.schema import create_schema
from tests.conftest import STAFF_ID
from tests.kit import Kit, Person
from tests.legal_world import Clock, monday_morning

EXAMPLES = int(os.environ.get("LINLI_FUZZ_EXAMPLES", "150"))
MAX_STEPS = int(os.environ.get("LINLI_FUZZ_STEPS", "25"))

MAX_TEXT_OUT = 4096
ERROR_TEXTS = frozenset(t(lang, "common.error") for lang in LANGUAGES)
GROUP_CHAT = "-100777"
# Audited facts a channel reports about a group (moved to a new id, Linli removed), with
# the member who did it as the actor: not requests, so not staff acts.
GROUP_FACTS = frozenset(
    {"driver_group_moved", "driver_group_lost", "report_group_moved", "report_group_lost"}
)
_update_ids = itertools.count(10_000_000)


# -- who writes ----------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    channel: str
    external_id: str
    name: str
    language_code: str | None

    @property
    def sender(self) -> Sender:
        return Sender(
            external_id=self.external_id,
            display_name=self.name,
            username=None if self.channel == "terminal" else f"u{self.external_id}",
            language_code=self.language_code,
        )

    def __repr__(self) -> str:
        return f"{self.channel}:{self.external_id}"


DEMO_ACTORS = tuple(Actor("terminal", p.external_id, p.name, p.language) for p in demo.PEOPLE)
FRESH_ACTORS = (
    Actor("telegram", "70001", "新用户甲", "zh-hans"),
    Actor("telegram", "70002", "Fresh B", "en-GB"),
    Actor("telegram", "70003", "", None),
    Actor("telegram", "70004", "\u202eevil\u200b 👩‍👩‍👧 " + "長" * 150, "fr"),
)
ADMIN = Actor("telegram", STAFF_ID, "管理员", "zh-hans")
ACTORS = (*DEMO_ACTORS, *FRESH_ACTORS, ADMIN)
STAFF_ACTORS = (ADMIN, next(a for a in DEMO_ACTORS if a.external_id == "staff"))


def legit_staff(channel: str, external_id: str) -> bool:
    """Who may hold the staff role: the demo staff member and the Telegram admin."""
    return (channel, external_id) in {("terminal", "staff"), ("telegram", STAFF_ID)}


# -- what they write -----------------------------------------------------------

ODD = (
    "\u202e", "\u202d", "\u200b", "\u200c", "\u200d", "\u2066", "\u2069", "\ufeff",
    "\u0301", "\x00", "\x07", "\x1b", "\r", "\n", "\t", "👩‍👩‍👧‍👦", "🚕", "🇨🇳", "𠀀",
    "\U0010fffd", "ﷺ", "עברית", "العربية", "{", "}", "{name}", "%s", "<b>", "&amp;",
    "*_`[", "'; DROP TABLE users; --", "\\", "/", ":", "²", "٣", "١٢٣",
)  # fmt: skip
odd_text = st.lists(st.one_of(st.characters(codec="utf-8"), st.sampled_from(ODD)), max_size=40).map("".join)
long_text = st.builds(
    lambda unit, size: (unit * (size // max(len(unit), 1) + 1))[:size],
    st.sampled_from(["春", "a", "👩‍👩‍👧", "\u200b", "鄂A12345 ", "我要打车", "x y"]),
    st.integers(3990, 5200),
)
digits = st.integers(0, 10**25).map(str)
phones = st.one_of(
    st.builds(lambda n: f"1{n:010d}", st.integers(3 * 10**9, 10**10 - 1)),
    st.sampled_from([
        "13812345678", "138 1234 5678", "+86 139 0000 1111", "+8613800000001",
        "008613912345678", "12345", "1381234567", "138123456789", "+1 202 555 0100",
        "027-87654321", "", " ", "+86", "１３８１２３４５６７８", "phone", "1" * 31,
    ]),
    digits,
)  # fmt: skip
REALISTIC = (
    "我要打车", "打车", "我想打个车去医院", "井盖坏了", "法律咨询", "工资拖欠", "找驿站",
    "发通知", "我想当司机", "我是律师", "帮助", "菜单", "menu", "help", "english", "中文",
    "English", "zh", "en", "语言", "我的数据", "my data", "i need a ride", "legal advice",
    "春和", "春和社区", "chunhe", "ch", "Qinghe", "青和居社区", "青和居", "申新", "南湖",
    "江汉北路社区", "不存在的社区", "3栋", "3", "东区2栋", "西区8栋", "99栋", "building 3",
    "3号楼", "江汉北路18号", "鄂A12345", "鄂a 12345", "鄂AD12345", "京B·8888学", "ABC",
    "粤Z1234港", "比亚迪秦", "白色大众朗逸", "Toyota Corolla", "x", "湖北春芽律师事务所",
    "春和律师事务所", "14201201910012345", "1420 1201 9100 12345", "1234", "是", "否",
    "同意", "yes", "no", "取消", "/start", "好的", "谢谢", "👍", "",
)  # fmt: skip
realistic_text = st.one_of(
    st.sampled_from(REALISTIC),
    phones,
    st.integers(10**16, 10**17 - 1).map(str),
    st.builds(lambda a, b: f"{a}{b}", st.sampled_from(REALISTIC), st.sampled_from(REALISTIC)),
)
any_text = st.one_of(odd_text, realistic_text, long_text, st.just(""))

KNOWN_COMMANDS = (
    "start", "help", "cancel", "language", "mydata", "forget", "driver", "lawyer", "pending",
    "bind_driver_group", "unbind_driver_group", "bind_report_group", "unbind_report_group",
)  # fmt: skip
commands = st.one_of(
    st.sampled_from(KNOWN_COMMANDS),
    st.from_regex(r"[a-z0-9_]{1,32}", fullmatch=True),
    st.sampled_from(["ride", "report", "notice", "onboarding", "a", "start@linli_bot", ""]),
    st.text(max_size=40),
)

STEP_VALUES = (
    "yes", "no", "lang_zh", "lang_en", "lang_fr", "zh", "en", "fr", "none", "skip", "done",
    "c1", "c3", "c8", "c9", "c0", "c-1", "c", "b1", "b5", "b60", "b9999", "b", "x", "",
    *SPECIALTIES,
)  # fmt: skip


def _fits(data: str) -> bool:
    return len(data.encode()) <= MAX_BUTTON_DATA


def allowed(data: str) -> bool:
    return _fits(data)


KNOWN_SERVICES = frozenset(
    ("ride", "report", "stations", "legal", "notice", "onboarding", "driver", "lawyer",
     "language", "forget", "mydata", "help")
)  # fmt: skip


unicode_number = st.text(alphabet="0123456789²³¹٣۴߁𝟗", min_size=1, max_size=3)
# Button values for a step: real ones, near misses, numbers the handlers parse, junk.
step_values = st.one_of(
    st.sampled_from(STEP_VALUES),
    st.builds(lambda p, n: p + n, st.sampled_from("cb"), unicode_number),
    st.builds(lambda p, n: p + n, st.sampled_from("cb"), digits),
    odd_text,
)
app_ids = st.one_of(
    st.integers(0, 30).map(str),
    unicode_number,
    digits,
    st.sampled_from(["", "-1", "1.0", " 1", "1:1", "abc", "\x00", "1\x00"]),
    odd_text,
)


def forged_buttons(flows: dict[str, Flow]) -> st.SearchStrategy[str]:
    flow_names = [*sorted(flows), "ride", "report", "nosuch", ""]
    step_names = [*sorted({s.name for f in flows.values() for s in f.steps}), "nostep", ""]
    step_buttons = st.one_of(
        # A step of the flow it belongs to (current or not)...
        st.sampled_from([(f.name, s.name) for f in flows.values() for s in f.steps]).flatmap(
            lambda fs: st.builds(lambda v: f"f:{fs[0]}:{fs[1]}:{v}", step_values)
        ),
        # ...or any mix.
        st.builds(
            lambda f, s, v: f"f:{f}:{s}:{v}",
            st.sampled_from(flow_names),
            st.sampled_from(step_names),
            step_values,
        ),
    )
    actions = st.builds(
        lambda n, a: f"a:{n}:{a}",
        st.sampled_from(["approve", "approve", "reject", "reject", "Approve", "nosuch", ""]),
        app_ids,
    )
    return st.one_of(
        step_buttons,
        st.sampled_from(["n:back", "n:cancel", "n:", "n:back:1", "n", "m:", "a:", "f:", ""]),
        st.builds(lambda f: f"m:{f}", st.sampled_from([*flow_names, *KNOWN_SERVICES])),
        st.builds(lambda f: f"m:{f}", odd_text),
        actions,
        st.sampled_from(["a:approve", "a:reject", "a:approve:", "a:reject::"]),
        st.text(max_size=64),
    ).filter(allowed)


coordinates = st.one_of(
    # Near the demo communities (春和社区 and friends)...
    st.builds(
        lambda c, dlat, dlon: Location(c[3] + dlat, c[4] + dlon),
        st.sampled_from(demo.COMMUNITIES),
        st.floats(-0.05, 0.05),
        st.floats(-0.05, 0.05),
    ),
    # ...anywhere on Earth...
    st.builds(Location, st.floats(-90, 90), st.floats(-180, 180)),
    # ...and nowhere: out of range but finite, as a broken client might send.
    st.builds(
        Location,
        st.one_of(st.sampled_from([999.0, -999.0, 90.0000001, 1e308]), st.floats(-1e6, 1e6)),
        st.one_of(st.sampled_from([999.0, -999.0, 180.5, -1e308]), st.floats(-1e6, 1e6)),
    ),
)

KIND_WEIGHTS = (
    ("odd_text", 2), ("realistic_text", 4), ("long_text", 1), ("command", 3),
    ("screen_button", 8), ("forged_button", 3), ("location", 1), ("contact", 1),
    ("photo", 1), ("unsupported", 1), ("redeliver", 1), ("step_answer", 10), ("decide", 3),
    ("forged_step", 3), ("group_event", 1),
)  # fmt: skip
KINDS = tuple(k for k, weight in KIND_WEIGHTS for _ in range(weight))
FALLBACK = ["n:back", "n:cancel", "m:driver", "m:lawyer", "m:language", "a:approve:1"]

# Plausible answers to the question a person is on, so that random sequences get deep
# into the flows and file applications for staff to decide. "/x" is a command, "!v" the
# button with value v for the current step, "@loc"/"@contact" share those.
ANSWERS: dict[tuple[str | None, str | None], tuple[str, ...]] = {
    (None, None): (
        "/driver", "/driver", "/lawyer", "/lawyer", "/pending", "/start", "/mydata", "/help",
        "/language", "/forget", "/cancel", "我想当司机", "我是律师", "我要打车", "你好",
    ),
    ("onboarding", "consent"): ("!yes", "!yes", "!lang_en", "!no", "同意", "/start"),
    ("onboarding", "language"): ("!zh", "!en", "中文", "English", "法语"),
    ("onboarding", "community"): ("春和", "chunhe", "Qinghe", "火星", "@loc", "!c1", "!none"),
    ("onboarding", "building"): ("3栋", "东区2栋", "3", "99栋", "!skip", "!b3"),
    ("onboarding", "phone"): ("13812345678", "12345", "@contact", "!skip", "/cancel"),
    ("driver", "phone"): ("13912345678", "@contact", "abc", "/cancel"),
    ("driver", "plate"): ("鄂A12345", "鄂a 54321", "京B·8888学", "ABC", "/mydata"),
    ("driver", "model"): ("比亚迪秦", "白色大众朗逸", "x", "Toyota Corolla " * 4),
    ("driver", "confirm"): ("!yes", "!yes", "yes", "n:back", "/cancel"),
    ("lawyer", "firm"): ("湖北春芽律师事务所", "Spring Law", "法", "/help"),
    ("lawyer", "licence"): ("14201201910012345", "1420 1201 9100 12345", "1234", "n:back"),
    ("lawyer", "specialties"): ("!labour", "!elder", "!done", "!done", "!nosuch"),
    ("lawyer", "confirm"): ("!yes", "!yes", "n:cancel"),
    ("language", "choose"): ("!zh", "!en", "English"),
    ("forget", "confirm"): ("!no", "!no", "!yes", "好的", "/cancel"),
}  # fmt: skip


# -- the fuzzer: sends, then checks every property ---------------------------------


@dataclass(frozen=True)
class UserRow:
    id: int
    channel: str
    external_id: str
    roles: frozenset[Role]


@dataclass(frozen=True)
class AppRow:
    id: int
    user_id: int
    role: Role
    status: str
    decided_by: int | None


@dataclass(frozen=True)
class Snapshot:
    users: dict[int, UserRow]
    by_key: dict[tuple[str, str], int]
    apps: dict[int, AppRow]
    conversations: dict[str, tuple[str | None, str | None, str, int]]
    audit_max: int
    outbox_max: int
    updates: int


class PropertyFailed(AssertionError):
    pass


class Swallowed(logging.Handler):
    """Collects the tracebacks the handler logs before answering 'sorry'."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


@dataclass(repr=False)
class Fuzzer:
    kit: Kit
    demo_roles: dict[int, frozenset[Role]]
    ever_staff: set[int] = field(default_factory=set)
    last_buttons: dict[str, list[str]] = field(default_factory=dict)
    seen_buttons: dict[str, list[str]] = field(default_factory=dict)
    last: Incoming | None = None
    last_replies: list[Outgoing] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    swallowed: Swallowed = field(default_factory=Swallowed)
    messages: int = 0
    # Where each conversation is, and the applications there are (from the last snapshot).
    states: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    app_ids: list[int] = field(default_factory=list)
    coverage: Counter[str] = field(default_factory=Counter)
    failure: str | None = None
    example: int = 0
    clock: Clock | None = None  # the handler's clock; a minute passes per message
    logged: int = 0  # swallowed.records before the current message

    def __repr__(self) -> str:
        return f"Fuzzer(after {self.messages} messages)"

    @property
    def flows(self) -> dict[str, Flow]:
        return self.kit.handler.router.registry.flows

    def fail(self, why: str) -> NoReturn:
        raise PropertyFailed(why)

    def check(self, ok: object, why: str) -> None:
        if not ok:
            self.fail(why)

    async def snapshot(self) -> Snapshot:
        async with self.kit.db.transaction() as s:
            users = {
                u.id or 0: UserRow(
                    u.id or 0,
                    u.channel,
                    u.external_id,
                    frozenset(Role(r) for r in u.roles.split(",") if r),
                )
                for u in (await s.execute(select(User))).scalars()
            }
            apps = {
                a.id or 0: AppRow(a.id or 0, a.user_id, Role(a.role), a.status, a.decided_by)
                for a in (await s.execute(select(RoleApplication))).scalars()
            }
            convs = {
                c.key: (c.flow, c.step, c.data, c.version)
                for c in (await s.execute(select(Conversation))).scalars()
            }
            audit_max = (await s.execute(select(func.max(col(AuditEntry.id))))).scalar() or 0
            outbox_max = (await s.execute(select(func.max(col(OutboxMessage.id))))).scalar() or 0
            updates = (await s.execute(select(func.count()).select_from(ProcessedUpdate))).scalar_one()
        return Snapshot(
            users=users,
            by_key={(u.channel, u.external_id): u.id for u in users.values()},
            apps=apps,
            conversations=convs,
            audit_max=audit_max,
            outbox_max=outbox_max,
            updates=updates,
        )

    async def send(self, incoming: Incoming) -> None:
        redelivery = incoming.update_id is not None and incoming == self.last
        self.logged = len(self.swallowed.records)
        before = await self.snapshot()
        actor_id = before.by_key.get((incoming.channel, incoming.sender.external_id))
        actor_staff = (
            Role.STAFF in before.users[actor_id].roles
            if actor_id is not None
            else incoming.channel == "telegram" and incoming.sender.external_id == STAFF_ID
        )
        self.trace.append(
            f"{'REDELIVER ' if redelivery else ''}{'staff ' if actor_staff else ''}{incoming!r}"
        )
        replies = await self.kit.handler.handle(incoming)  # property: never raises
        self.messages += 1
        if incoming.kind in (Kind.CHAT_MOVED, Kind.BOT_REMOVED):
            self.coverage[f"group {incoming.kind.value}"] += 1
        if self.clock is not None:
            self.clock.now += timedelta(minutes=1)
        self.trace.append("  -> " + repr([(o.text[:80], o.all_choices()[:4]) for o in replies]))
        after = await self.snapshot()
        where = after.conversations.get(incoming.conversation_key, (None, None))
        self.coverage[f"{where[0]}:{where[1]}"] += 1
        for app in after.apps.values():
            if app.id not in before.apps or before.apps[app.id] != app:
                self.coverage[f"application {app.status}"] += 1

        self.check_replies(incoming, replies, redelivery)
        await self.check_outbox(before)
        self.check_roles(after)
        self.check_conversations(after)
        if redelivery:
            self.check(before == after, "a redelivered update changed the database")
        else:
            self.check_decisions(incoming, before, after, actor_staff)
            await self.check_audit(incoming, before, after, actor_staff)

        self.states = {k: (c[0], c[1]) for k, c in after.conversations.items()}
        self.app_ids = sorted(after.apps)
        if incoming.chat_kind is ChatKind.PRIVATE:
            key = incoming.conversation_key
            shown = [c.data for o in replies for c in o.all_choices()]
            if shown:
                self.last_buttons[key] = shown
                seen = self.seen_buttons.setdefault(key, [])
                seen[:] = (seen + [d for d in shown if d not in seen])[-60:]
        if not redelivery:
            self.last, self.last_replies = incoming, replies

    # -- properties -------------------------------------------------------------

    def check_replies(self, incoming: Incoming, replies: list[Outgoing], redelivery: bool) -> None:
        if redelivery:
            # Answered as before (the stored replies), or not at all once those expired.
            self.check(
                replies in ([], self.last_replies),
                f"redelivered update answered differently: {replies!r}",
            )
            return
        if incoming.chat_kind is ChatKind.PRIVATE:
            self.check(replies, "a private message got no reply")
        for out in replies:
            self.check_outgoing(out, "reply")

    def check_outgoing(self, out: Outgoing, what: str) -> None:
        self.check(out.text not in ERROR_TEXTS, f"{what} is the generic error: swallowed exception")
        # A map pin or a photo carries its own content (a venue's title and address);
        # only a message with nothing to show is empty.
        self.check(
            out.text.strip() or out.place is not None or out.photo_ref is not None,
            f"empty {what} text: {out!r}",
        )
        self.check(len(out.text) <= MAX_TEXT_OUT, f"{what} text is {len(out.text)} characters")
        for choice in out.all_choices():
            self.check(choice.label.strip(), f"{what} button without a label: {choice!r}")
            self.check(choice.data, f"{what} button without data: {choice!r}")
            self.check(_fits(choice.data), f"{what} button data over 64 bytes: {choice!r}")
        if out.ask is not None:
            self.check(out.ask_label is None or out.ask_label.strip(), f"empty ask label {out!r}")
        self.check(Outgoing.from_json(out.to_json()) == out, f"{what} does not round-trip: {out!r}")

    async def check_outbox(self, before: Snapshot) -> None:
        async with self.kit.db.transaction() as s:
            rows = (
                await s.execute(select(OutboxMessage).where(col(OutboxMessage.id) > before.outbox_max))
            ).scalars()
            queued = [Outgoing.from_json(r.payload) for r in rows]
        for out in queued:
            self.check_outgoing(out, "queued message")

    def check_roles(self, after: Snapshot) -> None:
        approved = {(a.user_id, a.role) for a in after.apps.values() if a.status == "approved"}
        for u in after.users.values():
            if Role.STAFF in u.roles:
                self.check(legit_staff(u.channel, u.external_id), f"{u} became staff")
                self.ever_staff.add(u.id)
            for role in u.roles - {Role.STAFF}:
                self.check(
                    role in self.demo_roles.get(u.id, frozenset()) or (u.id, role) in approved,
                    f"{u} has role {role} without an approved application",
                )

    def check_decisions(
        self, incoming: Incoming, before: Snapshot, after: Snapshot, actor_staff: bool
    ) -> None:
        actor_id = after.by_key.get((incoming.channel, incoming.sender.external_id))
        for app in after.apps.values():
            self.check(app.status in ("pending", "approved", "rejected"), f"odd status {app}")
            if app.status != "pending":
                self.check(app.decided_by in self.ever_staff, f"{app} decided by non-staff")
        changed = [a for a in after.apps.values() if a.id in before.apps and a != before.apps[a.id]]
        if changed:
            self.check(actor_staff, f"a non-staff message changed applications: {changed}")
            self.check(len(changed) == 1, f"one press decided several applications: {changed}")
            (app,) = changed
            self.check(
                before.apps[app.id].status == "pending" and app.decided_by == actor_id,
                f"decision not by the presser or not from pending: {before.apps[app.id]} → {app}",
            )
        for new in set(after.apps) - set(before.apps):
            self.check(
                after.apps[new].status == "pending" and after.apps[new].user_id == actor_id,
                f"new application not pending or not the sender's: {after.apps[new]}",
            )

    async def check_audit(
        self, incoming: Incoming, before: Snapshot, after: Snapshot, actor_staff: bool
    ) -> None:
        async with self.kit.db.transaction() as s:
            new = list(
                (
                    await s.execute(
                        select(AuditEntry)
                        .where(col(AuditEntry.id) > before.audit_max)
                        .order_by(col(AuditEntry.id))
                    )
                ).scalars()
            )
        actor_id = after.by_key.get((incoming.channel, incoming.sender.external_id))
        for row in new:
            self.check(row.actor_user_id == actor_id, f"audit row for someone else: {row}")
            if row.allowed and row.action not in GROUP_FACTS:
                self.check(actor_staff, f"privileged action allowed for non-staff: {row}")
        data = incoming.choice or ""
        if incoming.kind is not Kind.CHOICE or not data.startswith("a:"):
            return
        name, _, arg = data[2:].partition(":")
        if name not in ("approve", "reject"):
            return
        if not actor_staff:
            refused = [r for r in new if not r.allowed]
            self.check(
                len(refused) == 1
                and refused[0].action == f"a:{name}"
                and refused[0].target == strip_controls(arg)[:100],
                f"forged a:{name} by non-staff not audited as refused: {new}",
            )
            return
        app_id = int(arg[:40]) if arg[:40].isdigit() and arg[:40].isascii() else None
        if app_id is not None and app_id in before.apps and before.apps[app_id].status == "pending":
            decided = after.apps[app_id]
            self.check(
                decided.status == ("approved" if name == "approve" else "rejected")
                and decided.decided_by == actor_id,
                f"staff {name} of pending application {app_id} did not decide it: {decided}",
            )
            self.check(
                any(r.allowed and r.action == name for r in new),
                f"staff decision not in the audit log: {new}",
            )

    def check_conversations(self, after: Snapshot) -> None:
        for key, (flow_name, step, raw, _version) in after.conversations.items():
            try:
                data = json.loads(raw)
            except ValueError:
                self.fail(f"conversation {key} data is not JSON: {raw!r}")
            self.check(isinstance(data, dict), f"conversation {key} data is not an object")
            if flow_name is None:
                self.check(step is None and data == {}, f"{key}: no flow but step={step!r} data={data!r}")
                continue
            flow = self.flows.get(flow_name)
            self.check(flow is not None, f"{key}: unknown flow {flow_name!r}")
            assert flow is not None
            self.check(flow.has_step(step), f"{key}: flow {flow_name} has no step {step!r}")
            history = data.get(HISTORY, [])
            self.check(
                isinstance(history, list) and all(flow.has_step(h) for h in history),
                f"{key}: bad history {history!r} for flow {flow_name}",
            )

    # -- one example ------------------------------------------------------------

    async def run(self, data: st.DataObject, example: int) -> None:
        """One example. A broken property is recorded with the messages, not raised: the
        draws' own exceptions (hypothesis control flow) still reach hypothesis."""
        self.trace = []
        self.example = example
        await self._run(data)

    def record_failure(self, exc: Exception) -> None:
        why = str(exc) if isinstance(exc, PropertyFailed) else "handle() raised"
        self.failure = (
            f"{why}\n{''.join(traceback.format_exception(exc))}"
            f"--- example {self.example}: its messages so far (state accumulates across"
            " examples, so earlier ones may matter) ---\n"
            + "\n".join(self.trace)
            + "\n--- exceptions logged by the handler for the last message ---\n"
            + "\n".join(self.swallowed.records[self.logged :])
        )

    async def _run(self, data: st.DataObject) -> None:
        steps = data.draw(st.integers(1, MAX_STEPS), label="steps")
        actor = data.draw(st.sampled_from(ACTORS), label="first actor")
        for _ in range(steps):
            if data.draw(st.integers(0, 9)) >= 8:  # mostly one person keeps talking
                actor = data.draw(st.sampled_from(ACTORS), label="actor")
            group = data.draw(st.integers(0, 9)) == 0
            kind = data.draw(st.sampled_from(KINDS), label="kind")
            if kind == "decide" and data.draw(st.booleans(), label="by staff"):
                actor = data.draw(st.sampled_from(STAFF_ACTORS), label="actor")
            if kind == "redeliver" and self.last is not None:
                incoming = self.last
            else:
                incoming = self.draw_incoming(data, actor, group, kind)
            if self.failure is not None:
                continue  # keep drawing as before (hypothesis checks), but send no more
            try:
                await self.send(incoming)
            except Exception as exc:
                self.record_failure(exc)

    def draw_incoming(self, data: st.DataObject, actor: Actor, group: bool, kind: str) -> Incoming:
        incoming = Incoming(
            channel=actor.channel,
            sender=actor.sender,
            chat_id=GROUP_CHAT if group else actor.external_id,
            chat_kind=ChatKind.GROUP if group else ChatKind.PRIVATE,
            kind=Kind.TEXT,
            update_id=str(next(_update_ids)),
        )
        return replace(incoming, **self.draw_message(data, kind, incoming))

    def draw_message(self, data: st.DataObject, kind: str, incoming: Incoming) -> dict[str, Any]:
        own = incoming.sender.external_id
        if kind == "odd_text":
            return {"text": data.draw(odd_text, label="text")}
        if kind == "realistic_text":
            return {"text": data.draw(realistic_text, label="text")}
        if kind == "long_text":
            return {"text": data.draw(long_text, label="text")}
        if kind == "command":
            return {
                "kind": Kind.COMMAND,
                "command": data.draw(commands, label="command"),
                "text": data.draw(st.one_of(st.just(""), any_text), label="args"),
            }
        if kind == "screen_button":
            # Draws must not depend on state (hypothesis replays prefixes), so pick by
            # index: the buttons of the last answer, or any shown in this chat before.
            key = incoming.conversation_key
            stale = data.draw(st.booleans(), label="stale")
            index = data.draw(st.integers(0, 1000), label="button index")
            pool = (self.seen_buttons if stale else self.last_buttons).get(key) or FALLBACK
            choice = pool[index % len(pool)]
            return {"kind": Kind.CHOICE, "choice": choice, "message_ref": "1"}
        if kind == "step_answer":
            flow, step = self.states.get(incoming.conversation_key, (None, None))
            answers = ANSWERS.get((flow, step)) or ANSWERS[None, None]
            answer = answers[data.draw(st.integers(0, 1000), label="answer index") % len(answers)]
            if answer == "@loc":
                return {"kind": Kind.LOCATION, "location": Location(30.4810, 114.4100)}
            if answer == "@contact":
                contact = Contact(phone="+86 139 0000 1111", owner_external_id=own)
                return {"kind": Kind.CONTACT, "contact": contact}
            if answer.startswith("/"):
                return {"kind": Kind.COMMAND, "command": answer[1:]}
            if answer.startswith("!"):
                choice = f"f:{flow}:{step}:{answer[1:]}"
                return {"kind": Kind.CHOICE, "choice": choice, "message_ref": "2"}
            if answer.startswith("n:"):
                return {"kind": Kind.CHOICE, "choice": answer, "message_ref": "2"}
            return {"text": answer}
        if kind == "group_event":
            # In the group: Telegram moved it to a new id (or says so oddly), or Linli was
            # removed from it or muted. Bound driver and report groups react to both.
            where = {"chat_id": GROUP_CHAT, "chat_kind": ChatKind.GROUP}
            if data.draw(st.booleans(), label="moved"):
                moved_to = data.draw(st.sampled_from(["-1001000000777", GROUP_CHAT, "", "x" * 80]))
                return {**where, "kind": Kind.CHAT_MOVED, "moved_to": moved_to}
            status = data.draw(st.sampled_from(["kicked", "left", "restricted"]), label="status")
            return {**where, "kind": Kind.BOT_REMOVED, "text": status}
        if kind == "decide":
            # A staff decision button for an application that exists (or a forged id),
            # pressed by anyone.
            verb = data.draw(st.sampled_from(["approve", "reject"]), label="verb")
            index = data.draw(st.integers(0, 1000), label="application index")
            app = str(self.app_ids[index % len(self.app_ids)] if self.app_ids else 1)
            if data.draw(st.integers(0, 3), label="forged id") == 0:
                forged = data.draw(app_ids, label="forged id")
                # No state-dependent filter (it would change the number of draws).
                app = forged if allowed(f"a:{verb}:{forged}") else "0"
            return {"kind": Kind.CHOICE, "choice": f"a:{verb}:{app}", "message_ref": "5"}
        if kind == "forged_step":
            # A forged answer to the question the person is on (or a random step).
            index = data.draw(st.integers(0, 1000), label="step index")  # drawn always
            flow, step = self.states.get(incoming.conversation_key, (None, None))
            if flow is None or step is None:
                steps = [(f.name, s.name) for f in self.flows.values() for s in f.steps]
                flow, step = steps[index % len(steps)]
            prefix = f"f:{flow}:{step}:"
            value = data.draw(step_values, label="value")
            value = value if allowed(prefix + value) else "x"
            return {"kind": Kind.CHOICE, "choice": prefix + value, "message_ref": "3"}
        if kind == "forged_button":
            choice = data.draw(forged_buttons(self.flows), label="button")
            ref = data.draw(st.sampled_from([None, "1", "999999"]), label="message_ref")
            return {"kind": Kind.CHOICE, "choice": choice, "message_ref": ref}
        if kind == "location":
            return {"kind": Kind.LOCATION, "location": data.draw(coordinates, label="location")}
        if kind == "contact":
            owner = data.draw(
                st.sampled_from([own, own, None, "someone-else", "70001", STAFF_ID]), label="owner"
            )
            phone = data.draw(st.one_of(phones, odd_text), label="phone")
            return {"kind": Kind.CONTACT, "contact": Contact(phone=phone, owner_external_id=owner)}
        if kind == "photo":
            caption = data.draw(st.one_of(st.just(""), any_text), label="caption")
            return {"kind": Kind.PHOTO, "photo_ref": "AgACAgUAAxkBAAIB", "text": caption}
        return {"kind": Kind.UNSUPPORTED}


def fuzz_clock(run_seed: int) -> Clock:
    """The handler's clock for a run: a minute of the coming week chosen by the seed.

    Opening hours, ride times and reminders read the clock, so a run on the wall clock
    could not be replayed at another hour; this one replays the same week exactly and
    the same weekday and time of day later on, and different seeds cover the week.
    """
    return Clock(monday_morning() + timedelta(minutes=run_seed % (7 * 24 * 60) - 8 * 60))


def staff_in_group(kit: Kit) -> Person:
    """The demo staff member, writing in the fuzzer's group chat."""
    return Person(
        kit,
        "staff",
        "周网格员",
        language_code="zh",
        channel="terminal",
        chat_id=GROUP_CHAT,
        chat_kind=ChatKind.GROUP,
    )


async def make_fuzzer(db: Database, clock: Clock | None = None) -> Fuzzer:
    """Demo data, the admin, two pending applications for staff to decide (or forgers),
    and the group bound as a driver group and the city-wide report group."""
    await create_schema(db)
    kit = await Kit.create(db, staff_ids=[STAFF_ID], clock=clock)
    staff = staff_in_group(kit)
    await staff.send("/bind_driver_group")
    await staff.send("/bind_report_group 全市")
    assert "✅" in staff.text(), staff.text()
    family = Person(kit, "family", "王小明", language_code="zh", channel="terminal")
    await family.send("/driver")
    await family.send("鄂A12345")
    await family.send("比亚迪秦")
    await family.press("f:driver:confirm:yes")
    visitor = Person(kit, "visitor", "Emma", language_code="en", channel="terminal")
    await visitor.send("/lawyer")
    await visitor.send("Spring Sprout Law Firm")
    await visitor.send("14201201910012345")
    await visitor.press("f:lawyer:specialties:labour")
    await visitor.press("f:lawyer:specialties:done")
    await visitor.press("f:lawyer:confirm:yes")
    async with db.transaction() as s:
        pending = (
            await s.execute(select(RoleApplication).where(col(RoleApplication.status) == "pending"))
        ).scalars()
        assert len(list(pending)) == 2, family.text() + visitor.text()
        demo_roles = {
            u.id or 0: frozenset(Role(r) for r in u.roles.split(",") if r)
            for u in (await s.execute(select(User).where(col(User.channel) == "terminal"))).scalars()
        }
    return Fuzzer(kit, demo_roles=demo_roles, clock=clock)


def fuzz(url: str, examples: int) -> None:
    """Run ``examples`` random sequences against one database, on an event loop of our own.

    Failures are not raised inside hypothesis: with state accumulating across examples a
    replay or shrink would run against a different database and only report flakiness.
    The first broken property stops the run and is reported with its messages and seed;
    ``LINLI_FUZZ_SEED=<seed>`` replays the same run.
    """
    run_seed = int(os.environ.get("LINLI_FUZZ_SEED") or random.randrange(2**32))
    loop = asyncio.new_event_loop()
    db = Database(url)
    swallowed = Swallowed()
    logging.getLogger("linli").addHandler(swallowed)
    try:
        fuzzer = loop.run_until_complete(make_fuzzer(db, fuzz_clock(run_seed)))
        fuzzer.swallowed = swallowed
        counter = itertools.count(1)

        @seed(run_seed)
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(data=st.data())
        def explore(data: st.DataObject) -> None:
            loop.run_until_complete(fuzzer.run(data, next(counter)))

        explore()
    finally:
        logging.getLogger("linli").removeHandler(swallowed)
        loop.run_until_complete(db.dispose())
        loop.close()
    covered = ", ".join(f"{k} {n}" for k, n in sorted(fuzzer.coverage.items()))
    print(f"fuzzed {fuzzer.messages} messages (seed {run_seed}); reached: {covered}")
    if fuzzer.failure is not None:
        pytest.fail(f"LINLI_FUZZ_SEED={run_seed}: {fuzzer.failure}", pytrace=False)


@pytest.mark.slow
def test_random_conversations_sqlite(sqlite_url: str) -> None:
    fuzz(sqlite_url, EXAMPLES)


@pytest.mark.postgres
@pytest.mark.slow
def test_random_conversations_postgres(postgres_url: str) -> None:
    fuzz(postgres_url, max(EXAMPLES // 5, 5))


# -- regressions: minimal examples of bugs the fuzzer found -------------------------


def assert_no_swallowed_error(replies: list[Outgoing]) -> None:
    assert replies, "no reply"
    assert not ERROR_TEXTS & {o.text for o in replies}, [o.text for o in replies]


@pytest_asyncio.fixture
async def pg_kit(postgres_url: str) -> AsyncIterator[Kit]:
    database = Database(postgres_url)
    await create_schema(database)
    try:
        yield await Kit.create(database, staff_ids=[STAFF_ID])
    finally:
        await database.dispose()


async def at_step(kit: Kit, external_id: str, step: str) -> Person:
    """A fresh Telegram user taken through onboarding up to ``step`` (community/building)."""
    person = kit.person(external_id)
    await person.send("/start")
    await person.press("f:onboarding:consent:yes")
    await person.press("f:onboarding:language:zh")
    await person.press("f:onboarding:name:keep")
    if step == "building":
        await person.send("春和")  # one clear match: picked at once
    return person


async def test_a_station_pin_without_text_is_a_whole_message(kit: Kit) -> None:
    """The fuzzer's own property once called the station card's map pin (a venue: title
    and address, no text) empty. It must accept the pin and still refuse nothing at all."""
    fuzzer = Fuzzer(kit, demo_roles={})
    staff = Person(kit, "staff", "周网格员", language_code="zh", channel="terminal")  # demo staff
    await staff.send("/stations")
    replies = await staff.share_location(30.6296, 114.3932)
    show = next(c.data for o in replies for c in o.all_choices() if c.data.startswith("a:station_show:"))
    pin = (await staff.press(show))[-1]
    assert pin.place is not None and pin.text == "" and pin.all_choices()
    fuzzer.check_outgoing(pin, "reply")
    with pytest.raises(PropertyFailed, match="empty reply text"):
        fuzzer.check_outgoing(replace(pin, place=None), "reply")


async def test_menu_button_for_unknown_flow_gets_kind_answer(kit: Kit) -> None:
    stranger = kit.person("80001")
    assert_no_swallowed_error(await stranger.press("m:"))
    assert_no_swallowed_error(await stranger.press("m:nosuch"))


async def test_decision_with_unicode_digit_gets_kind_answer(kit: Kit) -> None:
    staff = kit.person(STAFF_ID)
    assert_no_swallowed_error(await staff.press("a:approve:²"))


async def test_decision_with_huge_id_gets_kind_answer(kit: Kit) -> None:
    staff = kit.person(STAFF_ID)
    assert_no_swallowed_error(await staff.press("a:reject:" + "9" * 20))


async def test_community_button_with_unicode_digit(kit: Kit) -> None:
    person = await at_step(kit, "80002", "community")
    assert_no_swallowed_error(await person.press("f:onboarding:community:c²"))


async def test_community_button_with_huge_id(kit: Kit) -> None:
    person = await at_step(kit, "80003", "community")
    assert_no_swallowed_error(await person.press("f:onboarding:community:c" + "9" * 20))


async def test_building_button_with_unicode_digit(kit: Kit) -> None:
    person = await at_step(kit, "80004", "building")
    assert_no_swallowed_error(await person.press("f:onboarding:building:b²"))


@pytest.mark.postgres
async def test_refused_action_with_nul_is_still_audited_on_postgres(pg_kit: Kit) -> None:
    forger = pg_kit.person("80005")
    assert_no_swallowed_error(await forger.press("a:approve:1\x00"))
    async with pg_kit.db.transaction() as s:
        refused = (
            await s.execute(
                select(func.count()).select_from(AuditEntry).where(col(AuditEntry.allowed).is_(False))
            )
        ).scalar_one()
    assert refused == 1


async def test_a_group_moved_to_an_impossible_chat_id_stays_where_it_is(kit: Kit) -> None:
    """A "moved to" id longer than any chat id (no channel sends one; the fuzzer did) is
    not a move: nothing fails, and the driver group stays bound where it was."""
    staff = staff_in_group(kit)
    await staff.send("/bind_driver_group")
    replies = await staff.deliver(staff.incoming(Kind.CHAT_MOVED, moved_to="x" * 80))
    assert not ERROR_TEXTS & {o.text for o in replies}, replies
    async with kit.db.transaction() as session:
        group = await rides.group_by_chat(session, channel="terminal", chat_id=GROUP_CHAT)
    assert group is not None
