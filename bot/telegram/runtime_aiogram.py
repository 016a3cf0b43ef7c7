"""``TelegramApi`` on aiogram's ``Bot`` (the default runtime)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiogram import Bot, methods
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import Response, TelegramMethod
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    BotCommandScopeUnion,
    FSInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)

from bot.telegram import errors
from bot.telegram.api import BotInfo, InlineKeyboard, Markup, RequestKeyboard, Scope


class _GetRawUpdates(TelegramMethod[list[dict[str, Any]]]):
    """getUpdates answered as plain JSON objects, so that only updates not seen before are
    parsed into models: every fetch repeats the updates still in hand (see runner.Poller)."""

    __returning__ = list[dict[str, Any]]
    __api_method__ = "getUpdates"

    offset: int | None = None
    limit: int | None = None
    timeout: int | None = None
    allowed_updates: list[str] | None = None


# aiogram parses each answer as ``Response[<the method's result type>]``, and pydantic keeps
# such parametrised models only weakly: each garbage collection drops them, and the next
# call rebuilds one (about 5 ms, a third of a reply's cost in bench/telegram_path.py).
# Holding them here keeps them built.
_RESPONSE_TYPES = tuple(
    Response[method.__returning__]  # type: ignore[name-defined]
    for method in (
        _GetRawUpdates,
        methods.GetMe,
        methods.SendMessage,
        methods.SendPhoto,
        methods.SendVenue,
        methods.EditMessageText,
        methods.EditMessageCaption,
        methods.EditMessageReplyMarkup,
        methods.AnswerCallbackQuery,
        methods.GetFile,
        methods.SetMyCommands,
        methods.DeleteMyCommands,
        methods.SetMyDescription,
        methods.SetMyShortDescription,
        methods.SetWebhook,
        methods.DeleteWebhook,
    )
)


@contextmanager
def translated() -> Iterator[None]:
    """aiogram's exceptions as ``bot.telegram.errors`` (most specific class first)."""
    try:
        yield
    except TelegramRetryAfter as e:
        raise errors.RetryAfter(e.message, float(e.retry_after)) from e
    except TelegramMigrateToChat as e:
        raise errors.ChatMigrated(e.message, e.migrate_to_chat_id) from e
    except TelegramEntityTooLarge as e:  # a network error by class in aiogram
        raise errors.EntityTooLarge(e.message) from e
    except TelegramForbiddenError as e:
        raise errors.Forbidden(e.message) from e
    except (TelegramUnauthorizedError, TelegramNotFound) as e:
        raise errors.Unauthorized(e.message) from e
    except TelegramConflictError as e:
        raise errors.Conflict(e.message) from e
    except TelegramBadRequest as e:
        raise errors.BadRequest(e.message) from e
    except TelegramServerError as e:
        raise errors.ServerError(e.message) from e
    except TelegramNetworkError as e:
        raise errors.NetworkError(e.message) from e
    except TelegramAPIError as e:
        raise errors.TelegramError(e.message) from e


def _markup(
    markup: Markup | None,
) -> InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None:
    if markup is None:
        return None
    if isinstance(markup, InlineKeyboard):
        return _inline(markup)
    if isinstance(markup, RequestKeyboard):
        button = KeyboardButton(
            text=markup.label,
            request_contact=markup.wants == "contact" or None,
            request_location=markup.wants == "location" or None,
        )
        return ReplyKeyboardMarkup(keyboard=[[button]], resize_keyboard=True, one_time_keyboard=True)
    return ReplyKeyboardRemove()


def _inline(markup: InlineKeyboard | None) -> InlineKeyboardMarkup | None:
    if markup is None:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=b.text, callback_data=b.data) for b in row] for row in markup.rows
        ]
    )


def _scope(scope: Scope) -> BotCommandScopeUnion:
    if scope.kind == "chat":
        assert scope.chat_id is not None
        return BotCommandScopeChat(chat_id=scope.chat_id)
    return {
        "default": BotCommandScopeDefault,
        "all_private_chats": BotCommandScopeAllPrivateChats,
        "all_group_chats": BotCommandScopeAllGroupChats,
        "all_chat_administrators": BotCommandScopeAllChatAdministrators,
    }[scope.kind]()


class AiogramApi:
    runtime = "aiogram"

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.request_timeout = float(bot.session.timeout)

    @classmethod
    def connect(cls, token: str, api_base: str | None) -> AiogramApi:
        """A Bot for ``token``; ``api_base`` (``http://host:port``) is a self-hosted Bot API."""
        session = AiohttpSession(api=TelegramAPIServer.from_base(api_base)) if api_base else AiohttpSession()
        # No default parse_mode: texts carry what people typed and are sent as plain text.
        return cls(Bot(token, session=session))

    async def get_me(self) -> BotInfo:
        with translated():
            me = await self.bot.me()
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
        method = _GetRawUpdates(offset=offset, limit=limit, timeout=wait, allowed_updates=allowed_updates)
        with translated():
            raw = await self.bot(method, request_timeout=int(request_timeout))
        return [
            Update.model_validate(update)
            for update in raw
            if known_below is None or update.get("update_id", known_below) >= known_below
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
        file = FSInputFile(photo) if isinstance(photo, Path) else photo
        with translated():
            sent = await self.bot.send_photo(chat_id, file, caption=caption, reply_markup=_markup(markup))
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
                text=text, chat_id=chat_id, message_id=message_id, reply_markup=_inline(markup)
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
            buffer = io.BytesIO()
            await self.bot.download_file(file.file_path, destination=buffer)
        return buffer.getvalue()

    async def set_my_commands(
        self, commands: list[tuple[str, str]], scope: Scope, language_code: str | None
    ) -> None:
        listed = [BotCommand(command=name, description=text) for name, text in commands]
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
        await self.bot.session.close()
