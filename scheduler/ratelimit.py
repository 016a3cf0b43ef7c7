"""Telegram's sending limits as a pure limiter: the caller supplies the clock.

Every limit is one rule, "at most ``limit`` sends in any ``seconds``-long window",
checked against a log of the last ``limit`` send times (a sliding-window log). One
rule for all three limits keeps the proof to one line: a send is allowed only when
the ``limit``-th most recent send is at least ``seconds`` old, so no half-open
window of that length can ever hold ``limit + 1`` sends.

- overall: ``global_per_second`` sends in any 1 s;
- a group chat: ``group_per_minute`` sends in any 60 s;
- a private chat: ``private_burst`` sends in any ``private_burst * per_chat_interval``
  seconds. With the defaults (3 in 3 s) a short run of messages, say a
  confirmation and the reminder after it, goes out at once and the average
  stays at 1/s. A token bucket would space the follow-ups at exactly 1/s, but
  it would be a second mechanism with its own proof; Telegram tolerates short
  bursts either way.

A safety ``margin`` (seconds) lengthens the overall window: the limiter counts when a
request leaves, Telegram when it arrives, and two requests a window apart here can
arrive less than a window apart there when the first one was delayed more (a busy
event loop, a slow connection). With the default 40 ms, 30 per 1.04 s is 28.8/s, 96%
of Telegram's 30/s, and bench/notices.py meets no 429 from a server that enforces 30
in any one-second window; with no margin it meets some.

A 429 adds a hold on top of the windows: ``penalise`` for one chat, ``penalise_all``
for a flood wait on the whole bot.

Memory stays bounded: a chat's state is dropped once its window and hold have
passed, tracked by a heap of expiry times. The heap gets one entry per send or
penalty, and entries leave it when they expire, so it holds at most what the
global limit lets through in the longest window (plus active penalties).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]

# Seconds added to the overall one-second window (see the module docstring).
DEFAULT_MARGIN = 0.04


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

    def wait(self, log: deque[float], now: float) -> float:
        """Seconds until one more send fits; ``log`` holds the last ``limit`` send times."""
        if len(log) < self.limit:
            return 0.0
        return max(0.0, log[0] + self.seconds - now)


@dataclass(slots=True)
class _Chat:
    window: Window
    log: deque[float]
    hold_until: float = -math.inf

    @classmethod
    def new(cls, window: Window) -> _Chat:
        return cls(window, deque(maxlen=window.limit))

    def expires_at(self) -> float:
        """After this time the state says nothing a fresh one would not."""
        last = self.log[-1] + self.window.seconds if self.log else -math.inf
        return max(last, self.hold_until)


@dataclass(slots=True)
class _Global:
    window: Window
    log: deque[float] = field(init=False)
    hold_until: float = -math.inf

    def __post_init__(self) -> None:
        self.log = deque(maxlen=self.window.limit)


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
        self._global = _Global(self.global_window)
        self._chats: dict[str, _Chat] = {}
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
                delay = max(delay, chat.window.wait(chat.log, now))
        return max(0.0, delay)

    def record(self, chat_key: str, is_group: bool) -> None:
        """A message to this chat was sent (call it only when ``delay_for`` said 0)."""
        now = self._clock()
        self._prune(now)
        self._global.log.append(now)
        chat = self._chat(chat_key, self.window_for(is_group))
        chat.log.append(now)
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

    def _global_delay(self, now: float) -> float:
        state = self._global
        return max(0.0, state.hold_until - now, state.window.wait(state.log, now))

    def _chat(self, chat_key: str, window: Window | None) -> _Chat:
        """The chat's state, created if needed; ``None`` keeps the kind it has."""
        chat = self._chats.get(chat_key)
        if chat is None:
            # A chat first seen through a penalty gets the private window; record() corrects it.
            chat = self._chats[chat_key] = _Chat.new(window or self.private_window)
        elif window is not None and chat.window != window:
            # The chat changed kind (rare); keep its recent sends under the new rule.
            chat.window = window
            chat.log = deque(chat.log, maxlen=window.limit)
        return chat

    def _track(self, chat_key: str, chat: _Chat) -> None:
        heapq.heappush(self._expiry, (chat.expires_at(), chat_key))

    def _prune(self, now: float) -> None:
        # Each chat's newest heap entry carries its current expiry, so the chat is
        # dropped exactly when that entry comes up; older entries find it still live.
        while self._expiry and self._expiry[0][0] <= now:
            _, key = heapq.heappop(self._expiry)
            chat = self._chats.get(key)
            if chat is not None and chat.expires_at() <= now:
                del self._chats[key]
