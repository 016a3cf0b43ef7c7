"""Telegram long polling: start-up, command menus, and a crash-safe update loop.

Updates are confirmed only after they were handled: the next ``getUpdates`` carries
``offset = last update_id + 1`` once the whole batch is done. A process killed
mid-batch gets the batch again after a restart, and the handler's idempotency (the
update id is claimed in the same transaction as its effects) makes that harmless.
aiogram's own polling is not used because it confirms updates before handling them
when they run as tasks.

Everything a person sees is decided in handlers/ and dialogs/; this module only
converts, forwards and renders.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    CallbackQuery,
    ChatMemberUpdated,
    Message,
    Update,
)

from bot.app import Linli
from bot.settings import Settings
from bot.telegram import CHANNEL, render
from bot.telegram.convert import to_incoming
from bot.telegram.photos import TelegramPhotos
from bot.telegram.transport import TelegramTransport
from dialogs.i18n import DEFAULT_LANGUAGE, LANGUAGES, t
from dialogs.messages import ChatKind, Outgoing
from scheduler.delivery import Transport
from storage import updates, users
from storage.data import Role

log = logging.getLogger("linli.telegram")

ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]
# Chats handled at once within a batch; one chat's updates always run one after another.
CHAT_CONCURRENCY = 16
# Waiting out a 429 on a direct reply holds up that chat only; beyond this we give up.
MAX_REPLY_RETRY_AFTER = 30.0
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


def make_bot(settings: Settings) -> Bot:
    """A Bot for the configured token, talking to a self-hosted Bot API server when set."""
    if settings.telegram_token is None:
        raise ValueError("LINLI_TELEGRAM_TOKEN is not set")
    session = (
        AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base))
        if settings.telegram_api_base
        else AiohttpSession()
    )
    # No default parse_mode: texts carry what people typed and are sent as plain text.
    return Bot(settings.telegram_token.get_secret_value(), session=session)


async def run_telegram(app: Linli, *, bot: Bot | None = None, stop: asyncio.Event | None = None) -> None:
    """Run Linli on Telegram until ``stop`` is set (or SIGTERM/SIGINT when ``stop`` is None).

    A bot passed in stays open for its owner; one made here is closed at the end.
    """
    own_bot = bot is None
    bot = bot or make_bot(app.settings)
    remove_signal_handlers: Callable[[], None] | None = None
    if stop is None:
        stop = asyncio.Event()
        remove_signal_handlers = _install_signal_handlers(stop)
    try:
        await app.prepare()
        me = await _until_ok(stop, bot.me, "getMe")
        if me is None:
            return  # stopped before Telegram ever answered
        log.info("telegram: bot @%s (id %s) starting", me.username, me.id)
        await register_commands(app, bot)
        # Features fetch photos people sent through this, never through the Bot API.
        app.env.photos.register(CHANNEL, TelegramPhotos(bot).fetch)
        transports: dict[str, Transport] = {CHANNEL: TelegramTransport(bot)}
        await app.start(transports)
        poller = Poller(app, bot, stop, bot_username=me.username)
        await poller.run()
    finally:
        if remove_signal_handlers is not None:
            remove_signal_handlers()
        await app.stop()
        if own_bot:
            await bot.session.close()
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
        except TelegramUnauthorizedError:
            raise  # a wrong token does not get better by waiting
        except TelegramRetryAfter as e:
            delay: float = e.retry_after
        except (TelegramNetworkError, TelegramServerError) as e:
            delay = backoff.next()
            log.warning("telegram: %s failed (%s); retrying in %.1fs", what, e, delay)
        await _sleep_unless(stop, delay)
    return None


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


# -- command menus -------------------------------------------------------------------------


def _menu(app: Linli, roles: frozenset[Role], lang: str) -> list[BotCommand]:
    return [
        BotCommand(command=name, description=t(lang, key)[:256])
        for name, key in app.registry.menu_commands(roles)
        if _COMMAND_NAME.match(name)
    ][:100]


async def register_commands(app: Linli, bot: Bot) -> None:
    """setMyCommands: the resident menu for everyone (Chinese by default, English for
    English clients), and each staff member's own menu in their language."""
    resident = frozenset({Role.RESIDENT})
    menus: list[tuple[str, list[BotCommand], BotCommandScopeChat | None, str | None]] = [
        ("default", _menu(app, resident, DEFAULT_LANGUAGE), None, None),
        *((lang, _menu(app, resident, lang), None, lang) for lang in LANGUAGES),
    ]
    for chat_id, roles, lang in await _staff(app):
        menu = _menu(app, roles | {Role.STAFF}, lang)
        menus.append((f"staff {chat_id}", menu, BotCommandScopeChat(chat_id=chat_id), None))
    for what, commands, scope, language in menus:
        try:
            await bot.set_my_commands(commands, scope=scope, language_code=language)
        except TelegramAPIError as e:
            # A menu is a convenience: an admin who never opened the chat ("chat not
            # found") or a network blip must not keep Linli from starting.
            log.warning("telegram: setMyCommands (%s) failed: %s", what, e)


