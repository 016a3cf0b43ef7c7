"""A test double for a channel's Transport: records deliveries, raises what it is told to."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

from storage.outbox import OutboxItem


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
        return [d.item.payload["text"] for d in self.deliveries if d.item.chat_id == chat_id]

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
