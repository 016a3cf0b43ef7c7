"""Outgoing → Bot API calls: texts, inline and reply keyboards, venues, photos, edits.

Texts are sent as plain text (no parse_mode): they carry what people typed, and a
stray "<" or "_" must never make Telegram refuse a message.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bot.telegram.api import (
    InlineButton,
    InlineKeyboard,
    Markup,
    RemoveKeyboard,
    RequestKeyboard,
    TelegramApi,
)
from bot.telegram.errors import BadRequest
from dialogs.messages import Ask, Outgoing

log = logging.getLogger("linli.telegram")

MAX_TEXT = 4096
MAX_CAPTION = 1024

# Used only when a dialog asks for a contact/location without a label.
_DEFAULT_ASK_LABEL = {Ask.CONTACT: "📱", Ask.LOCATION: "📍"}


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Cut ``text`` into parts of at most ``limit`` characters, preferring paragraph
    breaks, then line breaks, then spaces; a part is never empty."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[: limit + 1]
        for sep in ("\n\n", "\n", " "):
            cut = window.rfind(sep, 0, limit + 1)
            if cut > 0:
                parts.append(rest[:cut].rstrip())
                rest = rest[cut + len(sep) :].lstrip("\n")
                break
        else:
            parts.append(rest[:limit])
            rest = rest[limit:]
        if parts[-1] == "":
            parts.pop()
    if rest.strip() or not parts:
        parts.append(rest)
    return parts


def inline_keyboard(message: Outgoing) -> InlineKeyboard | None:
    if not message.choices:
        return None
    return InlineKeyboard(
        tuple(tuple(InlineButton(c.label, c.data) for c in row) for row in message.choices if row)
    )


def reply_keyboard(message: Outgoing) -> RequestKeyboard | RemoveKeyboard | None:
    """The keyboard under the typing field: a share-contact/location button, or its removal."""
    if message.ask in (Ask.CONTACT, Ask.LOCATION):
        label = message.ask_label or _DEFAULT_ASK_LABEL[message.ask]
        return RequestKeyboard(label, "contact" if message.ask is Ask.CONTACT else "location")
    if message.remove_keyboard:
        return RemoveKeyboard()
    return None


async def send(bot: TelegramApi, chat_id: int, messages: list[Outgoing]) -> list[int]:
    """Send each message in order; returns the ids of the Telegram messages sent (or edited)."""
    ids: list[int] = []
    for message in messages:
        ids += await send_one(bot, chat_id, message)
    return ids


async def send_one(bot: TelegramApi, chat_id: int, message: Outgoing) -> list[int]:
    if message.edit_ref is not None and _editable(message):
        edited = await _try_edit(bot, chat_id, message)
        if edited is not None:
            return edited
    inline = inline_keyboard(message)
    keyboard = reply_keyboard(message)
    # Telegram takes one reply_markup per message. When both are wanted, the reply
    # keyboard goes with the message and the inline buttons are added by an edit.
    markup: Markup | None = keyboard or inline
    late_inline = inline if keyboard is not None else None

    ids: list[int] = []
    if message.photo_ref is not None:
        caption, rest = _caption_split(message.text)
        texts = split_text(rest) if rest else []
        ids.append(
            await bot.send_photo(
                chat_id,
                photo_input(message.photo_ref),
                caption or None,
                None if texts or message.place else markup,
            )
        )
    else:
        texts = split_text(message.text) if message.text.strip() else []
        if not texts and not message.place and markup is not None:
            texts = ["⬇️"]  # a keyboard needs a message to ride on
    for i, part in enumerate(texts):
        last = i == len(texts) - 1 and message.place is None
        ids.append(await bot.send_message(chat_id, part, markup if last else None))
    if message.place is not None:
        p = message.place
        ids.append(await bot.send_venue(chat_id, p.latitude, p.longitude, p.title, p.address, markup))
    if late_inline is not None and ids:
        await bot.edit_message_reply_markup(chat_id, ids[-1], late_inline)
    if not ids:
        log.warning("telegram: nothing to send for an empty message to chat %s", chat_id)
    return ids


def photo_input(ref: str) -> str | Path:
    """A Telegram file id as it is; ``file:<path>`` (a photo Linli stored) is uploaded."""
    return Path(ref.removeprefix("file:")) if ref.startswith("file:") else ref


def _editable(message: Outgoing) -> bool:
    # editMessageText changes text and inline buttons only; anything else is a new message.
    return (
        message.photo_ref is None
        and message.place is None
        and message.ask is None
        and not message.remove_keyboard
        and bool(message.text.strip())
    )


async def _try_edit(bot: TelegramApi, chat_id: int, message: Outgoing) -> list[int] | None:
    """Edit the referenced message; None when it cannot be (too old, deleted, not ours)."""
    assert message.edit_ref is not None
    try:
        message_id = int(message.edit_ref)
    except ValueError:
        return None
    first, *more = split_text(message.text)
    markup = inline_keyboard(message)
    try:
        await bot.edit_message_text(chat_id, message_id, first, None if more else markup)
    except BadRequest as e:
        if not e.mentions("message is not modified"):
            log.info("telegram: edit of %s:%s failed (%s); sending anew", chat_id, message_id, e)
            return None
    ids = [message_id]
    for i, part in enumerate(more):
        last = i == len(more) - 1
        ids.append(await bot.send_message(chat_id, part, markup if last else None))
    return ids


def _caption_split(text: str) -> tuple[str, str]:
    """A caption of at most 1,024 characters, and what is left for following messages."""
    if len(text) <= MAX_CAPTION:
        return text, ""
    text = text.strip()  # so the first part is a prefix of the text
    caption = split_text(text, MAX_CAPTION)[0]
    return caption, text[len(caption) :].lstrip()
