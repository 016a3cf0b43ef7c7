"""The contract between the outbox sender and a channel: deliver one item, or say why not.

A channel's Transport turns its platform's errors into these exceptions:

- ``RetryLater(seconds)``: the platform asked us to wait (Telegram 429 ``retry_after``);
  ``all_chats=True`` when the wait applies to the whole bot, not just this chat.
- ``RecipientGone(reason)``: the person blocked the bot, was deactivated, the bot was
  kicked, or the chat does not exist (Telegram 403, 400 "chat not found").
  Nothing more is sent to that chat.
- ``PermanentFailure(reason)``: the message itself is wrong (other 400s); retrying
  would fail again.
- any other ``Exception``: transient (network, 5xx); retried with backoff.

A ``BaseException`` that is not an ``Exception`` (cancellation, shutdown) is not an
outcome: the item stays pending and is delivered again later.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from storage.outbox import OutboxItem


class Transport(Protocol):
    async def deliver(self, item: OutboxItem) -> str | None:
        """Send the item; return the platform's message id when it has one."""
        ...


class DeliveryError(Exception):
    """Base of the failures a Transport reports."""


class RetryLater(DeliveryError):
    def __init__(self, seconds: float, *, all_chats: bool = False) -> None:
        super().__init__(f"retry after {seconds:g}s" + (" (whole bot)" if all_chats else ""))
        self.seconds = seconds
        self.all_chats = all_chats


class RecipientGone(DeliveryError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PermanentFailure(DeliveryError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Delivery:
    item: OutboxItem
    at: float  # the transport's clock when it was delivered
    message_id: str


@dataclass(slots=True)
class _Scripted:
    error: BaseException
    after_delivery: bool  # deliver first, then raise: "sent, but we never heard back"


class RecordingTransport:
    """Test double: records what it delivers and raises what it is told to.

    ``attempts`` holds every call (item, time), failed or not; ``deliveries`` only the
    ones that reached the recipient.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.attempts: list[tuple[OutboxItem, float]] = []
        self.deliveries: list[Delivery] = []
        self._by_chat: defaultdict[str, deque[_Scripted]] = defaultdict(deque)
        self._by_call: dict[int, _Scripted] = {}
        self._changed = asyncio.Event()

    def fail(self, chat_id: str, *errors: BaseException, after_delivery: bool = False) -> None:
        """Raise these, one per attempt, on the next attempts to ``chat_id``."""
        self._by_chat[chat_id].extend(_Scripted(e, after_delivery) for e in errors)

    def fail_call(self, number: int, error: BaseException, *, after_delivery: bool = False) -> None:
        """Raise ``error`` on the ``number``-th call overall (1-based)."""
        self._by_call[number] = _Scripted(error, after_delivery)

    async def deliver(self, item: OutboxItem) -> str | None:
        # One suspension point, as a real network call has, so deliveries interleave.
        await asyncio.sleep(0)
        self.attempts.append((item, self._clock()))
        scripted = self._by_call.pop(len(self.attempts), None)
        if scripted is None and self._by_chat[item.chat_id]:
            scripted = self._by_chat[item.chat_id].popleft()
        if scripted is None or scripted.after_delivery:
            message_id = self._record(item)
            if scripted is None:
                return message_id
        raise scripted.error

    def texts(self, chat_id: str) -> list[str]:
        return [d.item.message.text for d in self.deliveries if d.item.chat_id == chat_id]

    async def wait_for_deliveries(self, count: int) -> None:
        """Return once ``count`` deliveries have been recorded."""
        while len(self.deliveries) < count:
            self._changed.clear()
            await self._changed.wait()

    def _record(self, item: OutboxItem) -> str:
        message_id = str(len(self.deliveries) + 1)
        self.deliveries.append(Delivery(item, self._clock(), message_id))
        self._changed.set()
        return message_id
