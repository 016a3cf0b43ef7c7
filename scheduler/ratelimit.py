"""Telegram's sending limits as a pure limiter: the caller supplies the clock.

Every limit is one rule, "at most ``limit`` sends in any ``seconds``-long window",
where a send counts from the moment its request starts until ``seconds`` after it
completed: a send is allowed only when fewer than ``limit`` sends are in flight or
completed within the last ``seconds``.

Why completion: Telegram counts a message when the request arrives, which is some
moment between the start (``begin``) and the completion (``end``) that we see, later
by however long the network and a busy event loop delay it. Counting only the start
let two sends a window apart here arrive less than a window apart there. The proof
that no window there ever holds ``limit + 1``: take such a window and, of its
``limit + 1`` sends, the one that started last, Y. Each other one arrived less than
``seconds`` before Y arrived, so after ``start(Y) - seconds``; it completed after it
arrived; so at Y's start it was in flight or had completed within the last
``seconds``: ``limit`` of them, and Y would not have been allowed. No margin is
needed, and the price is only the requests' duration: ``limit`` sends per
``seconds`` plus one request's round trip (a few ms; the old fixed 40 ms margin cost
more and still let some through).

- overall: ``global_per_second`` sends in any 1 s;
- a group chat: ``group_per_minute`` sends in any 60 s;
- a private chat: ``private_burst`` sends in any ``private_burst * per_chat_interval``
  seconds. With the defaults (3 in 3 s) a short run of messages, say a
  confirmation and the reminder after it, goes out at once and the average
  stays at 1/s. A token bucket would space the follow-ups at exactly 1/s, but
  it would be a second mechanism with its own proof; Telegram tolerates short
  bursts either way.

``begin`` returns a ``Send`` whose ``end`` must be called when the request completes
(whatever its outcome, or when it is abandoned). ``record`` is a send whose start and
completion are the same moment, for callers that do not report completion (it
counts from the start only, so it has the old gap).

An optional ``margin`` (seconds) lengthens the overall window further; the default is
none.

A 429 adds a hold on top of the windows: ``penalise`` for one chat, ``penalise_all``
for a flood wait on the whole bot.

Memory stays bounded: a chat's state is dropped once nothing of it is in flight and
its window and hold have passed, tracked by a heap of expiry times. The heap gets one
entry per completed send or penalty, and entries leave it when they expire, so it
holds at most what the global limit lets through in the longest window (plus active
penalties).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]

# Seconds added to the overall one-second window (see the module docstring).
DEFAULT_MARGIN = 0.0


def limiter_key(channel: str, chat_id: str) -> str:
    """The key a chat has in the limiter, the same for direct replies and the outbox."""
    return f"{channel}:{chat_id}"


@dataclass(frozen=True, slots=True)
class Window:
    """At most ``limit`` sends in any ``seconds``-long window."""

    limit: int
    seconds: float

    @classmethod
    def per_second(cls, rate: float) -> Window:
        # Whole messages per second; a rate below 1/s becomes one per 1/rate seconds.
        if rate >= 1:
            return cls(math.floor(rate), 1.0)
        return cls(1, 1.0 / rate)

    def wait(self, ends: deque[float], in_flight: int, now: float) -> float:
        """Seconds until one more send fits, assuming the sends in flight stay in flight
        (a lower bound: ask again after it). ``ends`` holds the last ``limit``
        completion times, oldest first."""
        free = self.limit - in_flight  # sends completed within the window that still fit
        if free <= 0:
            return self.seconds  # one must complete first, and then it counts a window
        if len(ends) < free:
            return 0.0
        return max(0.0, ends[-free] + self.seconds - now)


@dataclass(slots=True)
class _Log:
    """What one limit needs: the sends in flight and the last completion times."""

    window: Window
    ends: deque[float] = field(init=False)
    in_flight: int = 0
    hold_until: float = -math.inf

    def __post_init__(self) -> None:
        self.ends = deque(maxlen=self.window.limit)

    def wait(self, now: float) -> float:
        return self.window.wait(self.ends, self.in_flight, now)

    def rewindow(self, window: Window) -> None:
        # The chat changed kind (rare); keep its recent sends under the new rule.
        self.window = window
        self.ends = deque(self.ends, maxlen=window.limit)

    def expires_at(self) -> float:
        """After this time the state says nothing a fresh one would not."""
        if self.in_flight:
            return math.inf
        last = self.ends[-1] + self.window.seconds if self.ends else -math.inf
        return max(last, self.hold_until)


class Send:
    """A send counted from ``begin`` until its ``end`` (call it once the request completed)."""

    __slots__ = ("_chat", "_key", "_limiter")

    def __init__(self, limiter: RateLimiter, key: str, chat: _Log) -> None:
        self._limiter: RateLimiter | None = limiter
        self._key = key
        self._chat = chat

    def end(self) -> None:
        """The request completed (or failed, or was abandoned). Calling it again does nothing."""
        if self._limiter is not None:
            limiter, self._limiter = self._limiter, None
            limiter._end(self._key, self._chat)


class RateLimiter:
    """Decides when the next message to a chat may go. Not thread-safe; one event loop."""

    def __init__(
        self,
        clock: Clock,
        *,
        global_per_second: float = 30.0,
        per_chat_interval: float = 1.0,
        group_per_minute: int = 20,
        private_burst: int = 3,
        margin: float = DEFAULT_MARGIN,
    ) -> None:
        if global_per_second <= 0 or per_chat_interval <= 0:
            raise ValueError("rates and intervals must be positive")
        if margin < 0:
            raise ValueError("margin must not be negative")
        if group_per_minute < 1 or private_burst < 1:
            raise ValueError("group_per_minute and private_burst must be at least 1")
        self._clock = clock
        base = Window.per_second(global_per_second)
        self.global_window = Window(base.limit, base.seconds + margin)
        self.private_window = Window(private_burst, private_burst * per_chat_interval)
        self.group_window = Window(group_per_minute, 60.0)
        self._global = _Log(self.global_window)
        self._chats: dict[str, _Log] = {}
        self._expiry: list[tuple[float, str]] = []

    def window_for(self, is_group: bool) -> Window:
        return self.group_window if is_group else self.private_window

    def global_delay(self) -> float:
        """Seconds until any message at all may go (the overall limit or a flood wait)."""
        now = self._clock()
        self._prune(now)
        return self._global_delay(now)

    def delay_for(self, chat_key: str, is_group: bool, *, chat_window: bool = True) -> float:
        """Seconds until a message to this chat may go; 0.0 means now.

        ``chat_window=False`` leaves out the chat's own window (the overall limit and
        any 429 hold still count): for a reply to a person who waits for each answer.
        """
        now = self._clock()
        self._prune(now)
        delay = self._global_delay(now)
        chat = self._chats.get(chat_key)
        if chat is not None:
            delay = max(delay, chat.hold_until - now)
            if chat_window:
                delay = max(delay, chat.wait(now))
        return max(0.0, delay)

    def begin(self, chat_key: str, is_group: bool) -> Send:
        """A message to this chat starts now (call it only when ``delay_for`` said 0); it
        counts until ``seconds`` after the returned ``Send``'s ``end``."""
        self._prune(self._clock())
        chat = self._chat(chat_key, self.window_for(is_group))
        self._global.in_flight += 1
        chat.in_flight += 1
        # No heap entry while in flight: the chat cannot expire before its end().
        return Send(self, chat_key, chat)

    def record(self, chat_key: str, is_group: bool) -> None:
        """A message to this chat is sent now and counted from now, as if its request
        completed at once (for callers that cannot report the completion)."""
        self.begin(chat_key, is_group).end()

    def _end(self, chat_key: str, chat: _Log) -> None:
        now = self._clock()
        self._prune(now)
        for log in (self._global, chat):
            log.in_flight -= 1
            log.ends.append(now)
        self._track(chat_key, chat)

    def penalise(self, chat_key: str, seconds: float) -> None:
        """A 429 for this chat: nothing goes to it for ``seconds``."""
        now = self._clock()
        self._prune(now)
        chat = self._chat(chat_key, None)
        chat.hold_until = max(chat.hold_until, now + seconds)
        self._track(chat_key, chat)

    def lift(self, chat_key: str) -> None:
        """The chat's hold no longer applies: the platform lets us write to it again
        (WeChat: the person wrote, reopening the 48-hour window)."""
        chat = self._chats.get(chat_key)
        if chat is not None:
            chat.hold_until = -math.inf

    def penalise_all(self, seconds: float) -> None:
        """A flood wait for the whole bot: nothing goes anywhere for ``seconds``."""
        now = self._clock()
        self._global.hold_until = max(self._global.hold_until, now + seconds)

    @property
    def tracked_chats(self) -> int:
        """How many chats have state (for tests and metrics: it must not grow forever)."""
        self._prune(self._clock())
        return len(self._chats)

    @property
    def in_flight(self) -> int:
        """Sends begun and not yet ended."""
        return self._global.in_flight

    def _global_delay(self, now: float) -> float:
        state = self._global
        return max(0.0, state.hold_until - now, state.wait(now))

    def _chat(self, chat_key: str, window: Window | None) -> _Log:
        """The chat's state, created if needed; ``None`` keeps the kind it has."""
        chat = self._chats.get(chat_key)
        if chat is None:
            # A chat first seen through a penalty gets the private window; begin() corrects it.
            chat = self._chats[chat_key] = _Log(window or self.private_window)
        elif window is not None and chat.window != window:
            chat.rewindow(window)
        return chat

    def _track(self, chat_key: str, chat: _Log) -> None:
        if (at := chat.expires_at()) < math.inf:  # in flight: its end() tracks it
            heapq.heappush(self._expiry, (at, chat_key))

    def _prune(self, now: float) -> None:
        # Each chat's newest heap entry carries its current expiry, so the chat is
        # dropped exactly when that entry comes up; older entries find it still live.
        # A chat in flight expires at infinity; its end() pushes the entry that drops it.
        while self._expiry and self._expiry[0][0] <= now:
            _, key = heapq.heappop(self._expiry)
            chat = self._chats.get(key)
            if chat is not None and chat.expires_at() <= now:
                del self._chats[key]
