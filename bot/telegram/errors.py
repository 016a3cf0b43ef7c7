"""The Bot API's failures as Linli acts on them, whichever runtime met them.

Each runtime (aiogram, python-telegram-bot) raises only these, with Telegram's own
description as the message; callers decide by class: wait (``RetryAfter``), retry
(``NetworkError``, ``ServerError``), give the chat up (``Forbidden``, ``ChatMigrated``),
or log a refusal (``BadRequest``).
"""

from __future__ import annotations


class TelegramError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def mentions(self, phrase: str) -> bool:
        """Whether Telegram's description says ``phrase``, in any case: the runtimes word
        the same error differently ("Bad Request: message is not modified" in aiogram,
        "Message is not modified" in python-telegram-bot)."""
        return phrase.lower() in self.message.lower()


class BadRequest(TelegramError):
    """400: the request is wrong (or the chat is not found, the message not editable…)."""


class Forbidden(TelegramError):
    """403: the person blocked the bot, or it was removed from the group."""


class Unauthorized(TelegramError):
    """401/404 on every call: the token is wrong; waiting does not help."""


class Conflict(TelegramError):
    """409: another process polls with this token, or a webhook is set."""


class RetryAfter(TelegramError):
    """429: flood control; nothing to this chat (or at all) for ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ChatMigrated(TelegramError):
    """The group became a supergroup with a new id; this id takes no more messages."""

    def __init__(self, message: str, new_chat_id: int) -> None:
        super().__init__(message)
        self.new_chat_id = new_chat_id


class NetworkError(TelegramError):
    """No answer: connection refused or dropped, a timeout. Passes with time."""


class ServerError(TelegramError):
    """5xx from the Bot API. Passes with time."""


class EntityTooLarge(TelegramError):
    """413: the upload is too large; retrying will not help."""
