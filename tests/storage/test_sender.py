"""The outbox sender: limits, order, every failure outcome, crashes, wake-ups.

Time is fake: a clock the limiter reads and a ``sleep`` that only moves it, so nothing
here waits for real time. ``now`` (the database's UTC time) is the real time plus the
fake seconds that have passed, so rows enqueued with the default ``not_before`` are due.
The tests of ``run()`` use the real clock with limits too high to matter.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlmodel import SQLModel, col

import storage.models  # noqa: F401  (registers the tables)
from dialogs.messages import Outgoing
from scheduler.delivery import PermanentFailure, RecipientGone, RetryLater, Transport
from scheduler.ratelimit import RateLimiter, Window
from scheduler.sender import Backoff, OutboxSender
from storage import outbox
from storage.engine import Database
from storage.models import OutboxMessage, User, utcnow
from storage.outbox import OutboxItem
from tests.fakes.recording import RecordingTransport

CHANNEL = "telegram"


class SimulatedCrash(BaseException):
    """The process dying: not an Exception, so nothing may treat it as an outcome."""


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0

    def clock(self) -> float:
        return self.t

    def now(self) -> datetime:
        return utcnow() + timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:
        self.t += seconds
        await asyncio.sleep(0)


class CheckingTransport(RecordingTransport):
    """Also checks that no chat ever has two deliveries in flight, and counts the peak."""

    def __init__(self, clock: FakeTime) -> None:
        super().__init__(clock.clock)
        self.in_flight: Counter[str] = Counter()
        self.peak = 0

    async def deliver(self, item: OutboxItem) -> str | None:
        assert self.in_flight[item.chat_id] == 0, f"two in flight to {item.chat_id}"
        self.in_flight[item.chat_id] += 1
        self.peak = max(self.peak, sum(self.in_flight.values()))
        try:
            await asyncio.sleep(0)  # widen the window for overlap
            return await super().deliver(item)
        finally:
            self.in_flight[item.chat_id] -= 1


@pytest_asyncio.fixture
async def sdb(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def make_sender(
    db: Database, transport: Transport | Mapping[str, Transport], fake: FakeTime, **kwargs: object
) -> OutboxSender:
    return OutboxSender(
        db,
        transport,
        clock=fake.clock,
        now=fake.now,
        sleep=fake.sleep,
        rng=random.Random(7),
        **kwargs,  # type: ignore[arg-type]
    )


def fast_limiter() -> RateLimiter:
    """Real clock, limits far above anything a test sends."""
    return RateLimiter(
        time.monotonic,
        global_per_second=1e6,
        per_chat_interval=1e-6,
        private_burst=1000,
        group_per_minute=100_000,
    )


async def add_users(db: Database, n: int) -> list[int]:
    async with db.transaction() as session:
        rows = [User(channel=CHANNEL, external_id=str(i), chat_id=str(i)) for i in range(1, n + 1)]
        session.add_all(rows)
        await session.flush()
        return [r.id for r in rows if r.id is not None]


async def enqueue(
    db: Database,
    messages: Iterable[tuple[str, str]],
    *,
    user_ids: dict[str, int] | None = None,
    groups: frozenset[str] = frozenset(),
    dedupe: bool = False,
    channel: str = CHANNEL,
) -> None:
    """Enqueue (chat_id, text) pairs in one transaction, as a producer would."""
    async with db.transaction() as session:
        for chat_id, text in messages:
            await outbox.enqueue(
                session,
                channel=channel,
                chat_id=chat_id,
                payload=Outgoing(text=text).to_dict(),
                user_id=(user_ids or {}).get(chat_id),
                is_group=chat_id in groups,
                dedupe_key=text if dedupe else None,
            )


async def rows(db: Database) -> list[OutboxMessage]:
    async with db.transaction() as session:
        result = await session.execute(select(OutboxMessage).order_by(col(OutboxMessage.id)))
        return list(result.scalars())


async def row_for(db: Database, text: str) -> OutboxMessage:
    found = [r for r in await rows(db) if Outgoing.from_json(r.payload).text == text]
    assert len(found) == 1
    return found[0]


async def counts(db: Database) -> dict[str, int]:
    async with db.transaction() as session:
        return await outbox.counts(session)


def texts_by_chat(transport: RecordingTransport) -> dict[str, list[str]]:
    by_chat: defaultdict[str, list[str]] = defaultdict(list)
    for d in transport.deliveries:
        by_chat[d.item.chat_id].append(d.item.payload["text"])
    return dict(by_chat)


def assert_window(times: list[float], window: Window, what: str) -> None:
    """No half-open window of ``window.seconds`` holds more than ``window.limit`` sends."""
    times = sorted(times)
    for a, b in zip(times, times[window.limit :], strict=False):
        assert a + window.seconds <= b, f"{what}: {window.limit + 1} sends within {b - a:.3f}s"


def assert_within_limits(transport: RecordingTransport, limiter: RateLimiter) -> None:
    # Every call counts against the platform's limits, failed or not.
    assert_window([at for _, at in transport.attempts], limiter.global_window, "overall")
    per_chat: defaultdict[tuple[str, bool], list[float]] = defaultdict(list)
    for item, at in transport.attempts:
        per_chat[(item.chat_id, item.is_group)].append(at)
    for (chat_id, is_group), times in per_chat.items():
        assert_window(times, limiter.window_for(is_group), f"chat {chat_id}")


# -- volume, limits and order -----------------------------------------------------------------


async def test_thousand_messages_to_300_users_and_3_groups_stay_within_limits(
    sdb: Database, fake: FakeTime
) -> None:
    user_ids = await add_users(sdb, 300)
    groups = frozenset({"-100", "-200", "-300"})
    # 900 private messages (8 each to 50 people, 2 each to 250) and 100 to the groups
    # (33-34 each), interleaved as several producers would write them.
    private = iter([(str(u), f"{u}#{k}") for k in range(8) for u in range(1, 301) if u <= 50 or k < 2])
    group = iter([(g, f"{g}#{k}") for k in range(34) for g in sorted(groups)])
    messages = [next(group) if n % 10 == 0 else next(private) for n in range(1000)]
    by_chat = {str(u): uid for u, uid in enumerate(user_ids, start=1)}
    await enqueue(sdb, messages, user_ids=by_chat, groups=groups)

    transport = CheckingTransport(fake)
    limiter = RateLimiter(fake.clock)
    sender = make_sender(sdb, transport, fake, limiter=limiter)

    assert await sender.drain_once() == 1000
    assert await counts(sdb) == {"sent": 1000}
    assert sorted(d.item.id for d in transport.deliveries) == [r.id for r in await rows(sdb)]
    assert_within_limits(transport, limiter)
    assert limiter.in_flight == 0
    expected: defaultdict[str, list[str]] = defaultdict(list)
    for chat_id, text in messages:
        expected[chat_id].append(text)
    assert texts_by_chat(transport) == expected  # every chat in its own order
    assert 1 < transport.peak <= 8
    # A group's 21st message waits a minute after its 1st; the first 20 are spread
    # over the 30 s the private ones need at 30/s, so the tail ends a little later.
    assert 60 <= fake.t < 100


async def test_a_waiting_chat_does_not_hold_up_the_others(sdb: Database, fake: FakeTime) -> None:
    # The oldest 40 rows go to one group; a batch of 20 would be only that group.
    await enqueue(sdb, [("-1", f"g{n}") for n in range(40)], groups=frozenset({"-1"}))
    await enqueue(sdb, [(str(n), f"u{n}") for n in range(1, 11)])
    transport = RecordingTransport(fake.clock)
    sender = make_sender(sdb, transport, fake, batch=20)

    assert await sender.drain_once() == 50
    private = [at for item, at in transport.attempts if not item.is_group]
    assert max(private) < 1  # not after the group's minute
    group = sorted(at for item, at in transport.attempts if item.is_group)
    assert group[19] < 1 <= 60 <= group[20]
    assert texts_by_chat(transport)["-1"] == [f"g{n}" for n in range(40)]


async def test_dedupe_key_enqueued_twice_is_delivered_once(sdb: Database, fake: FakeTime) -> None:
    await enqueue(sdb, [("1", "ride-42-claimed")], dedupe=True)
    await enqueue(sdb, [("1", "ride-42-claimed")], dedupe=True)  # the producer ran again
    transport = RecordingTransport(fake.clock)

    assert await make_sender(sdb, transport, fake).drain_once() == 1
    assert texts_by_chat(transport) == {"1": ["ride-42-claimed"]}


# -- outcomes ---------------------------------------------------------------------------------


async def test_429_for_a_chat_is_honoured_then_delivered_in_order(sdb: Database, fake: FakeTime) -> None:
    await enqueue(sdb, [("1", "first"), ("2", "other"), ("1", "second")])
    transport = RecordingTransport(fake.clock)
    transport.fail("1", RetryLater(10))
    sender = make_sender(sdb, transport, fake)

    assert await sender.drain_once() == 2  # the 429 and "other"
    assert texts_by_chat(transport) == {"2": ["other"]}
    first = await row_for(sdb, "first")
    assert (first.status, first.attempts) == ("pending", 1)
    ((_, refused_at),) = [(i, at) for i, at in transport.attempts if i.chat_id == "1"]

    await fake.sleep(9)
    assert await sender.drain_once() == 0  # still too early for chat 1

    await fake.sleep(1.5)
    assert await sender.drain_once() == 2
    assert texts_by_chat(transport)["1"] == ["first", "second"]
    assert all(at >= refused_at + 10 for i, at in transport.attempts[1:] if i.chat_id == "1")
    assert await counts(sdb) == {"sent": 3}


async def test_429_for_the_whole_bot_slows_everything(sdb: Database, fake: FakeTime) -> None:
    await enqueue(sdb, [(str(n), f"m{n}") for n in range(1, 6)])
    transport = RecordingTransport(fake.clock)
    transport.fail("1", RetryLater(5, all_chats=True))
    sender = make_sender(sdb, transport, fake, concurrency=1)

    # Waiting out the flood makes the refused row due again within the same drain.
    assert await sender.drain_once() == 6
    refused_at = transport.attempts[0][1]
    assert all(at >= refused_at + 5 for _, at in transport.attempts[1:])
    assert await counts(sdb) == {"sent": 5}


async def test_403_marks_the_user_blocked_and_cancels_their_pending_messages(
    sdb: Database, fake: FakeTime
) -> None:
    (alice, bob) = await add_users(sdb, 2)
    await enqueue(
        sdb,
        [("1", "a1"), ("2", "b1"), ("1", "a2"), ("1", "a3")],
        user_ids={"1": alice, "2": bob},
    )
    transport = RecordingTransport(fake.clock)
    transport.fail("1", RecipientGone("Forbidden: bot was blocked by the user"))
    told: list[tuple[int, str]] = []

    async def on_blocked(item: OutboxItem, reason: str) -> None:
        told.append((item.id, reason))

    sender = make_sender(sdb, transport, fake, on_blocked=on_blocked)
    assert await sender.drain_once() == 2
    await fake.sleep(3600)
    assert await sender.drain_once() == 0

    assert [i.chat_id for i, _ in transport.attempts].count("1") == 1
    assert {Outgoing.from_json(r.payload).text: r.status for r in await rows(sdb)} == {
        "a1": "blocked",
        "a2": "blocked",
        "a3": "blocked",
        "b1": "sent",
    }
    assert told == [((await row_for(sdb, "a1")).id, "Forbidden: bot was blocked by the user")]
    async with sdb.transaction() as session:
        assert (await session.get(User, alice)).blocked_at is not None  # type: ignore[union-attr]
        assert (await session.get(User, bob)).blocked_at is None  # type: ignore[union-attr]


async def test_400_is_failed_and_never_retried(sdb: Database, fake: FakeTime) -> None:
    await enqueue(sdb, [("1", "bad"), ("1", "good")])
    transport = RecordingTransport(fake.clock)
    transport.fail("1", PermanentFailure("Bad Request: message text is empty"))
    sender = make_sender(sdb, transport, fake)

    assert await sender.drain_once() == 2
    await fake.sleep(3600)
    assert await sender.drain_once() == 0
    bad = await row_for(sdb, "bad")
    assert (bad.status, bad.attempts, bad.error) == (
        "failed",
        1,
        "Bad Request: message text is empty",
    )
    assert texts_by_chat(transport) == {"1": ["good"]}  # the chat itself goes on
    assert len(transport.attempts) == 2


async def test_transient_error_is_retried_with_backoff_then_succeeds(sdb: Database, fake: FakeTime) -> None:
    await enqueue(sdb, [("1", "first"), ("1", "second"), ("2", "elsewhere")])
    transport = RecordingTransport(fake.clock)
    transport.fail("1", ConnectionError("reset"), TimeoutError("slow"))
    sender = make_sender(sdb, transport, fake, backoff=Backoff(base=2, cap=60))

    assert await sender.drain_once() == 2  # the failure and "elsewhere"
    first = await row_for(sdb, "first")
    assert (first.status, first.attempts) == ("pending", 1)
    assert "ConnectionError" in (first.error or "")
    # Backoff after attempt 1 is 1-2 s; "second" waits behind "first".
    assert fake.now() + timedelta(seconds=0.9) <= first.not_before
    assert first.not_before <= fake.now() + timedelta(seconds=2.1)
    assert (await row_for(sdb, "second")).not_before > first.not_before

    await fake.sleep(2)
    assert await sender.drain_once() == 1  # attempt 2 fails; backoff 2-4 s
    assert texts_by_chat(transport).get("1") is None
    await fake.sleep(4)
    assert await sender.drain_once() == 2
    assert texts_by_chat(transport)["1"] == ["first", "second"]
    first = await row_for(sdb, "first")
    assert (first.status, first.attempts) == ("sent", 2)


async def test_gives_up_after_max_attempts(sdb: Database, fake: FakeTime) -> None:
    await enqueue(sdb, [("1", "doomed"), ("1", "after")])
    transport = RecordingTransport(fake.clock)
    transport.fail("1", *(RuntimeError(f"boom {n}") for n in range(3)))
    sender = make_sender(sdb, transport, fake, max_attempts=3)

    handled = []
    for _ in range(4):
        handled.append(await sender.drain_once())
        await fake.sleep(1000)
    assert handled == [1, 1, 2, 0]  # the third failure is final; "after" then goes
    doomed = await row_for(sdb, "doomed")
    assert (doomed.status, doomed.attempts) == ("failed", 3)
    assert "gave up after 3 attempts" in (doomed.error or "")
    assert texts_by_chat(transport) == {"1": ["after"]}


def test_backoff_grows_with_jitter_and_stops_at_the_cap() -> None:
    backoff, rng = Backoff(base=2, cap=60), random.Random(1)
    for attempt, (low, high) in {1: (1, 2), 2: (2, 4), 3: (4, 8), 10: (30, 60)}.items():
        delays = [backoff.delay(attempt, rng) for _ in range(50)]
        assert all(low <= d <= high for d in delays)
        assert len(set(delays)) > 1


async def test_a_mapping_of_transports_routes_by_channel(sdb: Database, fake: FakeTime) -> None:
    await enqueue(sdb, [("1", "to telegram")])
    await enqueue(sdb, [("1", "to the terminal")], channel="terminal")
    await enqueue(sdb, [("1", "to nowhere")], channel="wechat")
    telegram, terminal = RecordingTransport(fake.clock), RecordingTransport(fake.clock)
    sender = make_sender(sdb, {CHANNEL: telegram, "terminal": terminal}, fake)

    assert await sender.drain_once() == 2
    assert texts_by_chat(telegram) == {"1": ["to telegram"]}
    assert texts_by_chat(terminal) == {"1": ["to the terminal"]}
    # A channel this process does not run keeps its message for a process that does.
    nowhere = await row_for(sdb, "to nowhere")
    assert (nowhere.status, nowhere.error) == ("pending", None)
    wechat = RecordingTransport(fake.clock)
    assert await make_sender(sdb, {"wechat": wechat}, fake).drain_once() == 1
    assert texts_by_chat(wechat) == {"1": ["to nowhere"]}


async def test_an_unreadable_row_is_failed_instead_of_blocking_the_outbox(
    sdb: Database, fake: FakeTime
) -> None:
    async with sdb.transaction() as session:
        session.add(OutboxMessage(channel=CHANNEL, chat_id="1", payload="{not json"))
    await enqueue(sdb, [("2", "fine")])
    transport = RecordingTransport(fake.clock)

    assert await make_sender(sdb, transport, fake).drain_once() == 1
    assert texts_by_chat(transport) == {"2": ["fine"]}
    (bad, _) = await rows(sdb)
    assert bad.status == "failed"
    assert (bad.error or "").startswith("unreadable payload")


# -- crashes ----------------------------------------------------------------------------------


async def crash_then_recover(
    sdb: Database, fake: FakeTime, *, after_delivery: bool
) -> tuple[RecordingTransport, RecordingTransport]:
    await enqueue(sdb, [(str(n % 20 + 1), f"m{n}") for n in range(60)])
    first = RecordingTransport(fake.clock)
    first.fail_call(25, SimulatedCrash(), after_delivery=after_delivery)
    with pytest.raises(SimulatedCrash):
        await make_sender(sdb, first, fake).drain_once()
    assert 0 < len(first.deliveries) < 60

    second = RecordingTransport(fake.clock)
    await make_sender(sdb, second, fake).drain_once()
    assert await counts(sdb) == {"sent": 60}
    return first, second


async def test_crash_before_the_platform_got_it_repeats_nothing(sdb: Database, fake: FakeTime) -> None:
    first, second = await crash_then_recover(sdb, fake, after_delivery=False)
    delivered = Counter(d.item.id for d in first.deliveries + second.deliveries)
    assert len(delivered) == 60
    assert set(delivered.values()) == {1}


async def test_crash_after_the_platform_got_it_repeats_exactly_that_message(
    sdb: Database, fake: FakeTime
) -> None:
    first, second = await crash_then_recover(sdb, fake, after_delivery=True)
    crashed_item = first.attempts[24][0]
    delivered = Counter(d.item.id for d in first.deliveries + second.deliveries)
    assert len(delivered) == 60
    assert [i for i, n in delivered.items() if n > 1] == [crashed_item.id]
    assert delivered[crashed_item.id] == 2
    # Even across the crash each chat saw its messages in order (the repeat aside).
    texts = texts_by_chat(first)
    for chat_id, later in texts_by_chat(second).items():
        seen = [t for t in texts.get(chat_id, []) if t != crashed_item.payload["text"]]
        numbers = [int(t[1:]) for t in seen + later]
        assert numbers == sorted(numbers)


async def test_cancelled_run_loses_and_repeats_nothing(sdb: Database, fake: FakeTime) -> None:
    await enqueue(sdb, [(str(n % 100 + 1), f"m{n}") for n in range(200)])
    first = RecordingTransport()
    limiter = fast_limiter()
    sender = OutboxSender(sdb, first, limiter=limiter, concurrency=8)
    task = asyncio.create_task(sender.run())
    async with asyncio.timeout(30):
        await first.wait_for_deliveries(50)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(first.deliveries) < 200
    await asyncio.sleep(0)  # the done callbacks of deliveries cancelled before they ran
    assert limiter.in_flight == 0  # abandoned deliveries no longer count as in flight
    # Whatever the platform got was recorded as sent before the sender let go.
    assert (await counts(sdb)).get("sent") == len(first.deliveries)

    second = RecordingTransport(fake.clock)
    await make_sender(sdb, second, fake).drain_once()
    delivered = Counter(d.item.id for d in first.deliveries + second.deliveries)
    assert len(delivered) == 200
    assert set(delivered.values()) == {1}


class SlowTransport(RecordingTransport):
    """Every request takes ``latency`` of fake time; ``spans`` holds (start, end) of each."""

    def __init__(self, clock: FakeTime, latency: float) -> None:
        super().__init__(clock.clock)
        self._fake = clock
        self._latency = latency
        self.spans: list[tuple[float, float]] = []

    async def deliver(self, item: OutboxItem) -> str | None:
        start = self._fake.t
        try:
            return await super().deliver(item)
        finally:
            await self._fake.sleep(self._latency)
            self.spans.append((start, self._fake.t))


async def test_a_send_counts_until_a_window_after_its_request_completed(
    sdb: Database, fake: FakeTime
) -> None:
    """Telegram counts a message when it arrives, anywhere between the request's start and
    its end: for each send, fewer than 30 of those started before it ended less than a
    second before it started, so no one-second window there can hold 31."""
    await enqueue(sdb, [(str(n), f"m{n}") for n in range(200)])
    transport = SlowTransport(fake, latency=0.05)
    limiter = RateLimiter(fake.clock)
    assert await make_sender(sdb, transport, fake, limiter=limiter).drain_once() == 200
    spans = sorted(transport.spans)
    for i, (start, _) in enumerate(spans):
        near = [end for _, end in spans[:i] if end + limiter.global_window.seconds > start]
        assert len(near) < limiter.global_window.limit, f"send {i}: {len(near)} could arrive near it"
    assert limiter.in_flight == 0


# -- run() ------------------------------------------------------------------------------------


async def test_wake_delivers_at_once_without_waiting_for_a_poll(sdb: Database) -> None:
    transport = RecordingTransport()
    sender = OutboxSender(sdb, transport, limiter=fast_limiter(), poll_interval=3600)
    task = asyncio.create_task(sender.run())
    try:
        await asyncio.sleep(0)  # let run() reach its wait; it finds nothing due
        await enqueue(sdb, [("1", "hello")])
        sender.wake()
        async with asyncio.timeout(10):  # a safety net: wake() must not wait for the hour
            await transport.wait_for_deliveries(1)
    finally:
        sender.stop()
        await task
    assert texts_by_chat(transport) == {"1": ["hello"]}
    assert await counts(sdb) == {"sent": 1}


async def test_run_delivers_bursts_enqueued_while_it_runs_exactly_once(sdb: Database) -> None:
    transport = RecordingTransport()
    sender = OutboxSender(sdb, transport, limiter=fast_limiter(), poll_interval=3600, batch=30)
    task = asyncio.create_task(sender.run())
    sent: list[tuple[str, str]] = []
    try:
        for burst in range(10):
            messages = [(str(n % 37 + 1), f"b{burst}-{n}") for n in range(20)]
            await enqueue(sdb, messages)
            sent.extend(messages)
            sender.wake()
            await asyncio.sleep(0)
        async with asyncio.timeout(30):
            await transport.wait_for_deliveries(200)
    finally:
        sender.stop()
        await task
    assert len(transport.deliveries) == 200
    assert len({d.item.id for d in transport.deliveries}) == 200
    expected: defaultdict[str, list[str]] = defaultdict(list)
    for chat_id, text in sent:
        expected[chat_id].append(text)
    assert texts_by_chat(transport) == expected
    assert await counts(sdb) == {"sent": 200}


# -- both databases ---------------------------------------------------------------------------


async def test_outcomes_on_sqlite_and_postgres(db: Database, fake: FakeTime) -> None:
    """The sender's own queries (skipping held chats, deferring a chat) on both databases."""
    (user,) = await add_users(db, 1)
    await enqueue(db, [("1", "x1"), ("1", "x2"), ("2", "y1"), ("3", "z1"), ("3", "z2")], user_ids={"1": user})
    transport = RecordingTransport(fake.clock)
    transport.fail("1", RecipientGone("user is deactivated"))
    transport.fail("2", RetryLater(30))
    sender = make_sender(db, transport, fake, batch=2)

    assert await sender.drain_once() == 4
    await fake.sleep(31)
    assert await sender.drain_once() == 1
    assert {Outgoing.from_json(r.payload).text: r.status for r in await rows(db)} == {
        "x1": "blocked",
        "x2": "blocked",
        "y1": "sent",
        "z1": "sent",
        "z2": "sent",
    }
    assert texts_by_chat(transport) == {"3": ["z1", "z2"], "2": ["y1"]}
