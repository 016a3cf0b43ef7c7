"""``Update`` (aiogram's model of the Bot API JSON, whichever runtime fetched it) →
channel-neutral ``Incoming``; no I/O, so it is unit-tested directly.

Returns None for whatever Linli does not answer: other bots, service messages
(joins, pins, title changes…), edits, commands addressed to another bot in a group.
"""

from __future__ import annotations

from typing import Any

from aiogram.enums import ChatType, ContentType, MessageEntityType
from aiogram.types import CallbackQuery, Chat, Message, Update, User

from bot.telegram import CHANNEL
from dialogs.messages import ChatKind, Contact, Incoming, Kind, Location, Sender

# Things a person sends that Linli cannot read yet: answered kindly as UNSUPPORTED.
_UNSUPPORTED = frozenset(
    {
        ContentType.ANIMATION,
        ContentType.AUDIO,
        ContentType.DOCUMENT,
        ContentType.LIVE_PHOTO,
        ContentType.PAID_MEDIA,
        ContentType.STICKER,
        ContentType.STORY,
        ContentType.VIDEO,
        ContentType.VIDEO_NOTE,
        ContentType.VOICE,
        ContentType.CHECKLIST,
        ContentType.DICE,
        ContentType.GAME,
        ContentType.POLL,
        ContentType.USERS_SHARED,
        ContentType.CHAT_SHARED,
        ContentType.WEB_APP_DATA,
        ContentType.RICH_MESSAGE,
    }
)


def to_incoming(update: Update, *, bot_username: str | None = None) -> Incoming | None:
    """The Incoming for this update, or None when Linli has nothing to say to it.

    ``bot_username`` (without "@") tells group commands meant for us from those for
    other bots; without it every ``/cmd@name`` in a group is taken as ours.
    """
    update_id = str(update.update_id)
    if update.message is not None:
        return message_to_incoming(update.message, update_id=update_id, bot_username=bot_username)
    if update.callback_query is not None:
        return callback_to_incoming(update.callback_query, update_id=update_id)
    return None


def chat_kind(chat: Chat) -> ChatKind:
    return ChatKind.GROUP if chat.type in (ChatType.GROUP, ChatType.SUPERGROUP) else ChatKind.PRIVATE


def sender_of(user: User) -> Sender:
    name = " ".join(part for part in (user.first_name, user.last_name) if part)
    return Sender(
        external_id=str(user.id),
        display_name=name,
        username=user.username,
        language_code=user.language_code,
    )


def message_to_incoming(
    message: Message, *, update_id: str | None, bot_username: str | None = None
) -> Incoming | None:
    user = message.from_user
    if message.migrate_to_chat_id is not None and user is not None:
        # The group became a supergroup: its driver-group binding must follow it.
        return Incoming(
            channel=CHANNEL,
            sender=sender_of(user),
            chat_id=str(message.chat.id),
            chat_kind=ChatKind.GROUP,
            kind=Kind.CHAT_MOVED,
            update_id=update_id,
            moved_to=str(message.migrate_to_chat_id),
        )
    if user is None or user.is_bot:
        return None  # channel posts, anonymous admins, other bots
    kind_of_chat = chat_kind(message.chat)

    def incoming(kind: Kind, **fields: Any) -> Incoming:
        return Incoming(
            channel=CHANNEL,
            sender=sender_of(user),
            chat_id=str(message.chat.id),
            chat_kind=kind_of_chat,
            kind=kind,
            update_id=update_id,
            **fields,
        )

    content = message.content_type
    if content == ContentType.TEXT:
        text = message.text or ""
        command = _command(message, text)
        if command is not None:
            name, addressee, args = command
            if (
                addressee
                and bot_username
                and kind_of_chat is ChatKind.GROUP
                and addressee != bot_username.lower()
            ):
                return None  # /cmd@otherbot in a group is not for us
            return incoming(Kind.COMMAND, command=name, text=args)
        return incoming(Kind.TEXT, text=text)
    if content in (ContentType.LOCATION, ContentType.VENUE) and message.location is not None:
        # A venue is a place picked from the map: its point is what matters here.
        loc = Location(message.location.latitude, message.location.longitude)
        return incoming(Kind.LOCATION, location=loc)
    if content == ContentType.CONTACT and message.contact is not None:
        owner = message.contact.user_id
        contact = Contact(
            phone=message.contact.phone_number,
            owner_external_id=None if owner is None else str(owner),
        )
        return incoming(Kind.CONTACT, contact=contact)
    if content == ContentType.PHOTO and message.photo:
        largest = max(message.photo, key=lambda size: size.width * size.height)
        return incoming(Kind.PHOTO, photo_ref=largest.file_id, text=message.caption or "")
    if content in _UNSUPPORTED or (
        # A newer Bot API type aiogram does not know yet: in a private chat a person
        # sent it; in a group it may as well be a service message.
        content == ContentType.UNKNOWN and kind_of_chat is ChatKind.PRIVATE
    ):
        return incoming(Kind.UNSUPPORTED, text=message.caption or "")
    return None  # service messages


def _command(message: Message, text: str) -> tuple[str, str, str] | None:
    """(name, addressee, args) for a /command at the start of the text, else None."""
    entity = next(iter(message.entities or ()), None)
    if entity is None or entity.type != MessageEntityType.BOT_COMMAND or entity.offset != 0:
        return None
    # Entity lengths count UTF-16 code units; commands are ASCII but arguments need not be.
    encoded = text.encode("utf-16-le")
    head = encoded[: entity.length * 2].decode("utf-16-le")
    args = encoded[entity.length * 2 :].decode("utf-16-le").strip()
    name, _, addressee = head.removeprefix("/").partition("@")
    return name.lower(), addressee.lower(), args


def callback_to_incoming(query: CallbackQuery, *, update_id: str | None) -> Incoming | None:
    # Inline-mode buttons have no message (hence no chat); Linli sends none of those.
    if query.message is None or query.data is None or query.from_user.is_bot:
        return None
    chat = query.message.chat  # present on inaccessible (old, deleted) messages too
    return Incoming(
        channel=CHANNEL,
        sender=sender_of(query.from_user),
        chat_id=str(chat.id),
        chat_kind=chat_kind(chat),
        kind=Kind.CHOICE,
        update_id=update_id,
        choice=query.data,
        message_ref=str(query.message.message_id),
    )
