"""The rate limiter: table tests for each limit, and a property over any sequence of sends."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.ratelimit import RateLimiter, Send, Window


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def send(limiter: RateLimiter, key: str, is_group: bool, times: int = 1) -> None:
    for _ in range(times):
        assert limiter.delay_for(key, is_group) == 0
        limiter.record(key, is_group)


@pytest.mark.parametrize(
    ("is_group", "sends_at_zero", "elapsed", "expected_delay"),
    [
        (False, 0, 0.0, 0.0),  # nothing sent yet
        (False, 2, 0.0, 0.0),  # inside the burst of 3
        (False, 3, 0.0, 3.0),  # burst used: the oldest must be 3 s old
        (False, 3, 1.0, 2.0),
        (False, 3, 3.0, 0.0),  # exactly one window later
        (True, 19, 0.0, 0.0),
        (True, 20, 0.0, 60.0),  # 20 per minute in a group
        (True, 20, 45.0, 15.0),
        (True, 20, 60.0, 0.0),
    ],
)
def test_chat_windows(is_group: bool, sends_at_zero: int, elapsed: float, expected_delay: float) -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    send(limiter, "chat", is_group, sends_at_zero)
    clock.t = elapsed
    assert limiter.delay_for("chat", is_group) == pytest.approx(expected_delay)


def test_global_limit_applies_across_chats() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock, margin=0.0)
    for n in range(30):
        send(limiter, f"chat{n}", False)
    assert limiter.global_delay() == pytest.approx(1.0)
    assert limiter.delay_for("someone-new", False) == pytest.approx(1.0)
    clock.t = 0.5
    assert limiter.delay_for("someone-new", True) == pytest.approx(0.5)
    clock.t = 1.0
    assert limiter.delay_for("someone-new", False) == 0


def test_a_send_counts_until_a_window_after_it_completes() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    sends = [limiter.begin(f"chat{n}", False) for n in range(30)]
    # All 30 in flight: none may go until one completes, and then a window later.
    assert limiter.global_delay() == pytest.approx(1.0)
    clock.t = 0.25
    sends[0].end()
    sends[0].end()  # twice is once
    assert limiter.in_flight == 29
    assert limiter.global_delay() == pytest.approx(1.0)  # it counts until 1.25
    clock.t = 1.0
    assert limiter.global_delay() == pytest.approx(0.25)
    clock.t = 1.25
    assert limiter.global_delay() == 0
    assert limiter.delay_for("chat0", False) == 0  # its chat window: 1 of 3


def test_a_request_arriving_late_cannot_overfill_the_servers_window() -> None:
    """What the start-only log got wrong: 30 sends start at 0 and arrive at 0.3 (a slow
    request); a send starting at 1.0 arrives at once. Counted from the completions
    (0.3), the 31st waits until 1.3, so no one-second window there holds 31."""
    clock = FakeClock()
    limiter = RateLimiter(clock)
    sends = [limiter.begin(f"chat{n}", False) for n in range(30)]
    clock.t = 0.3
    for s in sends:
        s.end()
    clock.t = 1.0
    assert limiter.global_delay() == pytest.approx(0.3)


def test_a_chat_in_flight_is_kept_however_long() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    send_ = limiter.begin("slow", False)
    limiter.penalise("slow", 1)
    clock.t = 100
    assert limiter.tracked_chats == 1
    send_.end()
    assert limiter.delay_for("slow", False) == 0  # 1 of its 3
    clock.t = 103
    assert limiter.tracked_chats == 0
    assert limiter.in_flight == 0


def test_chat_penalty_holds_only_that_chat() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    limiter.penalise("a", 10)
    limiter.penalise("a", 2)  # a shorter retry_after never shortens the hold
    assert limiter.delay_for("a", False) == pytest.approx(10)
    assert limiter.delay_for("b", False) == 0
    clock.t = 10
    assert limiter.delay_for("a", False) == 0


def test_global_penalty_holds_everything() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    limiter.penalise_all(7)
    assert limiter.delay_for("a", False) == pytest.approx(7)
    assert limiter.delay_for("g", True) == pytest.approx(7)
    clock.t = 7
    assert limiter.global_delay() == 0


def test_state_is_dropped_once_expired() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    for n in range(1000):
        clock.t = n * 0.05
        send(limiter, f"user{n}", False)
    # Only chats written to in the last private window (3 s) are still tracked.
    assert limiter.tracked_chats <= 61
    send(limiter, "group", True)
    limiter.penalise("slow", 120)
    clock.t += 61
    assert limiter.tracked_chats == 1  # the penalty is still running
    clock.t += 60
    assert limiter.tracked_chats == 0


def test_a_chat_changing_kind_keeps_its_recent_sends() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    send(limiter, "c", False, 3)
    limiter.record("c", True)  # now a group: 4 sends in the last minute, under 20
    assert limiter.delay_for("c", True) == 0


@pytest.mark.parametrize(
    ("rate", "window"),
    [(30.0, Window(30, 1.0)), (30.9, Window(30, 1.0)), (0.5, Window(1, 2.0))],
)
def test_window_per_second(rate: float, window: Window) -> None:
    assert Window.per_second(rate) == window


@pytest.mark.parametrize(
    "kwargs",
    [{"global_per_second": 0}, {"per_chat_interval": -1}, {"group_per_minute": 0}, {"private_burst": 0}],
)
def test_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RateLimiter(FakeClock(), **kwargs)  # type: ignore[arg-type]


# -- the property ----------------------------------------------------------------------------

CONFIGS = [
    {},  # Telegram's defaults
    {"global_per_second": 5, "group_per_minute": 4, "private_burst": 2, "per_chat_interval": 0.7},
    {"global_per_second": 2.5, "group_per_minute": 1, "private_burst": 1},
]
GROUPS = {"c0", "c1"}

operation = st.tuples(
    st.floats(0, 4, allow_nan=False),  # time passing before it
    st.sampled_from([f"c{n}" for n in range(6)]),
    # "try" and "wait_then_send" complete at once; "begin" stays in flight until an "end".
    st.sampled_from(["try", "wait_then_send", "begin", "end", "penalise", "penalise_all"]),
    st.floats(0, 20, allow_nan=False),  # penalty length
)


@dataclass
class Sent:
    start: float
    key: str
    end: float = math.inf  # in flight
    handle: Send | None = None


def counting(sends: list[Sent], now: float, seconds: float) -> list[Sent]:
    """The sends that still count at ``now``: in flight, or completed within ``seconds``."""
    return [s for s in sends if s.end + seconds > now]


def would_break_a_limit(
    limiter: RateLimiter,
    now: float,
    key: str,
    sends: list[Sent],
    holds: dict[str, float],
) -> bool:
    """An oracle independent of the limiter's state: would one more send now break a rule?"""
    window = limiter.window_for(key in GROUPS)
    recent_all = counting(sends, now, limiter.global_window.seconds)
    recent_chat = counting([s for s in sends if s.key == key], now, window.seconds)
    return (
        now < holds.get("*", -1.0)
        or now < holds.get(key, -1.0)
        or len(recent_all) >= limiter.global_window.limit
        or len(recent_chat) >= window.limit
    )


