"""Delivers the persisted outbox through a channel's Transport, at the platform's limits.

Scheduling:

- Due rows are fetched into per-chat queues in memory, at most ``_CHAT_QUEUE`` per chat;
  the rest stays in the database until that chat's queue drains. Chats already held in
  memory are left out of later fetches, so one busy chat never fills a batch.
- A chat has at most one message in flight and its queue is in due order
  (``not_before``, then id), so every chat gets its messages in order.
- A chat the limiter holds back waits while other chats go ahead: no head-of-line
  blocking. At most ``concurrency`` deliveries run at once.
- After a retry (429 or a transient error) the chat's later messages are moved just
  behind the retried one in the database, so the order survives the wait.

Crash safety is at-least-once: a row is marked sent only after the transport returned.
If the process dies between the transport returning and mark_sent committing, that one
message is delivered again after the restart (one per delivery in flight, so at most
``concurrency``). Nothing is lost: every row not marked stays pending and is fetched
again. A failure to record an outcome is handled the same way.

Rows are read once and held in memory until their turn (seconds; up to a minute for a
busy group), so a row cancelled or deleted in that time may still go out. Only one
sender may run per database: rows are not claimed, so two would send them twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduler.delivery import PermanentFailure, RecipientGone, RetryLater, Transport
from scheduler.ratelimit import RateLimiter, Send, limiter_key
from storage import outbox, users
from storage.engine import Database
from storage.models import utcnow
from storage.outbox import OutboxItem

log = logging.getLogger("linli.sender")

# How many of one chat's due messages are held in memory at a time.
_CHAT_QUEUE = 10

# 429s for two different chats within this many seconds pause every chat.
_FLOOD_WINDOW = 1.0

ChatKey = tuple[str, str]  # (channel, chat_id)
OnBlocked = Callable[[OutboxItem, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with "equal jitter": half the delay fixed, half random.

    The fixed half keeps retries from hammering a struggling platform; the random half
    keeps a batch that failed together from retrying together.
    """

    base: float = 2.0
    cap: float = 900.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        full = min(self.cap, self.base * 2 ** min(attempt - 1, 30))
        return full / 2 + rng.uniform(0, full / 2)