async def _staff(app: Linli) -> list[tuple[int, frozenset[Role], str]]:
    """(chat id, roles, language) of every staff member on Telegram: LINLI_ADMINS and
    everyone holding the staff role in the database."""
    found: dict[str, tuple[int, frozenset[Role], str]] = {}
    async with app.db.transaction() as session:
        for user in await users.users_with_role(session, Role.STAFF):
            if user.channel == CHANNEL and not user.blocked and user.chat_id.lstrip("-").isdigit():
                found[user.external_id] = (int(user.chat_id), user.roles, user.language)
    for admin in app.settings.admin_ids:
        found.setdefault(admin, (int(admin), frozenset(), DEFAULT_LANGUAGE))
    return list(found.values())


# -- polling -------------------------------------------------------------------------------


class Poller:
    """The getUpdates loop. A batch is confirmed by asking for the next one, after it was
    handled: chats concurrently (bounded), each chat's updates strictly in order."""

    def __init__(
        self,
        app: Linli,
        bot: Bot,
        stop: asyncio.Event,
        *,
        bot_username: str | None,
        concurrency: int = CHAT_CONCURRENCY,
    ) -> None:
        self.app = app
        self.bot = bot
        self.stop = stop
        self.bot_username = bot_username
        self.concurrency = concurrency
        self.timeout = app.settings.polling_timeout

    async def run(self) -> None:
        offset: int | None = None
        backoff = Backoff()
        log.info("telegram: polling (timeout %ss)", self.timeout)
        while not self.stop.is_set():
            try:
                batch = await self._fetch(offset)
            except TelegramUnauthorizedError:
                log.error("telegram: the token was rejected (401); stopping")
                raise
            except TelegramConflictError as e:
                delay = backoff.next()
                log.warning(
                    "telegram: 409 Conflict, another poller uses this token (%s); retrying in %.1fs", e, delay
                )
                await _sleep_unless(self.stop, delay)
                continue
            except TelegramRetryAfter as e:
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
            if batch:
                await self.handle_batch(batch)
                # Every answer of the batch went out: none needs repeating after a crash.
                await self.app.handler.answered([f"{CHANNEL}:{u.update_id}" for u in batch])
                offset = batch[-1].update_id + 1
        if offset is not None:
            await self._confirm(offset)

    async def _fetch(self, offset: int | None) -> list[Update] | None:
        """The next batch, or None if we were stopped while the long poll was waiting."""
        request_timeout = int(self.bot.session.timeout + self.timeout)
        poll = asyncio.ensure_future(
            self.bot.get_updates(
                offset=offset,
                timeout=self.timeout,
                allowed_updates=ALLOWED_UPDATES,
                request_timeout=request_timeout,
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
        """Confirm the last handled batch on the way out, so a restart does not redo it."""
        try:
            await self.bot.get_updates(offset=offset, limit=1, timeout=0, request_timeout=5)
        except Exception as e:  # harmless: the batch is then redelivered and deduplicated
            log.info("telegram: could not confirm up to %s on exit (%s)", offset, e)

    async def handle_batch(self, batch: Sequence[Update]) -> None:
        by_chat: dict[int | str, list[Update]] = {}
        for update in batch:
            by_chat.setdefault(_chat_key(update), []).append(update)
        limit = asyncio.Semaphore(self.concurrency)

        async def run_chat(items: list[Update]) -> None:
            async with limit:
                for update in items:
                    await self.handle_update(update)

        async with asyncio.TaskGroup() as group:
            for items in by_chat.values():
                group.create_task(run_chat(items))

    async def handle_update(self, update: Update) -> None:
        """Handle one update; never raises, so one bad update cannot stall the rest."""
        try:
            if update.my_chat_member is not None:
                await self._member_changed(update.update_id, update.my_chat_member)
                return
            query = update.callback_query
            incoming = to_incoming(update, bot_username=self.bot_username)
            if incoming is None:
                if query is not None:
                    await self._answer(query)
                return
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
            await self._reply(chat_id, replies)
        except Exception:
            log.exception("telegram: update %s failed", update.update_id)

    async def _answer(self, query: CallbackQuery, toast: str | None = None) -> None:
        # Stops the button's spinner. A redelivered query is too old to answer: fine.
        try:
            await self.bot.answer_callback_query(
                query.id, text=toast[:200] if toast else None, show_alert=bool(toast)
            )
        except TelegramAPIError as e:
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
        where: dict[str, Any] = {"chat_id": message.chat.id, "message_id": message.message_id}
        try:
            if message.text is not None and len(message.text) + len(suffix) <= render.MAX_TEXT:
                await self.bot.edit_message_text(text=message.text + suffix, **where)
            elif message.caption is not None and len(message.caption) + len(suffix) <= render.MAX_CAPTION:
                await self.bot.edit_message_caption(caption=message.caption + suffix, **where)
            else:
                await self.bot.edit_message_reply_markup(**where)
        except TelegramAPIError as e:
            # "not modified" on a redelivered press, or a message too old to edit.
            log.debug("telegram: marking %s as pressed: %s", message.message_id, e)

    async def _reply(self, chat_id: int, replies: list[Outgoing]) -> None:
        for index, reply in enumerate(replies):
            try:
                if not await self._send_reply(chat_id, reply):
                    return
            except (TelegramRetryAfter, TelegramNetworkError, TelegramServerError) as e:
                # Telegram is struggling: the rest goes through the outbox, which keeps
                # retrying at the right pace, rather than being lost with this batch.
                log.warning("telegram: reply to %s deferred to the outbox: %s", chat_id, e)
                await self.app.defer_replies(CHANNEL, str(chat_id), replies[index:])
                return

    async def _send_reply(self, chat_id: int, reply: Outgoing) -> bool:
        """Send one reply, riding out short waits; False when the chat is gone."""
        for attempt in (1, 2, 3):
            try:
                await render.send_one(self.bot, chat_id, reply)
                return True
            except TelegramForbiddenError as e:
                log.info("telegram: chat %s is gone (%s); replies dropped", chat_id, e)
                return False
            except TelegramRetryAfter as e:
                if attempt == 3 or e.retry_after > MAX_REPLY_RETRY_AFTER:
                    raise
                await asyncio.sleep(e.retry_after)
            except (TelegramNetworkError, TelegramServerError):
                if attempt == 3:
                    raise
                await asyncio.sleep(attempt)
            except TelegramBadRequest as e:
                log.error("telegram: reply to %s refused: %s", chat_id, e)
                return True
        return True

    async def _member_changed(self, update_id: int, event: ChatMemberUpdated) -> None:
        """The person blocked (kicked) or unblocked the bot in their private chat."""
        if event.chat.type != "private":
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