def assert_no_arrivals_overfull(sends: list[Sent], window: Window) -> None:
    """Whenever each request reaches the server between its start and its end, no
    half-open window of ``window.seconds`` there holds ``limit + 1``: for every send Y,
    fewer than ``limit`` of those started before it could arrive within a window of it
    (they completed after ``Y.start - seconds``)."""
    for i, y in enumerate(sends):
        near = [s for s in sends[:i] if s.end + window.seconds > y.start]
        assert len(near) < window.limit, f"{len(near) + 1} sends could arrive within {window.seconds}s"


def assert_no_window_overfull(times: list[float], window: Window) -> None:
    # limit + 1 sends in a half-open window [a, a + seconds) would need the send
    # ``limit`` places later to come before a + seconds.
    for a, b in zip(times, times[window.limit :], strict=False):
        assert a + window.seconds <= b


@settings(max_examples=400, deadline=None, database=None)
@given(config=st.sampled_from(CONFIGS), ops=st.lists(operation, max_size=200))
def test_sends_allowed_never_exceed_any_limit(
    config: dict[str, float], ops: list[tuple[float, str, str, float]]
) -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock, **config)  # type: ignore[arg-type]
    sends: list[Sent] = []
    holds: dict[str, float] = {}
    for dt, key, op, seconds in ops:
        clock.t += dt
        is_group = key in GROUPS
        if op in ("try", "wait_then_send", "begin"):
            delay = limiter.delay_for(key, is_group)
            # Exact: it says "wait" precisely when a send now would break a rule.
            assert (delay > 0) == would_break_a_limit(limiter, clock.t, key, sends, holds)
            if op == "wait_then_send":
                for _ in range(3):  # float rounding may leave one tiny step
                    clock.t += delay
                    delay = limiter.delay_for(key, is_group)
                # A lower bound while sends are in flight; exact when none is.
                assert delay == 0 or any(s.end == math.inf for s in sends)
            if delay == 0:
                if op == "begin":
                    sends.append(Sent(clock.t, key, handle=limiter.begin(key, is_group)))
                else:
                    limiter.record(key, is_group)
                    sends.append(Sent(clock.t, key, clock.t))
        elif op == "end":
            in_flight = [s for s in sends if s.handle is not None and s.end == math.inf]
            if in_flight:
                done = in_flight[hash(key) % len(in_flight)]
                assert done.handle is not None
                done.handle.end()
                done.end = clock.t
        elif op == "penalise":
            limiter.penalise(key, seconds)
            holds[key] = max(holds.get(key, -1.0), clock.t + seconds)
        else:
            limiter.penalise_all(seconds)
            holds["*"] = max(holds.get("*", -1.0), clock.t + seconds)

    assert_no_arrivals_overfull(sends, limiter.global_window)
    assert_no_window_overfull([s.start for s in sends], limiter.global_window)
    per_chat: defaultdict[str, list[Sent]] = defaultdict(list)
    for s in sends:
        per_chat[s.key].append(s)
    for key, chat_sends in per_chat.items():
        assert_no_arrivals_overfull(chat_sends, limiter.window_for(key in GROUPS))
        assert_no_window_overfull([s.start for s in chat_sends], limiter.window_for(key in GROUPS))

    # Bounded memory: once every send has ended and every window and hold has passed,
    # nothing is kept.
    for s in sends:
        if s.handle is not None:
            s.handle.end()
    assert limiter.in_flight == 0
    clock.t += 60 + 20 + 1
    assert limiter.tracked_chats == 0


def test_margin_lengthens_the_overall_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock, margin=0.04)
    for n in range(30):
        send(limiter, f"chat{n}", False)
    assert limiter.global_delay() == pytest.approx(1.04)
    clock.t = 1.0
    assert limiter.delay_for("someone-new", False) == pytest.approx(0.04)
    # Still at least 95% of Telegram's 30/s.
    assert limiter.global_window.limit / limiter.global_window.seconds >= 0.95 * 30


def test_lift_ends_a_chats_hold_only() -> None:
    now = [0.0]
    limiter = RateLimiter(lambda: now[0])
    limiter.penalise("wechat:a", 3600)
    limiter.penalise("wechat:b", 3600)
    limiter.lift("wechat:a")
    limiter.lift("wechat:unknown")  # nothing to lift: no error
    assert limiter.delay_for("wechat:a", False) == 0.0
    assert limiter.delay_for("wechat:b", False) == 3600