class OutboxSender:
    """Delivers pending outbox rows. Use either ``run()`` or ``drain_once()``, not both at once."""

    def __init__(
        self,
        db: Database,
        transport: Transport | Mapping[str, Transport],
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
        limiter: RateLimiter | None = None,
        concurrency: int = 8,
        batch: int = 100,
        max_attempts: int = 8,
        on_blocked: OnBlocked | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        backoff: Backoff = Backoff(),
        rng: random.Random | None = None,
        poll_interval: float = 5.0,
    ) -> None:
        if concurrency < 1 or batch < 1 or max_attempts < 1:
            raise ValueError("concurrency, batch and max_attempts must be at least 1")
        self._db = db
        # A mapping routes each item by its channel ("telegram", "terminal", ...).
        self._transport = _ByChannel(transport) if isinstance(transport, Mapping) else transport
        # With a mapping, only rows for those channels are taken; others wait for their channel.
        self._channels = frozenset(transport) if isinstance(transport, Mapping) else None
        self._now = now
        self._limiter = limiter or RateLimiter(clock)
        self._clock = clock
        self._recent_429s: deque[tuple[float, ChatKey]] = deque()
        self._concurrency = concurrency
        self._batch = batch
        self._max_attempts = max_attempts
        self._on_blocked = on_blocked
        self._sleep = sleep
        self._backoff = backoff
        self._rng = rng or random.Random()  # noqa: S311 -- jitter, not security
        # Rows added by other processes cannot call wake(); this is how long they may wait.
        self._poll_interval = poll_interval

        self._queues: dict[ChatKey, deque[OutboxItem]] = {}
        self._busy: set[ChatKey] = set()  # chats with a delivery in flight
        self._tasks: set[asyncio.Task[None]] = set()
        self._settling: set[asyncio.Task[None]] = set()
        self._event = asyncio.Event()
        self._fetch_needed = True
        self._stopping = False
        self._crash: BaseException | None = None
        self._handled = 0

    # -- public ---------------------------------------------------------------------------

    def wake(self) -> None:
        """New rows were committed: look for them now rather than at the next poll."""
        self._fetch_needed = True
        self._event.set()

    def stop(self) -> None:
        """Ask ``run()`` to return once the deliveries in flight have finished."""
        self._stopping = True
        self._event.set()

    async def run(self) -> None:
        """Deliver until ``stop()``. Cancelling it abandons the deliveries in flight
        (their rows stay pending) but lets outcomes already known be recorded."""
        try:
            while not self._stopping:
                self._raise_crash()
                self._event.clear()
                timeout = await self._plan()
                if self._stopping:
                    break
                try:
                    await asyncio.wait_for(self._event.wait(), timeout)
                except TimeoutError:
                    self._fetch_needed = True  # something may have come due, or been added
            if self._tasks:
                await asyncio.wait(set(self._tasks))
            self._raise_crash()
        finally:
            self._stopping = False
            await self._abandon()

    async def drain_once(self) -> int:
        """Deliver everything due now, waiting out the limiter with ``sleep``.

        Returns how many delivery attempts reached an outcome. Rows that come due while
        it waits on the limiter are delivered too; rows due later are left for the next
        call. Tests use it with a fake ``sleep`` for deterministic runs.
        """
        handled = self._handled
        self._fetch_needed = True
        try:
            while True:
                self._raise_crash()
                wait = await self._step()
                if self._tasks:
                    await asyncio.wait(set(self._tasks), return_when=asyncio.FIRST_COMPLETED)
                elif wait is not None:
                    await self._sleep(wait)
                elif not self._fetch_needed:
                    break
            self._raise_crash()
        finally:
            await self._abandon()
        return self._handled - handled

    # -- scheduling -----------------------------------------------------------------------

    async def _plan(self) -> float:
        """One round of run(): start what may go; return how long to wait for the next."""
        try:
            wait = await self._step()
            timeout = self._poll_interval if wait is None else min(wait, self._poll_interval)
            if not self._tasks:  # otherwise a finishing delivery wakes us first
                timeout = min(timeout, await self._until_next_due())
        except Exception:
            log.exception("outbox sender: scheduling failed; retrying after the poll interval")
            self._fetch_needed = True
            return self._poll_interval
        return timeout

    async def _step(self) -> float | None:
        """Start deliveries; fetch more rows when the ones held cannot keep us busy."""
        wait, saturated = self._dispatch()
        if self._fetch_needed and not saturated:
            await self._refill()
            wait, _ = self._dispatch()
        return wait

    def _dispatch(self) -> tuple[float | None, bool]:
        """Start a delivery for every held chat the limiter lets through, up to concurrency.

        Returns the seconds until a waiting chat may go (None when none waits on the
        limiter) and whether there is already more ready work than we can start.
        """
        if (wait := self._limiter.global_delay()) > 0:
            return wait, True
        soonest: float | None = None
        for key in list(self._queues):
            if key in self._busy:
                continue
            queue = self._queues[key]
            delay = self._limiter.delay_for(_limiter_key(key), queue[0].is_group)
            if delay > 0:
                soonest = delay if soonest is None else min(soonest, delay)
                continue
            if len(self._tasks) >= self._concurrency:
                return soonest, True
            self._start(key, queue.popleft())
            if not queue:
                del self._queues[key]
            if (wait := self._limiter.global_delay()) > 0:
                return wait, True
        return soonest, False

    async def _refill(self) -> None:
        self._fetch_needed = False
        skip = set(self._queues) | self._busy
        async with self._db.transaction() as session:
            items = await outbox.due(
                session, now=self._now(), limit=self._batch, skip=skip, channels=self._channels
            )
        for item in items:
            queue = self._queues.setdefault((item.channel, item.chat_id), deque())
            if len(queue) < _CHAT_QUEUE:
                queue.append(item)  # the rest is fetched once this chat's queue drains
        if len(items) == self._batch:
            self._fetch_needed = True  # there may be more

    async def _until_next_due(self) -> float:
        now = self._now()
        async with self._db.transaction() as session:
            at = await outbox.next_due_after(session, now, channels=self._channels)
        return self._poll_interval if at is None else (at - now).total_seconds()

    def _start(self, key: ChatKey, item: OutboxItem) -> None:
        # Counted before the first await, so no other dispatch can take the same slot;
        # it counts until a window after the request completes (scheduler/ratelimit.py).
        send = self._limiter.begin(_limiter_key(key), item.is_group)
        self._busy.add(key)
        task = asyncio.create_task(self._deliver(key, item, send), name=f"outbox-{item.id}")
        self._tasks.add(task)
        task.add_done_callback(self._on_done)
        # A task cancelled before it ran never reaches _deliver's end(); ending twice is harmless.
        task.add_done_callback(lambda _: send.end())

    def _on_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._event.set()
        if task.cancelled() or (exc := task.exception()) is None:
            return
        if isinstance(exc, Exception):  # a bug; the row stays pending and is tried again
            log.error("outbox: delivery task failed", exc_info=exc)
        else:  # the process is going down: let run() / drain_once() raise it
            self._crash = self._crash or exc

    def _raise_crash(self) -> None:
        if (exc := self._crash) is not None:
            self._crash = None
            raise exc

    async def _abandon(self) -> None:
        """Stop deliveries in flight (their rows stay pending) and forget what is held."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        if self._settling:
            await asyncio.wait(set(self._settling))
        self._queues.clear()
        self._busy.clear()
        self._crash = None
        self._fetch_needed = True

    # -- one delivery ---------------------------------------------------------------------

    async def _deliver(self, key: ChatKey, item: OutboxItem, send: Send) -> None:
        try:
            try:
                message_id, error = await self._transport.deliver(item), None
            except Exception as exc:
                message_id, error = None, exc
            finally:
                send.end()  # the platform has counted it by now (or never will)
            self._react(key, item, error)
            # The transport has answered: recording that must finish even if we are
            # cancelled now, or the message would be sent twice.
            settle = asyncio.create_task(self._settle(key, item, message_id, error))
            self._settling.add(settle)
            settle.add_done_callback(self._settling.discard)
            await asyncio.shield(settle)
        except BaseException:
            # Cancelled, crashing or a bug: the row stays pending (unless its outcome is
            # being recorded), and the chat's later messages must not overtake it.
            self._queues.pop(key, None)
            raise
        finally:
            self._busy.discard(key)
            if key not in self._queues:
                self._fetch_needed = True  # the chat may have more rows in the database
            self._event.set()

    def _react(self, key: ChatKey, item: OutboxItem, error: Exception | None) -> None:
        """What scheduling must know at once, before the outcome is committed."""
        if isinstance(error, RetryLater):
            seconds = max(0.0, error.seconds)
            self._limiter.penalise(_limiter_key(key), seconds)
            # Telegram does not say which limit a 429 is about. One chat's 429 holds that
            # chat only (its flood must not delay anyone else); 429s for two different
            # chats within a second mean the whole bot is over the limit, so everything
            # pauses for retry_after (a broadcast would otherwise meet one on every chat).
            now = self._clock()
            while self._recent_429s and self._recent_429s[0][0] <= now - _FLOOD_WINDOW:
                self._recent_429s.popleft()
            flood = any(chat != key for _, chat in self._recent_429s)
            self._recent_429s.append((now, key))
            if error.all_chats or flood:
                self._limiter.penalise_all(seconds)
        if isinstance(error, RetryLater | RecipientGone) or (
            self._is_transient(error) and not self._out_of_attempts(item)
        ):
            # The chat's later rows are deferred or cancelled in the database.
            self._queues.pop(key, None)

    async def _settle(
        self, key: ChatKey, item: OutboxItem, message_id: str | None, error: Exception | None
    ) -> None:
        try:
            await self._record_outcome(item, message_id, error)
        except Exception:
            log.exception("outbox item %s: could not record the outcome", item.id)
            # The row is still pending; refetch the chat so its order holds.
            self._queues.pop(key, None)
            return
        self._handled += 1

    async def _record_outcome(
        self, item: OutboxItem, message_id: str | None, error: Exception | None
    ) -> None:
        if error is None:
            async with self._db.transaction() as session:
                await outbox.mark_sent(session, item.id, message_id=message_id)
        elif isinstance(error, RetryLater):
            log.info("outbox item %s: %s", item.id, error)
            await self._reschedule(item, max(0.0, error.seconds), str(error))
        elif isinstance(error, RecipientGone):
            await self._recipient_gone(item, error.reason)
        elif isinstance(error, PermanentFailure):
            await self._fail(item, error.reason)
            log.warning("outbox item %s failed: %s", item.id, error.reason)
        elif self._out_of_attempts(item):
            await self._fail(item, f"gave up after {item.attempts + 1} attempts: {error!r}")
            log.warning("outbox item %s failed after %d attempts", item.id, item.attempts + 1)
        else:
            delay = self._backoff.delay(item.attempts + 1, self._rng)
            log.warning("outbox item %s: %r; retrying in %.1fs", item.id, error, delay)
            await self._reschedule(item, delay, repr(error))

    async def _reschedule(self, item: OutboxItem, seconds: float, error: str) -> None:
        until = self._now() + timedelta(seconds=seconds)
        async with self._db.transaction() as session:
            await outbox.mark_retry(session, item.id, not_before=until, error=error)
            await outbox.defer_chat(session, item, until)

    async def _fail(self, item: OutboxItem, error: str) -> None:
        async with self._db.transaction() as session:
            await outbox.mark_failed(session, item.id, error=error)

    async def _recipient_gone(self, item: OutboxItem, reason: str) -> None:
        async with self._db.transaction() as session:
            await outbox.mark_failed(session, item.id, error=reason, status="blocked")
            if item.user_id is not None:
                await users.mark_blocked(session, item.user_id)
            await outbox.cancel_pending_for_chat(session, channel=item.channel, chat_id=item.chat_id)
        log.info("outbox: chat %s:%s is gone (%s)", item.channel, item.chat_id, reason)
        if self._on_blocked is not None:
            try:
                await self._on_blocked(item, reason)
            except Exception:
                log.exception("outbox: on_blocked callback failed for item %s", item.id)

    def _is_transient(self, error: Exception | None) -> bool:
        return error is not None and not isinstance(error, RetryLater | RecipientGone | PermanentFailure)

    def _out_of_attempts(self, item: OutboxItem) -> bool:
        # ``attempts`` counts earlier tries of every kind, 429s included.
        return item.attempts + 1 >= self._max_attempts


def _limiter_key(key: ChatKey) -> str:
    return limiter_key(*key)


class _ByChannel:
    """One Transport over several channels, chosen by each item's channel."""

    def __init__(self, transports: Mapping[str, Transport]) -> None:
        self._transports = transports

    async def deliver(self, item: OutboxItem) -> str | None:
        transport = self._transports.get(item.channel)
        if transport is None:
            raise PermanentFailure(f"no transport for channel {item.channel!r}")
        return await transport.deliver(item)
