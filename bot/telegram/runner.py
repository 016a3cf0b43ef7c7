"""Telegram long polling: start-up, command menus, and a crash-safe, fair update loop.

Updates are confirmed only after they were handled: ``getUpdates`` carries as its
``offset`` the lowest update not yet handled, so a process killed mid-way gets every
unhandled update again after a restart, and the handler's idempotency (the update id
is claimed in the same transaction as its effects) makes that harmless. aiogram's own
polling is not used because it confirms updates before handling them when they run as
tasks.

Fairness: the poller feeds one queue per chat and keeps fetching while they drain, so
one person's backlog does not hold up everyone else. A direct reply waits at most
``MAX_REPLY_WAIT`` for the rate limiter it shares with the outbox sender; beyond that
it goes to the outbox, which delivers it at the chat's pace.

Everything a person sees is decided in handlers/ and dialogs/; this module only
converts, forwards and renders.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from aiogram.types import (
    CallbackQuery,
    ChatMemberUpdated,
    Message,
    Update,
)
from aiohttp import web

from bot import deeplinks, ops
from bot.app import Linli
from bot.settings import Settings
from bot.telegram import CHANNEL, render
from bot.telegram.api import TelegramApi
from bot.telegram.convert import sender_of, to_incoming
from bot.telegram.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NetworkError,
    RetryAfter,
    ServerError,
    TelegramError,
    Unauthorized,
)
from bot.telegram.menus import Menus, describe_bot
from bot.telegram.photos import TelegramPhotos
from bot.telegram.transport import TelegramTransport
from dialogs.messages import ChatKind, Incoming, Kind, Outgoing
from scheduler.delivery import Transport
from scheduler.ratelimit import Send, limiter_key
from storage import updates, users

log = logging.getLogger("linli.telegram")

ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]
# Updates handled at once; one chat's updates always run one after another.
CHAT_CONCURRENCY = 16
# How long a direct reply may wait for the rate limiter (or a 429) before it goes to the
# outbox instead. The wait holds up that chat's next updates and the offset confirmation.
MAX_REPLY_WAIT = 1.0
# A chat with this many updates queued behind the one in hand is held to its own
# window (1/s, short bursts); below it, replies go at the person's own pace.
FLOOD_BACKLOG = 3
# getUpdates' limit; also how far past the oldest unhandled update the poller can see.
FETCH_LIMIT = 100
# How long the last getUpdates (confirming what was handled) may take on the way out.
CONFIRM_TIMEOUT = 5.0
# While updates are in flight, how often to look for new ones (each look re-reads them).
BUSY_POLL = 0.1
_COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")

T = TypeVar("T")


class Backoff:
    """Exponential delay for a failing getUpdates: 0.5 s doubling up to 30 s."""

    def __init__(self, first: float = 0.5, cap: float = 30.0) -> None:
        self.first, self.cap, self.current = first, cap, first

    def next(self) -> float:
        delay, self.current = self.current, min(self.cap, self.current * 2)
        return delay

    def reset(self) -> None:
        self.current = self.first


def make_bot(settings: Settings) -> TelegramApi:
    """The Bot API client of the configured runtime (``LINLI_TELEGRAM_RUNTIME``) for the
    configured token, talking to a self-hosted Bot API server when set."""
    if settings.telegram_token is None:
        raise ValueError("LINLI_TELEGRAM_TOKEN is not set")
    token, base = settings.telegram_token.get_secret_value(), settings.telegram_api_base
    if settings.telegram_runtime == "ptb":
        from bot.telegram.runtime_ptb import PtbApi  # python-telegram-bot loads only when chosen

        return PtbApi.connect(token, base)
    from bot.telegram.runtime_aiogram import AiogramApi

    return AiogramApi.connect(token, base)


async def run_telegram(
    app: Linli, *, bot: TelegramApi | None = None, stop: asyncio.Event | None = None
) -> None:
    """Run Linli on Telegram until ``stop`` is set (or SIGTERM/SIGINT when ``stop`` is None):
    by webhook when ``LINLI_WEBHOOK_URL`` is set, else by long polling; /healthz and
    /metrics on ``LINLI_OPS_LISTEN`` when set.

    A bot passed in stays open for its owner; one made here is closed at the end.
    """
    own_bot = bot is None
    bot = bot or make_bot(app.settings)
    remove_signal_handlers: Callable[[], None] | None = None
    if stop is None:
        stop = asyncio.Event()
        remove_signal_handlers = _install_signal_handlers(stop)
    ops_runner: web.AppRunner | None = None
    background: list[asyncio.Task[None]] = []
    try:
        await app.prepare()
        if app.settings.ops_listen is not None:
            ops_runner = await ops.serve_ops(app, app.settings.ops_listen)
        me = await _until_ok(stop, bot.get_me, "getMe")
        if me is None:
            return  # stopped before Telegram ever answered
        webhook = app.settings.webhook_url is not None
        log.info(
            "telegram: bot @%s (id %s) starting (%s, %s)",
            me.username,
            me.id,
            "webhook" if webhook else "polling",
            bot.runtime,
        )
        await describe_bot(bot)
        menus = Menus(app, bot)
        await menus.publish()
        app.outbox_listeners.append(menus.wake)
        # Features fetch photos people sent through this, never through the Bot API.
        app.env.photos.register(CHANNEL, TelegramPhotos(bot).fetch)
        transports: dict[str, Transport] = {CHANNEL: TelegramTransport(bot)}
        await app.start(transports)
        background.append(asyncio.create_task(menus.follow(stop), name="telegram-menus"))
        if webhook:
            from bot.telegram.webhook import run_webhook

            await run_webhook(app, bot, stop, bot_username=me.username)
        else:
            # getUpdates is refused while a webhook is set: switching modes just works.
            await _until_ok(stop, lambda: bot.delete_webhook(drop_pending_updates=False), "deleteWebhook")
            poller = Poller(app, bot, stop, bot_username=me.username)
            await poller.run()
    finally:
        for task in background:
            task.cancel()
        if background:
            await asyncio.wait(background)
        if remove_signal_handlers is not None:
            remove_signal_handlers()
        await app.stop()
        if ops_runner is not None:
            await ops_runner.cleanup()
        if own_bot:
            await bot.close()
        log.info("telegram: stopped")


def _install_signal_handlers(stop: asyncio.Event) -> Callable[[], None]:
    """First SIGTERM/SIGINT: finish the batch in hand and stop. A second: stop at once."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    installed: list[signal.Signals] = []

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set() and task is not None:
            log.warning("telegram: %s again, stopping now", sig.name)
            task.cancel()
        else:
            log.info("telegram: %s, finishing the current batch", sig.name)
            stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
        except (NotImplementedError, RuntimeError, ValueError):
            continue  # not the main thread, or a platform without signals in the loop
        installed.append(sig)

    def remove() -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)

    return remove


