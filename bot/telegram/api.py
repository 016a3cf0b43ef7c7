"""The Bot API calls Linli makes, behind one small interface with two runtimes.

Everything in bot/telegram (polling, webhook, rendering, menus, the outbox transport)
talks to a ``TelegramApi``; which library makes the HTTP calls is a setting,
``LINLI_TELEGRAM_RUNTIME``:

- ``aiogram`` (the default): ``runtime_aiogram.AiogramApi`` on aiogram's ``Bot``;
- ``ptb``: ``runtime_ptb.PtbApi`` on python-telegram-bot's ``Bot``.

The interface speaks in plain values (chat ids, texts, the keyboards below) and raises
only ``bot.telegram.errors``; each runtime turns its library's objects and exceptions
into these, so the code above it is one code path whichever library runs.

Updates are read into one model whichever runtime fetched them: aiogram's pydantic
``Update`` types, used as a typed parse of the Bot API's JSON (no calls are made through
them). Conversion to ``Incoming`` is then one function for both runtimes and for the
webhook.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from aiogram.types import Update

RUNTIMES = ("aiogram", "ptb")


@dataclass(frozen=True, slots=True)
class InlineButton:
    text: str
    data: str


@dataclass(frozen=True, slots=True)
class InlineKeyboard:
    """Buttons under a message; a press comes back as a callback query with ``data``."""

    rows: tuple[tuple[InlineButton, ...], ...]


@dataclass(frozen=True, slots=True)
class RequestKeyboard:
    """One button under the typing field that shares the person's contact or location."""

    label: str
    wants: Literal["contact", "location"]


@dataclass(frozen=True, slots=True)
class RemoveKeyboard:
    """Takes a ``RequestKeyboard`` away."""


Markup = InlineKeyboard | RequestKeyboard | RemoveKeyboard

ScopeKind = Literal["default", "all_private_chats", "all_group_chats", "all_chat_administrators", "chat"]


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a command menu shows (setMyCommands' scope); ``chat_id`` only for ``chat``."""

    kind: ScopeKind
    chat_id: int | None = None


@dataclass(frozen=True, slots=True)
class BotInfo:
    id: int
    username: str | None


class TelegramApi(Protocol):
    """The Bot API methods Linli uses. Message-sending calls return the new message's id."""

    runtime: str
    # Seconds a request may take beyond a long poll's own wait.
    request_timeout: float

    async def get_me(self) -> BotInfo: ...

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
        """The updates from ``offset`` on; those below ``known_below`` (fetched before, still
        in hand: every fetch repeats them until confirmed) are left out unread."""
        ...

    async def delete_webhook(self, *, drop_pending_updates: bool) -> None: ...

    async def set_webhook(
        self,
        *,
        url: str,
        secret_token: str,
        allowed_updates: list[str],
        max_connections: int,
        drop_pending_updates: bool,
    ) -> None: ...

    async def send_message(self, chat_id: int, text: str, markup: Markup | None = None) -> int: ...

    async def send_photo(
        self, chat_id: int, photo: str | Path, caption: str | None, markup: Markup | None = None
    ) -> int:
        """``photo`` is a Telegram file id, or a local file (a ``Path``) to upload."""
        ...

    async def send_venue(
        self,
        chat_id: int,
        latitude: float,
        longitude: float,
        title: str,
        address: str,
        markup: Markup | None = None,
    ) -> int: ...

    async def edit_message_text(
        self, chat_id: int, message_id: int, text: str, markup: InlineKeyboard | None = None
    ) -> None: ...

    async def edit_message_caption(self, chat_id: int, message_id: int, caption: str) -> None: ...

    async def edit_message_reply_markup(
        self, chat_id: int, message_id: int, markup: InlineKeyboard | None = None
    ) -> None: ...

    async def answer_callback_query(self, query_id: str, text: str | None, show_alert: bool) -> None: ...

    async def download(self, file_id: str, max_bytes: int) -> bytes:
        """The file's bytes (getFile, then the file URL); ValueError when it is larger
        than ``max_bytes``, LookupError when Telegram has no path for it."""
        ...

    async def set_my_commands(
        self, commands: list[tuple[str, str]], scope: Scope, language_code: str | None
    ) -> None: ...

    async def delete_my_commands(self, scope: Scope, language_code: str | None) -> None: ...

    async def set_my_description(self, description: str, language_code: str | None) -> None: ...

    async def set_my_short_description(self, short_description: str, language_code: str | None) -> None: ...

    async def close(self) -> None: ...
