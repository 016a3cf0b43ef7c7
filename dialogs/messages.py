"""Channel-neutral messages: what a person sent (Incoming) and what Linli answers (Outgoing).

Channels (Telegram, the terminal, later WeChat) translate their platform events into
``Incoming`` and render ``Outgoing`` back. Nothing here knows about any platform.
Outgoing values are stored in the outbox as JSON, so they round-trip through
``to_json``/``from_json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    TEXT = "text"
    COMMAND = "command"
    CHOICE = "choice"  # a button press
    LOCATION = "location"
    CONTACT = "contact"
    PHOTO = "photo"
    UNSUPPORTED = "unsupported"  # stickers, voice, files…: answered kindly, never crash
    # Things that happen to a group chat rather than messages in it:
    CHAT_MOVED = "chat_moved"  # the group got a new id (Telegram: upgraded to a supergroup)
    BOT_REMOVED = "bot_removed"  # Linli was removed from the group or may no longer post


class ChatKind(StrEnum):
    PRIVATE = "private"
    GROUP = "group"


@dataclass(frozen=True, slots=True)
class Sender:
    external_id: str
    display_name: str = ""
    username: str | None = None
    language_code: str | None = None  # the client's language, a hint for new users


@dataclass(frozen=True, slots=True)
class Location:
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class Contact:
    phone: str
    # The platform id of the person whose contact this is; equals the sender's
    # own id when they pressed "share my number".
    owner_external_id: str | None = None


@dataclass(frozen=True, slots=True)
class Incoming:
    channel: str
    sender: Sender
    chat_id: str
    kind: Kind
    chat_kind: ChatKind = ChatKind.PRIVATE
    # Unique per channel; a redelivered update carries the same id.
    update_id: str | None = None
    text: str = ""  # text, caption, or the arguments after a command
    command: str | None = None  # without the slash, lower-case
    choice: str | None = None  # button data
    # The message that carried the pressed button, so the answer can replace it.
    message_ref: str | None = None
    location: Location | None = None
    contact: Contact | None = None
    photo_ref: str | None = None  # a platform file id
    moved_to: str | None = None  # CHAT_MOVED: the group's new chat id

    @property
    def conversation_key(self) -> str:
        return f"{self.channel}:{self.chat_id}:{self.sender.external_id}"

    @property
    def update_key(self) -> str | None:
        return None if self.update_id is None else f"{self.channel}:{self.update_id}"


@dataclass(frozen=True, slots=True)
class Choice:
    label: str
    data: str  # at most 64 bytes (Telegram's callback_data limit)


class Ask(StrEnum):
    """A request the channel renders as a special keyboard (Telegram reply keyboard)."""

    LOCATION = "location"
    CONTACT = "contact"
    PHOTO = "photo"


@dataclass(frozen=True, slots=True)
class Place:
    latitude: float
    longitude: float
    title: str
    address: str


@dataclass(slots=True)
class Outgoing:
    text: str
    # Rows of buttons; channels without buttons render them as numbered options.
    choices: list[list[Choice]] = field(default_factory=list)
    ask: Ask | None = None
    # Label of the "type instead" / skip option shown beside an ask keyboard.
    ask_label: str | None = None
    place: Place | None = None
    photo_ref: str | None = None
    # Replace the message with this ref (the one whose button was pressed).
    edit_ref: str | None = None
    # Take away a location/contact keyboard shown by an earlier question.
    remove_keyboard: bool = False
    # A short note for the person who pressed a button, and only them (Telegram shows
    # it over the chat); channels without such a thing show it as a message.
    toast: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> Outgoing:
        return cls.from_dict(json.loads(raw))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outgoing:
        data = dict(data)
        data["choices"] = [[Choice(**c) for c in row] for row in data.get("choices", [])]
        if data.get("ask"):
            data["ask"] = Ask(data["ask"])
        if data.get("place"):
            data["place"] = Place(**data["place"])
        return cls(**data)

    def all_choices(self) -> list[Choice]:
        return [c for row in self.choices for c in row]


MAX_TEXT = 4096


def _can_lead(first: Outgoing, second: Outgoing) -> bool:
    """Whether ``first`` can be folded into the top of ``second``."""
    plain = not (
        first.choices or first.ask or first.place or first.photo_ref or first.edit_ref or first.toast
    )
    target_is_text = not (second.place or second.photo_ref or second.edit_ref or second.toast)
    # One message cannot both take a keyboard away and bring buttons or a new keyboard.
    keyboard_clash = first.remove_keyboard and bool(second.choices or second.ask)
    fits = len(first.text) + len(second.text) + 2 <= MAX_TEXT
    return plain and target_is_text and not keyboard_clash and fits


def coalesce(messages: list[Outgoing]) -> list[Outgoing]:
    """Fold plain lines into the message that follows them: "wrong plate" and the
    question asked again arrive as one message. Fewer messages are easier to follow
    for people new to chat, and cost less of the platform's per-chat rate limit."""
    out: list[Outgoing] = []
    for message in messages:
        if out and _can_lead(out[-1], message):
            first = out.pop()
            message = Outgoing(
                text=f"{first.text}\n\n{message.text}",
                choices=message.choices,
                ask=message.ask,
                ask_label=message.ask_label,
                remove_keyboard=first.remove_keyboard or message.remove_keyboard,
            )
        out.append(message)
    return out