async def _until_ok(stop: asyncio.Event, call: Callable[[], Awaitable[T]], what: str) -> T | None:
    """Retry ``call`` with backoff on network trouble until it answers or we are stopped."""
    backoff = Backoff()
    while not stop.is_set():
        try:
            return await call()
        except Unauthorized:
            raise  # a wrong token does not get better by waiting
        except RetryAfter as e:
            delay: float = e.retry_after
        except (NetworkError, ServerError) as e:
            delay = backoff.next()
            log.warning("telegram: %s failed (%s); retrying in %.1fs", what, e, delay)
        await _sleep_unless(stop, delay)
    return None


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


# -- polling -------------------------------------------------------------------------------


class _Defer(Exception):
    """A direct reply would wait longer than allowed: it goes to the outbox instead."""


class UpdateHandler:
    """Handles one Telegram update at a time, for the poller and the webhook alike:
    convert, hand to the channel-neutral handler, answer the button, send the replies
    within the rate limits (or defer them to the outbox), mark the update answered.

    ``handle_update`` never raises. Metrics: updates by kind, handling latency, replies
    by outcome and 429s met.
    """

    def __init__(
        self,
        app: Linli,
        bot: TelegramApi,
        *,
        bot_username: str | None,
        max_reply_wait: float = MAX_REPLY_WAIT,
    ) -> None:
        self.app = app
        self.bot = bot
        self.bot_username = bot_username
        self.max_reply_wait = max_reply_wait
        self.limiter = app.limiter
        self.metrics = app.metrics
        self.link_key = deeplinks.link_key(app.settings)
        # Chats whose replies went to the outbox: later ones follow them there, in order,
        # until the outbox holds none for that chat.
        self._deferred_chats: set[int] = set()
        self._answered: list[str] = []
        self._marks: dict[str, asyncio.Future[None]] = {}
        self._flush: asyncio.Task[None] | None = None

    def _flooding(self, chat_id: int) -> bool:
        """Whether this chat writes faster than it is answered (see ``_turn``)."""
        return False

    def _may_have_deferred(self, chat_id: int) -> bool:
        """Whether replies to this chat may be waiting in the outbox, so that new ones
        must follow them there. One process knows what it deferred; with several
        (webhook workers) another may have, so the webhook asks the database each time."""
        return chat_id in self._deferred_chats

    async def marked(self, update_key: str) -> None:
        """Until the update's "answered" mark, if one was made, is written (the webhook
        answers Telegram only then, so a redelivery of it replays nothing)."""
        waiter = self._marks.get(update_key)
        if waiter is not None:
            await asyncio.shield(waiter)

    def _mark_answered(self, update_key: str) -> None:
        """The update's answer was delivered: a redelivery must not send it again.

        Written right after the replies went out, long before the offset is confirmed;
        marks are batched into one transaction while the previous one commits.
        """
        self._answered.append(update_key)
        self._marks.setdefault(update_key, asyncio.get_running_loop().create_future())
        if self._flush is None or self._flush.done():
            self._flush = asyncio.create_task(self._flush_answered(), name="telegram-answered")

    async def _flush_answered(self) -> None:
        while self._answered:
            keys, self._answered = self._answered, []
            try:
                await self.app.handler.answered(keys)
            finally:
                for key in keys:
                    waiter = self._marks.pop(key, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(None)

    async def handle_update(self, update: Update) -> None:
        """Handle one update; never raises, so one bad update cannot stall the rest."""
        started = time.perf_counter()
        kind = "ignored"
        try:
            if update.my_chat_member is not None:
                kind = "member"
                await self._member_changed(update.update_id, update.my_chat_member)
                return
            query = update.callback_query
            incoming = to_incoming(update, bot_username=self.bot_username)
            if incoming is None:
                if query is not None:
                    await self._answer(query)
                return
            kind = incoming.kind.value
            if incoming.kind is Kind.COMMAND and incoming.command == "start":
                # A poster's deep link: the dialogs see only what was verified here.
                incoming = replace(incoming, text=deeplinks.start_text(self.link_key, incoming.text))
            replies: list[Outgoing] = []
            try:
                replies = await self.app.handler.handle(incoming)
            finally:
                if query is not None:
                    # A toast answers the person who pressed, and only them: in a
                    # group, "already taken" must not become a message to everyone.
                    await self._answer(query, next((r.text for r in replies if r.toast), None))
            if query is not None:
                replies = [r for r in replies if not r.toast]
            chat_id = int(incoming.chat_id)
            if (
                query is not None
                and incoming.chat_kind is ChatKind.PRIVATE
                # No replies: a redelivered press (handled before). Its message may
                # have been edited since; marking it from the stale copy would undo that.
                and replies
                and not any(r.edit_ref == incoming.message_ref for r in replies)
            ):
                await self._mark_pressed(query)
            await self._reply(chat_id, replies, incoming.update_key)
        except Exception:
            self.metrics.update_errors.labels(CHANNEL).inc()
            log.exception("telegram: update %s failed", update.update_id)
        finally:
            self.metrics.updates.labels(CHANNEL, kind).inc()
            self.metrics.latency.labels(CHANNEL).observe(time.perf_counter() - started)

    async def _removed_from_group(self, update_id: int, event: ChatMemberUpdated) -> None:
        member = event.new_chat_member
        cannot_post = member.status == "restricted" and not getattr(member, "can_send_messages", True)
        if member.status not in ("left", "kicked") and not cannot_post:
            return
        incoming = Incoming(
            channel=CHANNEL,
            sender=sender_of(event.from_user),
            chat_id=str(event.chat.id),
            chat_kind=ChatKind.GROUP,
            kind=Kind.BOT_REMOVED,
            update_id=str(update_id),
            text=member.status,
        )
        await self.app.handler.handle(incoming)  # nothing can be said in that group any more

    async def _answer(self, query: CallbackQuery, toast: str | None = None) -> None:
        # Stops the button's spinner. A redelivered query is too old to answer: fine.
        try:
            await self.bot.answer_callback_query(query.id, toast[:200] if toast else None, bool(toast))
        except TelegramError as e:
            log.debug("telegram: answerCallbackQuery %s: %s", query.id, e)

    async def _mark_pressed(self, query: CallbackQuery) -> None:
        """Drop the pressed message's buttons and note the choice under it, so old
        buttons vanish and the person sees what they chose."""
        message = query.message
        if not isinstance(message, Message) or message.reply_markup is None:
            return
        label = next(
            (
                button.text
                for row in message.reply_markup.inline_keyboard
                for button in row
                if button.callback_data == query.data
            ),
            None,
        )
        if label is None:
            return  # data that was never on this message (forged): leave it alone
        suffix = f"\n\n✓ {label}"
        chat_id, message_id = message.chat.id, message.message_id
        try:
            if message.text is not None and len(message.text) + len(suffix) <= render.MAX_TEXT:
                await self.bot.edit_message_text(chat_id, message_id, message.text + suffix)
            elif message.caption is not None and len(message.caption) + len(suffix) <= render.MAX_CAPTION:
                await self.bot.edit_message_caption(chat_id, message_id, message.caption + suffix)
            else:
                await self.bot.edit_message_reply_markup(chat_id, message_id)
        except TelegramError as e:
            # "not modified" on a redelivered press, or a message too old to edit.
            log.debug("telegram: marking %s as pressed: %s", message.message_id, e)

    async def _reply(self, chat_id: int, replies: list[Outgoing], update_key: str | None = None) -> None:
        """Send the replies now, or put them in the outbox when this chat would have to wait.

        Once delivered (or in the outbox), the update is marked answered, so a redelivery
        after a crash sends nothing; the outbox enqueue clears the copy in its own
        transaction. With several replies, each one delivered shortens the kept copy to
        those still to go (one small write), so a crash between two replies replays only
        the rest. What stays open is the moment between Telegram accepting a reply and
        that write committing: a crash exactly then repeats that one reply.
        """
        if not replies:
            return
        if self._may_have_deferred(chat_id) and not await self._outbox_clear(chat_id):
            await self._defer(chat_id, replies, update_key)
            return
        for index, reply in enumerate(replies):
            try:
                if not await self._send_reply(chat_id, reply):
                    break  # the chat is gone: nothing left to deliver
                if update_key is not None and index + 1 < len(replies):
                    await self._sent_part(update_key, replies[index + 1 :])
            except (_Defer, RetryAfter, NetworkError, ServerError) as e:
                self.metrics.replies.labels(CHANNEL, "deferred").inc(len(replies) - index)
                # The chat must wait, or Telegram is struggling: the rest goes through the
                # outbox, which keeps retrying at the right pace, and the chat's later
                # replies follow it there so they stay in order.
                log.info("telegram: reply to %s deferred to the outbox: %s", chat_id, e or "rate limit")
                await self._defer(chat_id, replies[index:], update_key)
                return
        if update_key is not None:
            self._mark_answered(update_key)

    async def _sent_part(self, update_key: str, rest: list[Outgoing]) -> None:
        """One of several replies went out: a crash now must replay only the rest."""
        try:
            async with self.app.db.transaction() as session:
                await updates.keep_replies(session, update_key, [r.to_dict() for r in rest])
        except Exception:  # only a repeat of this one reply after a crash is at stake
            log.exception("telegram: could not record a partly delivered answer")

    async def _defer(self, chat_id: int, replies: list[Outgoing], update_key: str | None) -> None:
        self._deferred_chats.add(chat_id)
        await self.app.defer_replies(
            CHANNEL, str(chat_id), replies, answered=update_key, is_group=chat_id < 0
        )

    async def _outbox_clear(self, chat_id: int) -> bool:
        """True (and the chat is direct again) once the outbox holds no reply for it."""
        async with self.app.db.transaction() as session:
            waiting = await updates.replies_waiting(session, channel=CHANNEL, chat_id=str(chat_id))
        if not waiting:
            self._deferred_chats.discard(chat_id)
        return not waiting

    async def _turn(self, chat_id: int, deadline: float) -> Send:
        """Wait until the rate limiter lets a message to this chat go, and count it until
        the returned ``Send`` ends (call ``end()`` once the request completed, as the outbox
        sender does); _Defer if that would be after ``deadline``.

        The outbox sender shares the limiter, so both stay within the overall limit and
        the outbox spaces its messages after direct replies. The chat's own window
        (1/s, short bursts) holds back a chat with ``FLOOD_BACKLOG`` or more updates
        queued behind this one, a person writing faster than they are answered; a
        person who waits for each answer is answered at once, at their own pace (a
        quick tap while the last answer is still going out is not a flood). A 429
        hold applies to both.
        """
        key, is_group = limiter_key(CHANNEL, str(chat_id)), chat_id < 0
        loop = asyncio.get_running_loop()
        while True:
            backlog = self._flooding(chat_id)
            delay = self.limiter.delay_for(key, is_group, chat_window=backlog)
            if delay <= 0:
                break
            if loop.time() + delay > deadline:
                raise _Defer(f"the chat may get its next message in {delay:.1f}s")
            await asyncio.sleep(delay)
        return self.limiter.begin(key, is_group)

    async def _send_reply(self, chat_id: int, reply: Outgoing) -> bool:
        """Send one reply within ``max_reply_wait``; False when the chat is gone."""
        deadline = asyncio.get_running_loop().time() + self.max_reply_wait
        for attempt in (1, 2, 3):
            sending = await self._turn(chat_id, deadline)
            try:
                try:
                    await render.send_one(self.bot, chat_id, reply)
                finally:
                    sending.end()  # counted until the request completed, as the sender does
                self.metrics.replies.labels(CHANNEL, "sent").inc()
                return True
            except Forbidden as e:
                self.metrics.replies.labels(CHANNEL, "blocked").inc()
                log.info("telegram: chat %s is gone (%s); replies dropped", chat_id, e)
                return False
            except RetryAfter as e:
                self.metrics.rate_limited.labels(CHANNEL, "reply").inc()
                # Held in the limiter: the next _turn waits it out or defers.
                self.limiter.penalise(limiter_key(CHANNEL, str(chat_id)), e.retry_after)
                if attempt == 3:
                    raise
            except (NetworkError, ServerError):
                if attempt == 3:
                    raise
                await asyncio.sleep(attempt)
            except BadRequest as e:
                self.metrics.replies.labels(CHANNEL, "failed").inc()
                log.error("telegram: reply to %s refused: %s", chat_id, e)
                return True
        return True

    async def _member_changed(self, update_id: int, event: ChatMemberUpdated) -> None:
        """The person blocked (kicked) or unblocked the bot in their private chat; or, in a
        group, Linli was removed or lost the right to post (features hear of it)."""
        if event.chat.type != "private":
            await self._removed_from_group(update_id, event)
            return
        status = event.new_chat_member.status
        if status not in ("kicked", "member"):
            return
        external_id = str(event.from_user.id)
        async with self.app.db.transaction() as session:
            if not await updates.claim(session, f"{CHANNEL}:{update_id}"):
                return
            user = await users.find_by_external(session, channel=CHANNEL, external_id=external_id)
            if user is None:
                return  # a stranger is nobody to mark
            user_id = user.id
            await users.mark_blocked(session, user_id, blocked=status == "kicked")
        log.info(
            "telegram: user %s %s the bot",
            user_id,
            "blocked" if status == "kicked" else "unblocked",
        )


class Poller(UpdateHandler):
    """The getUpdates loop, feeding one queue per chat.

    Each chat's updates are handled strictly in order, by one worker per chat; different
    chats run concurrently, at most ``concurrency`` updates at once. The poller keeps
    fetching while workers run, so one busy chat does not hold up everyone else.

    Crash safety: Telegram's ``offset`` confirms every update below it, so the offset
    sent is the lowest update not yet handled (the watermark). Updates above it that
    were handled already come back in the next fetch and are skipped; after a crash
    they come back to a new process, whose handler answers them from the stored copy
    (or with nothing, once the answer was delivered, see ``_mark_answered``).
    """

    def __init__(
        self,
        app: Linli,
        bot: TelegramApi,
        stop: asyncio.Event,
        *,
        bot_username: str | None,
        concurrency: int = CHAT_CONCURRENCY,
        max_reply_wait: float = MAX_REPLY_WAIT,
    ) -> None:
        super().__init__(app, bot, bot_username=bot_username, max_reply_wait=max_reply_wait)
        self.stop = stop
        self.concurrency = concurrency
        self.timeout = app.settings.polling_timeout
        self._slots = asyncio.Semaphore(concurrency)
        self._queues: dict[int | str, deque[Update]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._pending: set[int] = set()  # fetched, not yet handled
        self._next: int | None = None  # one above the highest update fetched
        self._progress = asyncio.Event()

    def _flooding(self, chat_id: int) -> bool:
        queue = self._queues.get(chat_id)
        return queue is not None and len(queue) > FLOOD_BACKLOG

    # The offset to send: everything below it was handled.
    def watermark(self) -> int | None:
        return min(self._pending) if self._pending else self._next

    async def run(self) -> None:
        backoff = Backoff()
        log.info("telegram: polling (timeout %ss)", self.timeout)
        try:
            while not self.stop.is_set():
                busy = bool(self._pending)
                try:
                    # With updates in flight Telegram answers at once (they are still
                    # unconfirmed), so a long poll would not wait anyway.
                    batch = await self._fetch(self.watermark(), 0 if busy else self.timeout)
                except Unauthorized:
                    log.error("telegram: the token was rejected (401); stopping")
                    raise
                except Conflict as e:
                    delay = backoff.next()
                    log.warning(
                        "telegram: 409 Conflict, another poller uses this token (%s); retrying in %.1fs",
                        e,
                        delay,
                    )
                    await _sleep_unless(self.stop, delay)
                    continue
                except RetryAfter as e:
                    log.warning("telegram: getUpdates flood wait %ss", e.retry_after)
                    await _sleep_unless(self.stop, e.retry_after)
                    continue
                except Exception as e:  # network, 5xx, undecodable answers: all pass with time
                    delay = backoff.next()
                    log.warning(
                        "telegram: getUpdates failed (%s: %s); retrying in %.1fs", type(e).__name__, e, delay
                    )
                    await _sleep_unless(self.stop, delay)
                    continue
                backoff.reset()
                if batch is None:
                    break  # stopped while waiting
                self.feed(batch)
                await self._until_worth_fetching()
            # Stopping: the updates being handled finish; those still queued are not
            # confirmed and come again to the next process.
            if self._workers:
                await asyncio.wait(set(self._workers))
        finally:
            for task in self._workers:
                task.cancel()
            if self._workers:
                await asyncio.wait(set(self._workers))
            if self._flush is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._flush
        offset = self.watermark()
        if offset is not None:
            await self._confirm(offset)

    def feed(self, batch: Sequence[Update]) -> None:
        """Queue the updates not seen before, each behind its chat's earlier ones."""
        for update in batch:
            if self._next is not None and update.update_id < self._next:
                continue  # in hand already, or handled and not yet confirmed
            self._next = update.update_id + 1
            self._pending.add(update.update_id)
            key = _chat_key(update)
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = deque()
                task = asyncio.create_task(self._work(key, queue), name=f"telegram-chat-{key}")
                self._workers.add(task)
                task.add_done_callback(self._workers.discard)
            queue.append(update)

    async def _work(self, key: int | str, queue: deque[Update]) -> None:
        try:
            while queue and not self.stop.is_set():
                update = queue[0]
                async with self._slots:
                    await self.handle_update(update)
                queue.popleft()
                self._pending.discard(update.update_id)
                self._progress.set()
        finally:
            if self._queues.get(key) is queue:
                del self._queues[key]
            self._progress.set()

    async def _until_worth_fetching(self) -> None:
        """Wait until another fetch can bring something new.

        Every fetch returns the unconfirmed updates again, so while some are in flight
        fetching is paced: at once when nothing is in flight (a real long poll follows)
        or when half the window has room, otherwise every ``BUSY_POLL`` seconds while
        there is room at all (a chat stuck on one update leaves the rest usable).
        """
        loop = asyncio.get_running_loop()
        next_poll = loop.time() + BUSY_POLL
        while self._pending and not self.stop.is_set():
            offset, top = self.watermark(), self._next
            assert offset is not None
            assert top is not None
            room = FETCH_LIMIT - (top - offset)
            now = loop.time()
            if room >= FETCH_LIMIT // 2 or (room > 0 and now >= next_poll):
                return
            if now >= next_poll:  # the window is full: only progress helps
                next_poll = now + BUSY_POLL
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), next_poll - now)

    async def _fetch(self, offset: int | None, wait: int) -> list[Update] | None:
        """The next batch, or None if we were stopped while the long poll was waiting."""
        poll = asyncio.ensure_future(
            self.bot.get_updates(
                offset=offset,
                limit=FETCH_LIMIT,
                wait=wait,
                allowed_updates=ALLOWED_UPDATES,
                request_timeout=self.bot.request_timeout + wait,
                known_below=self._next,  # in hand or handled: skipped by feed() anyway
            )
        )
        stopped = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({poll, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not poll.done():
                # Abandoning the poll is safe: whatever it would have returned stays
                # unconfirmed and comes again.
                poll.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poll
        if poll.cancelled():
            return None
        return sorted(poll.result(), key=lambda u: u.update_id)

    async def _confirm(self, offset: int) -> None:
        """Confirm what was handled on the way out, so a restart does not redo it."""
        try:
            async with asyncio.timeout(CONFIRM_TIMEOUT):
                await self.bot.get_updates(
                    offset=offset, limit=1, wait=0, allowed_updates=None, request_timeout=CONFIRM_TIMEOUT
                )
        except Exception as e:  # harmless: those updates are then redelivered and deduplicated
            log.info("telegram: could not confirm up to %s on exit (%s)", offset, e)

    async def handle_batch(self, batch: Sequence[Update]) -> None:
        """Handle these updates as the poller would (chats concurrently) and wait for them."""
        self.feed(batch)
        while self._workers:
            await asyncio.wait(set(self._workers))


def _chat_key(update: Update) -> int | str:
    """Updates with the same key are handled in order; different keys may overlap."""
    if update.message is not None:
        return update.message.chat.id
    if update.callback_query is not None:
        query = update.callback_query
        return query.message.chat.id if query.message is not None else query.from_user.id
    if update.my_chat_member is not None:
        return update.my_chat_member.chat.id
    return f"update:{update.update_id}"
