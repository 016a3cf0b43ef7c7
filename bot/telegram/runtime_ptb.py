"""``TelegramApi`` on python-telegram-bot's ``Bot`` (``LINLI_TELEGRAM_RUNTIME=ptb``).

Only the ``Bot`` is used (its HTTP client, its request building and its error mapping),
not ``Application``: polling, per-chat ordering and crash safety are Linli's own (see
runner.py), the same code for both runtimes.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import telegram
from aiogram.types import Update
from telegram import error as ptb_errors
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from bot.telegram import errors
from bot.telegram.api import BotInfo, InlineKeyboard, Markup, RequestKeyboard, Scope

# Seconds a request may take (beyond a long poll's wait); aiogram's session uses 60 in all.
READ_TIMEOUT = 30.0
WRITE_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
# Waiting for a free connection: replies, the outbox sender and menus share the pool.
POOL_TIMEOUT = 30.0
POOL_SIZE = 64


# python-telegram-bot 22 moves time periods (RetryAfter.retry_after among them) from int
# to timedelta and warns wherever one is read, its own RetryAfter constructor included,
# unless a program opts in to the new type, as Linli does (it reads either).
os.environ.setdefault("PTB_TIMEDELTA", "1")


def _seconds(e: ptb_errors.RetryAfter) -> float:
    # python-telegram-bot 22 warns on reading retry_after while it moves from int to timedelta.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = e.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@contextmanager
def translated() -> Iterator[None]:
    """python-telegram-bot's exceptions as ``bot.telegram.errors`` (BadRequest and
    TimedOut are NetworkErrors there, so they come first)."""
    try:
        yield
    except ptb_errors.RetryAfter as e:
        raise errors.RetryAfter(e.message, _seconds(e)) from e
    except ptb_errors.ChatMigrated as e:
        raise errors.ChatMigrated(e.message, int(e.new_chat_id)) from e
    except ptb_errors.Forbidden as e:
        raise errors.Forbidden(e.message) from e
    except ptb_errors.InvalidToken as e:
        raise errors.Unauthorized(e.message) from e
    except ptb_errors.Conflict as e:
        raise errors.Conflict(e.message) from e
    except ptb_errors.BadRequest as e:
        raise errors.BadRequest(e.message) from e
    except ptb_errors.NetworkError as e:
        # python-telegram-bot reports every other HTTP status (5xx, 413) as a NetworkError.
        if "entity too large" in e.message.lower():
            raise errors.EntityTooLarge(e.message) from e
        raise errors.NetworkError(e.message) from e
    except ptb_errors.TelegramError as e:
        raise errors.TelegramError(e.message) from e


def _markup(
    markup: Markup | None,
) -> telegram.InlineKeyboardMarkup | telegram.ReplyKeyboardMarkup | telegram.ReplyKeyboardRemove | None:
    if markup is None:
        return None
    if isinstance(markup, InlineKeyboard):
        return _inline(markup)
    if isinstance(markup, RequestKeyboard):
        button = telegram.KeyboardButton(
            text=markup.label,
            request_contact=markup.wants == "contact" or None,
            request_location=markup.wants == "location" or None,
        )
        return telegram.ReplyKeyboardMarkup([[button]], resize_keyboard=True, one_time_keyboard=True)
    return telegram.ReplyKeyboardRemove()


def _inline(markup: InlineKeyboard | None) -> telegram.InlineKeyboardMarkup | None:
    if markup is None:
        return None
    return telegram.InlineKeyboardMarkup(
        [[telegram.InlineKeyboardButton(b.text, callback_data=b.data) for b in row] for row in markup.rows]
    )


def _scope(scope: Scope) -> telegram.BotCommandScope:
    if scope.kind == "chat":
        assert scope.chat_id is not None
        return telegram.BotCommandScopeChat(scope.chat_id)
    if scope.kind == "all_private_chats":
        return telegram.BotCommandScopeAllPrivateChats()
    if scope.kind == "all_group_chats":
        return telegram.BotCommandScopeAllGroupChats()
    if scope.kind == "all_chat_administrators":
        return telegram.BotCommandScopeAllChatAdministrators()
    return telegram.BotCommandScopeDefault()


class PtbApi:
    runtime = "ptb"
    request_timeout = READ_TIMEOUT

    def __init__(self, bot: telegram.Bot, requests: tuple[HTTPXRequest, ...] = ()) -> None:
        self.bot = bot
        # Closed by close(): Bot.shutdown() closes nothing unless Bot.initialize() ran,
        # which would spend a getMe on every Bot made.
        self._requests = requests

    @classmethod
    def connect(cls, token: str, api_base: str | None) -> PtbApi:
        """A Bot for ``token``; ``api_base`` (``http://host:port``) is a self-hosted Bot API,
        to which ``/bot<token>/<method>`` and ``/file/bot<token>/<path>`` are appended."""

        def request(pool: int) -> HTTPXRequest:
            return HTTPXRequest(
                connection_pool_size=pool,
                read_timeout=READ_TIMEOUT,
                write_timeout=WRITE_TIMEOUT,
                connect_timeout=CONNECT_TIMEOUT,
                pool_timeout=POOL_TIMEOUT,
            )

        base = api_base.rstrip("/") if api_base else "https://api.telegram.org"
        # getUpdates has its own connections, so a long poll never waits for the pool: two,
        # since a long poll abandoned on stop holds its connection a while, and the
        # confirming getUpdates that follows must not wait for it.
        calls, polls = request(POOL_SIZE), request(2)
        bot = telegram.Bot(
            token,
            base_url=f"{base}/bot",
            base_file_url=f"{base}/file/bot",
            request=calls,
            get_updates_request=polls,
        )
        return cls(bot, (calls, polls))

    async def get_me(self) -> BotInfo:
        with translated():
            me = await self.bot.get_me()
        return BotInfo(id=me.id, username=me.username)

    async def get_updates(
        self,
        *,
        offset: int | None,
        limit: int,
        wait: int,
        allowed_updates: list[str] | None,
        request_timeout: float,
        known_below: int | None = None,
    ) -> list[Update]:
        with translated():
            batch = await self.bot.get_updates(
                offset=offset,
                limit=limit,
                timeout=wait,
                allowed_updates=allowed_updates,
                # python-telegram-bot adds the long poll's own wait to this.
                read_timeout=max(0.0, request_timeout - wait),
            )
        # One model for both runtimes (see api.py): the update as the Bot API sent it.
        return [
            Update.model_validate(update.to_dict())
            for update in batch
            if known_below is None or update.update_id >= known_below
        ]

    async def delete_webhook(self, *, drop_pending_updates: bool) -> None:
        with translated():
            await self.bot.delete_webhook(drop_pending_updates=drop_pending_updates)

    async def set_webhook(
        self,
        *,
        url: str,
        secret_token: str,
        allowed_updates: list[str],
        max_connections: int,
        drop_pending_updates: bool,
    ) -> None:
        with translated():
            await self.bot.set_webhook(
                url=url,
                secret_token=secret_token,
                allowed_updates=allowed_updates,
                max_connections=max_connections,
                drop_pending_updates=drop_pending_updates,
            )

    async def send_message(self, chat_id: int, text: str, markup: Markup | None = None) -> int:
        with translated():
            sent = await self.bot.send_message(chat_id, text, reply_markup=_markup(markup))
        return sent.message_id

    async def send_photo(
        self, chat_id: int, photo: str | Path, caption: str | None, markup: Markup | None = None
    ) -> int:
        with translated():
            sent = await self.bot.send_photo(chat_id, photo, caption=caption, reply_markup=_markup(markup))
        return sent.message_id

    async def send_venue(
        self,
        chat_id: int,
        latitude: float,
        longitude: float,
        title: str,
        address: str,
        markup: Markup | None = None,
    ) -> int:
        with translated():
            sent = await self.bot.send_venue(
                chat_id, latitude, longitude, title, address, reply_markup=_markup(markup)
            )
        return sent.message_id

    async def edit_message_text(
        self, chat_id: int, message_id: int, text: str, markup: InlineKeyboard | None = None
    ) -> None:
        with translated():
            await self.bot.edit_message_text(
                text, chat_id=chat_id, message_id=message_id, reply_markup=_inline(markup)
            )

    async def edit_message_caption(self, chat_id: int, message_id: int, caption: str) -> None:
        with translated():
            await self.bot.edit_message_caption(chat_id=chat_id, message_id=message_id, caption=caption)

    async def edit_message_reply_markup(
        self, chat_id: int, message_id: int, markup: InlineKeyboard | None = None
    ) -> None:
        with translated():
            await self.bot.edit_message_reply_markup(
                chat_id=chat_id, message_id=message_id, reply_markup=_inline(markup)
            )

    async def answer_callback_query(self, query_id: str, text: str | None, show_alert: bool) -> None:
        with translated():
            await self.bot.answer_callback_query(query_id, text=text, show_alert=show_alert)

    async def download(self, file_id: str, max_bytes: int) -> bytes:
        with translated():
            file = await self.bot.get_file(file_id)
            if file.file_path is None:
                raise LookupError(f"telegram has no file path for {file_id!r}")
            if file.file_size is not None and file.file_size > max_bytes:
                raise ValueError(f"file of {file.file_size} bytes")
            return bytes(await file.download_as_bytearray())

    async def set_my_commands(
        self, commands: list[tuple[str, str]], scope: Scope, language_code: str | None
    ) -> None:
        listed = [telegram.BotCommand(name, text) for name, text in commands]
        with translated():
            await self.bot.set_my_commands(listed, scope=_scope(scope), language_code=language_code)

    async def delete_my_commands(self, scope: Scope, language_code: str | None) -> None:
        with translated():
            await self.bot.delete_my_commands(scope=_scope(scope), language_code=language_code)

    async def set_my_description(self, description: str, language_code: str | None) -> None:
        with translated():
            await self.bot.set_my_description(description=description, language_code=language_code)

    async def set_my_short_description(self, short_description: str, language_code: str | None) -> None:
        with translated():
            await self.bot.set_my_short_description(
                short_description=short_description, language_code=language_code
            )

    async def close(self) -> None:
        for request in self._requests:
            await request.shutdown()
