"""In-process fake of the Telegram Bot API for end-to-end tests.

The fake is an aiohttp server on 127.0.0.1 that speaks the same HTTP protocol as
api.telegram.org, so the real aiogram ``Bot`` (or python-telegram-bot) can be pointed at it
with ``TelegramAPIServer.from_base(server.base_url)`` — in the test's event loop or in a
subprocess via ``LINLI_TELEGRAM_API_BASE``. State (users, chats, pending updates, sent
messages) lives in the server object, so a bot process can be SIGKILLed and restarted while
the test keeps observing.

Test side, in short::

    async with FakeTelegramServer() as tg:
        alice = tg.user(1001, "Alice")
        tg.send_text(alice, "/start")
        msg = await tg.wait_for_text(alice, "欢迎")
        tg.press(alice, msg, "ride:new")

Webhook mode (opt-in, as on Telegram): once the bot calls ``setWebhook``, queued updates
are POSTed as JSON to its URL with the ``X-Telegram-Bot-Api-Secret-Token`` header, at most
``max_connections`` at once and one at a time per chat (a chat's next update waits for the
answer to the previous one). A 2xx answer confirms the update; any other status, a refused
or dropped connection or no answer within ``webhook_timeout`` seconds is recorded in
``webhook_attempts`` and the update is delivered again ``webhook_retry_after`` seconds
later. ``webhook_route`` plays the load balancer: it maps the URL the bot registered to
the worker that gets each delivery. getUpdates answers 409 while a webhook is set;
``deleteWebhook`` returns to polling.

Descriptions of errors copy Telegram's wording where it is known (the ones client code
matches on: "message is not modified", "chat not found", "bot was blocked by the user",
"terminated by other getUpdates request", "can't parse entities"); the rest are close
approximations.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import math
import re
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp
import pytest_asyncio
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiohttp import BodyPartReader, web

__all__ = [
    "DEFAULT_TOKEN",
    "CallbackAnswer",
    "FakeChat",
    "FakeTelegramServer",
    "FakeUser",
    "PlainHttpSession",
    "RecordedRequest",
    "SentMessage",
    "UploadedFile",
    "WebhookAttempt",
    "fake_telegram",
]

DEFAULT_TOKEN = "123456:TEST-TOKEN"
DEFAULT_BOT_USERNAME = "linli_test_bot"

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"

# Telegram's default when allowed_updates was never set (or set to []).
_NOT_DEFAULT_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_INLINE_ACTIONS = (
    "callback_data",
    "url",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_LANGUAGE_RE = re.compile(r"^[a-z]{2}$")
# (width, height) of the sizes Telegram generates for a photo, largest last.
_PHOTO_SIZES = ((90, 68), (320, 240), (1280, 960))


class ApiError(Exception):
    """A Bot API error response: raised inside method handlers, turned into the envelope."""

    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


def _utf16_len(text: str) -> int:
    # Telegram measures entity offsets and lengths in UTF-16 code units.
    return len(text.encode("utf-16-le")) // 2


# --------------------------------------------------------------------------- formatting


class _EntityParseError(Exception):
    pass


_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_ATTR_RE = re.compile(r"""([a-zA-Z_-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _parse_html(src: str) -> tuple[str, list[dict[str, Any]]]:
    """Strip Telegram-HTML tags into plain text + entities, rejecting what Telegram rejects."""
    out: list[str] = []
    pos = 0  # UTF-16 offset in the output
    stack: list[dict[str, Any]] = []
    entities: list[dict[str, Any]] = []
    i = 0

    def byte_offset(index: int) -> int:
        return len(src[:index].encode())

    def emit(text: str) -> None:
        nonlocal pos
        out.append(text)
        pos += _utf16_len(text)

    while i < len(src):
        char = src[i]
        if char == "<":
            end = src.find(">", i)
            if end < 0:
                raise _EntityParseError(f"Unclosed start tag at byte offset {byte_offset(i)}")
            inner = src[i + 1 : end]
            if inner.startswith("/"):
                name = inner[1:].strip().lower()
                if not stack:
                    raise _EntityParseError(f"Unexpected end tag at byte offset {byte_offset(i)}")
                top = stack.pop()
                if name and name != top["tag"]:
                    raise _EntityParseError(
                        f"Unmatched end tag at byte offset {byte_offset(i)}, expected "
                        f'"</{top["tag"]}>", found "</{name}>"'
                    )
                length = pos - top["offset"]
                language = top["attrs"].get("class", "")
                if top["tag"] == "code" and stack and stack[-1]["tag"] == "pre":
                    # <pre><code class="language-x"> is one pre entity with a language.
                    if language.startswith("language-"):
                        stack[-1]["language"] = language.removeprefix("language-")
                elif length > 0 and top["type"] is not None:
                    entity = {"type": top["type"], "offset": top["offset"], "length": length}
                    if top["type"] == "text_link":
                        entity["url"] = top["attrs"].get("href", "")
                    if top["type"] == "pre" and top.get("language"):
                        entity["language"] = top["language"]
                    if top["type"] == "custom_emoji":
                        entity["custom_emoji_id"] = top["attrs"].get("emoji-id", "")
                    if top["type"] == "blockquote" and "expandable" in top["attrs"]:
                        entity["type"] = "expandable_blockquote"
                    entities.append(entity)
            else:
                match = re.match(r"([a-zA-Z][a-zA-Z0-9-]*)", inner)
                name = match.group(1).lower() if match else ""
                if name not in _HTML_TAGS:
                    raise _EntityParseError(f'Unsupported start tag "{name}" at byte offset {byte_offset(i)}')
                attrs = {
                    m.group(1).lower(): next((g for g in m.groups()[1:] if g is not None), "")
                    for m in _HTML_ATTR_RE.finditer(inner[len(name) :])
                }
                if name == "span" and attrs.get("class") != "tg-spoiler":
                    raise _EntityParseError(f'Unsupported start tag "span" at byte offset {byte_offset(i)}')
                entity_type: str | None = _HTML_TAGS[name]
                if name == "a" and not attrs.get("href"):
                    entity_type = None  # Telegram keeps the text and drops the link
                stack.append({"tag": name, "type": entity_type, "offset": pos, "attrs": attrs})
            i = end + 1
        elif char == "&":
            match = re.match(r"&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);", src[i:])
            if match is None:
                emit("&")
                i += 1
                continue
            ref = match.group(1)
            if ref.startswith("#x"):
                emit(chr(int(ref[2:], 16)))
            elif ref.startswith("#"):
                emit(chr(int(ref[1:])))
            else:
                emit(_HTML_NAMED.get(ref, match.group(0)))
            i += len(match.group(0))
        else:
            emit(char)
            i += 1
    if stack:
        raise _EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1]["tag"]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


_MD2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MD2_NAMES = {
    "*": ("bold", "Bold"),
    "_": ("italic", "Italic"),
    "__": ("underline", "Underline"),
    "~": ("strikethrough", "Strikethrough"),
    "||": ("spoiler", "Spoiler"),
    "[": ("text_link", "TextUrl"),
}


def _parse_markdown(src: str, *, v2: bool) -> tuple[str, list[dict[str, Any]]]:
    """Telegram MarkdownV2 (v2=True) or legacy Markdown into plain text + entities."""
    out: list[str] = []
    pos = 0
    stack: list[tuple[str, int, int]] = []  # (marker, utf16 offset, byte offset)
    entities: list[dict[str, Any]] = []
    i = 0

    def byte_offset(index: int) -> int:
        return len(src[:index].encode())

    def emit(text: str) -> None:
        nonlocal pos
        out.append(text)
        pos += _utf16_len(text)

    def find_closing(start: int, marker: str) -> int:
        j = start
        while j < len(src):
            if src[j] == "\\" and v2:
                j += 2
                continue
            if src.startswith(marker, j):
                return j
            j += 1
        if v2:
            name = "Pre" if marker == "```" else "Code"
            raise _EntityParseError(f"Can't find end of {name} entity at byte offset {start}")
        raise _EntityParseError(f"Can't find end of the entity starting at byte offset {byte_offset(start)}")

    def unescape(text: str) -> str:
        return re.sub(r"\\(.)", r"\1", text) if v2 else text

    def toggle(marker: str) -> None:
        if stack and stack[-1][0] == marker:
            _, start, _ = stack.pop()
            if pos > start:
                entities.append({"type": _MD2_NAMES[marker][0], "offset": start, "length": pos - start})
        else:
            stack.append((marker, pos, byte_offset(i)))

    line_start = True
    while i < len(src):
        char = src[i]
        at_line_start, line_start = line_start, char == "\n"
        if char == "\\" and (v2 or (i + 1 < len(src) and src[i + 1] in "_*`[")):
            if i + 1 >= len(src):
                raise _EntityParseError(
                    "Character '\\' is reserved and must be escaped with the preceding '\\'"
                )
            emit(src[i + 1])
            i += 2
        elif char == "`":
            fence = "```" if src.startswith("```", i) else "`"
            body_start = i + len(fence)
            end = find_closing(body_start, fence)
            body = src[body_start:end]
            entity: dict[str, Any] = {"type": "code", "offset": pos}
            if fence == "```":
                entity["type"] = "pre"
                first, newline, rest = body.partition("\n")
                if newline and first and not re.search(r"\s", first):
                    entity["language"] = first
                    body = rest
            text = unescape(body)
            emit(text)
            entity["length"] = _utf16_len(text)
            if entity["length"]:
                entities.append(entity)
            i = end + len(fence)
        elif char == "*" or (char == "~" and v2):
            toggle(char)
            i += 1
        elif char == "_":
            marker = "__" if v2 and src.startswith("__", i) else "_"
            toggle(marker)
            i += len(marker)
        elif char == "|" and v2 and src.startswith("||", i):
            toggle("||")
            i += 2
        elif char == "[":
            stack.append(("[", pos, byte_offset(i)))
            i += 1
        elif char == "]" and stack and stack[-1][0] == "[":
            _, start, _ = stack.pop()
            if not src.startswith("(", i + 1):
                raise _EntityParseError(
                    "Character ']' is reserved and must be escaped with the preceding '\\'"
                )
            end = find_closing(i + 2, ")")
            url = unescape(src[i + 2 : end])
            if pos > start:
                entities.append({"type": "text_link", "offset": start, "length": pos - start, "url": url})
            i = end + 1
        elif v2 and char == ">" and at_line_start:
            i += 1  # quote marker; the fake does not build blockquote entities
        elif v2 and char in _MD2_RESERVED:
            raise _EntityParseError(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        else:
            emit(char)
            i += 1
    if stack:
        marker, _, start_byte = stack[-1]
        if v2:
            raise _EntityParseError(
                f"Can't find end of {_MD2_NAMES[marker][1]} entity at byte offset {start_byte}"
            )
        raise _EntityParseError(f"Can't find end of the entity starting at byte offset {start_byte}")
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def format_text(
    text: str, parse_mode: str | None, entities: list[dict[str, Any]] | None = None
) -> tuple[str, list[dict[str, Any]] | None]:
    """What the recipient sees for ``text`` sent with ``parse_mode`` (or explicit entities)."""
    if entities is not None or not parse_mode:
        return text, entities or None
    mode = parse_mode.lower()
    try:
        if mode == "html":
            plain, found = _parse_html(text)
        elif mode == "markdownv2":
            plain, found = _parse_markdown(text, v2=True)
        elif mode == "markdown":
            plain, found = _parse_markdown(text, v2=False)
        else:
            raise _bad("unsupported parse_mode")
    except _EntityParseError as e:
        raise _bad(f"can't parse entities: {e}") from None
    return plain, found or None


# --------------------------------------------------------------------------- data types


@dataclass
class FakeUser:
    """A simulated Telegram user; their private chat with the bot has chat id == user id."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "zh-hans"

    @property
    def chat_id(self) -> int:
        return self.id

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            value = getattr(self, key)
            if value:
                data[key] = value
        return data

    def chat_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        return data


@dataclass
class FakeChat:
    """A simulated group (negative id); ids <= -10**12 are supergroups like on Telegram."""

    id: int
    title: str
    username: str | None = None

    @property
    def chat_id(self) -> int:
        return self.id

    @property
    def type(self) -> str:
        return "supergroup" if self.id <= -1_000_000_000_000 else "group"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type, "title": self.title}
        if self.username:
            data["username"] = self.username
        return data


@dataclass
class UploadedFile:
    """A multipart file part of a request."""

    field: str
    filename: str | None
    content_type: str
    data: bytes


@dataclass
class RecordedRequest:
    """One HTTP request to a ``/bot{token}/{method}`` route, as parsed by the fake."""

    method: str  # canonical Bot API name ("sendMessage"), or the raw path segment if unknown
    http_method: str
    content_type: str
    fields: dict[str, Any]  # form values stay strings; JSON bodies keep their JSON types
    files: dict[str, UploadedFile]
    status: int = 0
    response: dict[str, Any] | None = None


@dataclass
class SentMessage:
    """A message the bot created, with its current state after edits."""

    index: int  # position in server.sent, for wait_for(since=...)
    chat_id: int
    message_id: int
    method: str
    text: str | None  # text as the user sees it (entities parsed), or the caption
    reply_markup: dict[str, Any] | None  # any markup kind, as sent (inline or reply keyboard)
    fields: dict[str, Any]  # raw request fields of the creating call
    message: dict[str, Any]  # the Message object, kept current
    edits: list[dict[str, Any]] = field(default_factory=list)  # new state after each edit
    deleted: bool = False

    @property
    def buttons(self) -> list[tuple[str, str | None]]:
        """Inline buttons as (text, callback_data) pairs, row by row."""
        return _inline_buttons(self.reply_markup)

    @property
    def entities(self) -> list[dict[str, Any]] | None:
        return self.message.get("entities") or self.message.get("caption_entities")

    def __str__(self) -> str:
        state = " (deleted)" if self.deleted else ""
        buttons = f" buttons={self.buttons}" if self.buttons else ""
        return f"#{self.message_id} {self.method} {self.text!r}{buttons}{state}"


@dataclass
class CallbackAnswer:
    query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int
    data: str | None  # the callback_data the user pressed
    user_id: int
    chat_id: int | None
    message_id: int | None


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    content: bytes
    kind: str
    width: int = 0
    height: int = 0


@dataclass
class _QueuedUpdate:
    update: dict[str, Any]
    forced: bool = False  # push_raw: deliver even if the offset already passed its id
    delivered: bool = False
    posting: bool = False  # webhook: a POST of it is under way
    retry_at: float = 0.0  # webhook: not before this (loop time) after a failed POST

    @property
    def update_id(self) -> int:
        return int(self.update["update_id"])


@dataclass
class WebhookAttempt:
    """One POST of an update to the bot's webhook, and how it ended."""

    update_id: int
    url: str
    status: int | None = None  # the HTTP status, if the bot answered at all
    error: str | None = None  # connection refused or dropped, timeout

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class PlainHttpSession(AiohttpSession):
    """AiohttpSession whose close() skips the 250 ms TLS-shutdown sleep (plain HTTP here)."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


class _Pulse:
    """Wake-everyone signal that synchronous code can fire (asyncio.Condition needs a lock)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self) -> None:
        await self._event.wait()

    def next(self) -> asyncio.Event:
        """The event the next fire() sets: take it before looking, and nothing is missed."""
        return self._event


def _inline_buttons(markup: dict[str, Any] | None) -> list[tuple[str, str | None]]:
    if not markup or "inline_keyboard" not in markup:
        return []
    return [
        (button.get("text", ""), button.get("callback_data"))
        for row in markup["inline_keyboard"]
        for button in row
    ]


class _Params:
    """Typed access to request fields that may be form strings or JSON values."""

    def __init__(self, fields: dict[str, Any], files: dict[str, UploadedFile]) -> None:
        self.fields = fields
        self.files = files

    def raw(self, name: str) -> Any:
        value = self.fields.get(name)
        return None if value is None or value == "" else value

    def get_str(self, name: str) -> str | None:
        value = self.raw(name)
        if value is None or isinstance(value, str):
            return value
        return json.dumps(value) if isinstance(value, dict | list) else str(value)

    def get_int(self, name: str) -> int | None:
        value = self.raw(name)
        if value is None:
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            raise _bad(f"invalid {name} specified") from None

    def get_float(self, name: str) -> float | None:
        value = self.raw(name)
        if value is None:
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise _bad(f"invalid {name} specified") from None

    def get_bool(self, name: str) -> bool:
        value = self.raw(name)
        if isinstance(value, bool):
            return value
        return str(value).lower() in {"true", "1"}

    def get_json(self, name: str, error: str | None = None) -> Any:
        value = self.raw(name)
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise _bad(error or f"can't parse {name} JSON object") from None


ChatRef = int | FakeUser | FakeChat
Handler = Callable[[_Params, web.Request], Awaitable[Any]]


def _chat_id_of(chat: ChatRef) -> int:
    return chat if isinstance(chat, int) else chat.id


# --------------------------------------------------------------------------- the server


@dataclass
class Stall:
    """A held API call (see FakeTelegramServer.stall)."""

    method: str
    chat_id: int
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Hold:
    """Answers held back after the calls were carried out (see FakeTelegramServer.hold_answers)."""

    method: str
    held: int = 0  # calls carried out and waiting for their answer
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_held(self, count: int) -> None:
        """Until at least ``count`` calls are held (bound it with ``asyncio.timeout``)."""
        async with self.changed:
            await self.changed.wait_for(lambda: self.held >= count)


class FakeTelegramServer:
    """Fake Bot API server; see the module docstring."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = DEFAULT_BOT_USERNAME,
        bot_first_name: str = "Linli",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_username = bot_username
        self.bot_user: dict[str, Any] = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }
        self.host = host
        self.port = port
        self.base_url = ""

        # Injectable clocks: `clock` drives flood limits, `wall_clock` message dates.
        self.clock: Callable[[], float] = time.monotonic
        self.wall_clock: Callable[[], float] = time.time

        # Observations for tests.
        self.requests: list[RecordedRequest] = []
        self.sent: list[SentMessage] = []
        self.callback_answers: list[CallbackAnswer] = []
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.chat_actions: list[tuple[int, str]] = []
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        self.reply_keyboards: dict[int, list[list[str]]] = {}
        self.updates: list[dict[str, Any]] = []  # every update ever queued
        self.deliveries: list[int] = []  # update_ids in the order getUpdates returned them
        self.dropped_updates: list[dict[str, Any]] = []  # filtered out by allowed_updates
        self.bot_settings: dict[str, Any] = {}  # setMyDescription & co. (the last call)
        # (setting, language_code or "") → the fields of the last call for that language.
        self.bot_settings_by_language: dict[tuple[str, str], dict[str, Any]] = {}

        # Simulated world.
        self.users: dict[int, FakeUser] = {}
        self.groups: dict[int, FakeChat] = {}
        self._blocked: dict[int, str] = {}
        # Groups upgraded to supergroups: old id → new id (sending to the old id fails).
        self._migrated: dict[int, int] = {}

        # Told of every message the bot creates (cheaper than wait_for with many chats).
        self.observers: list[Callable[[SentMessage], None]] = []

        # Failure injection and flood emulation.
        self._held: asyncio.Event | None = None  # see hold()
        self.held_calls = 0
        self._held_ports: Counter[int] = Counter()  # client port of each held call
        self._failures: list[dict[str, Any]] = []
        self._stalls: list[Stall] = []
        self._holds: list[Hold] = []
        self.enforce_limits = False
        self.flood_violations = 0
        self.private_limit: tuple[int, float] = (3, 3.0)  # 1 msg/s with a burst of 3
        self.group_limit: tuple[int, float] = (20, 60.0)
        self.global_limit: tuple[int, float] = (30, 1.0)
        self._flood_chat: dict[int, deque[float]] = {}
        self._flood_global: deque[float] = deque()
        # Counting limits (see limit_chat): chat id -> [messages still allowed, retry_after].
        self._quotas: dict[int, list[int]] = {}
        # Every message the bot tried to send, in order: ("sent" | "429", chat id).
        self.send_log: list[tuple[str, int]] = []
        self.last_sent_at = 0.0  # time.monotonic() of the last message let through

        # Update queue and long polling.
        self._queue: list[_QueuedUpdate] = []
        self._confirmed_ids: set[int] = set()
        self._next_update_id = 1
        self._allowed_updates: frozenset[str] | None = None
        self._poller: web.Request | None = None
        self.conflict_grace = 0.25  # how long a new poll waits for a dying old one
        self._update_pulse = _Pulse()
        self._poller_pulse = _Pulse()

        # Webhook delivery (setWebhook), see the module docstring.
        self.webhook: dict[str, Any] | None = None  # url, secret_token, max_connections
        self.webhook_route: Callable[[str], str] | None = None  # the load balancer
        self.webhook_timeout = 60.0
        self.webhook_retry_after = 0.5
        self.webhook_attempts: list[WebhookAttempt] = []
        self.webhook_last_error: str | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()

        # Messages and files.
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._sent_by_key: dict[tuple[int, int], SentMessage] = {}
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._queries: dict[str, dict[str, Any]] = {}
        self._answered: set[str] = set()
        self._files: dict[str, _StoredFile] = {}
        self._files_by_path: dict[str, _StoredFile] = {}
        self._photo_groups: dict[str, list[dict[str, Any]]] = {}
        self._counter = itertools.count(1)

        self._closing = False
        self._runner: web.AppRunner | None = None
        self._methods: dict[str, tuple[str, Handler]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "getUpdates": self._get_updates,
                "setWebhook": self._set_webhook,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "sendMessage": self._send_message,
                "editMessageText": self._edit_message_text,
                "editMessageCaption": self._edit_message_caption,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "deleteMessage": self._delete_message,
                "answerCallbackQuery": self._answer_callback_query,
                "sendLocation": self._send_location,
                "sendVenue": self._send_venue,
                "sendContact": self._send_contact,
                "sendPhoto": self._send_photo,
                "sendDocument": self._send_document,
                "getFile": self._get_file,
                "sendChatAction": self._send_chat_action,
                "getChat": self._get_chat,
                "setChatMenuButton": self._set_chat_menu_button,
                "getChatMenuButton": self._get_chat_menu_button,
                "setMyDescription": self._set_bot_setting("description"),
                "setMyShortDescription": self._set_bot_setting("short_description"),
                "setMyName": self._set_bot_setting("name"),
                "close": self._accept,
                "logOut": self._accept,
            }.items()
        }

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> str:
        """Start listening; returns the base URL ("http://127.0.0.1:PORT")."""
        app = web.Application(client_max_size=60 * 1024 * 1024)  # Telegram: 50 MB uploads
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        # handler_cancellation: a client that drops mid long-poll cancels its handler, so a
        # killed bot process does not leave a phantom poller that 409s its successor.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self.base_url = f"http://{self.host}:{self.port}"
        self._closing = False
        return self.base_url

    async def stop(self) -> None:
        self._closing = True
        await self._stop_webhook()
        self._update_pulse.fire()  # let pending long polls answer [] instead of hanging
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def make_bot(self, **bot_kwargs: Any) -> Bot:
        """An aiogram Bot talking to this server (close it with ``await bot.session.close()``)."""
        session = PlainHttpSession(api=TelegramAPIServer.from_base(self.base_url))
        return Bot(bot_kwargs.pop("token", self.token), session=session, **bot_kwargs)

    # ------------------------------------------------------------------ simulated world

    def user(
        self,
        user_id: int,
        first_name: str,
        *,
        language_code: str | None = "zh-hans",
        username: str | None = None,
        last_name: str | None = None,
    ) -> FakeUser:
        assert user_id > 0, "user ids are positive"
        user = FakeUser(user_id, first_name, last_name, username, language_code)
        self.users[user_id] = user
        return user

    def group(self, chat_id: int, title: str, *, username: str | None = None) -> FakeChat:
        assert chat_id < 0, "group chat ids are negative"
        chat = FakeChat(chat_id, title, username)
        self.groups[chat_id] = chat
        return chat

    def send_text(
        self,
        user: FakeUser,
        text: str,
        *,
        chat: FakeChat | None = None,
        reply_to: SentMessage | dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The user sends ``text``; a leading /command gets its bot_command entity."""
        body: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            body["entities"] = [{"type": "bot_command", "offset": 0, "length": _utf16_len(command)}]
        if reply_to is not None:
            target = reply_to.message if isinstance(reply_to, SentMessage) else reply_to
            body["reply_to_message"] = copy.deepcopy(target)
        return self._user_message(user, chat, body)

    def send_location(
        self,
        user: FakeUser,
        latitude: float,
        longitude: float,
        *,
        chat: FakeChat | None = None,
    ) -> dict[str, Any]:
        location = {"latitude": latitude, "longitude": longitude}
        return self._user_message(user, chat, {"location": location})

    def send_contact(
        self,
        user: FakeUser,
        phone_number: str,
        *,
        own: bool = True,
        first_name: str | None = None,
    ) -> dict[str, Any]:
        """Share a contact; own=True is the "share my phone number" button (user_id set)."""
        contact: dict[str, Any] = {
            "phone_number": phone_number,
            "first_name": first_name or (user.first_name if own else "Contact"),
        }
        if own:
            contact["user_id"] = user.id
        return self._user_message(user, None, {"contact": contact})

    def send_photo(
        self,
        user: FakeUser,
        content: bytes,
        *,
        caption: str | None = None,
        chat: FakeChat | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"photo": self._store_photo(content)}
        if caption:
            body["caption"] = caption
        return self._user_message(user, chat, body)

    def send_sticker(self, user: FakeUser) -> dict[str, Any]:
        stored = self._store_file(b"RIFF-fake-webp", "stickers", "webp")
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "👍",
            "file_size": len(stored.content),
        }
        return self._user_message(user, None, {"sticker": sticker})

    def send_voice(self, user: FakeUser, *, duration: int = 3) -> dict[str, Any]:
        stored = self._store_file(b"OggS-fake-voice", "voice", "oga")
        voice = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": len(stored.content),
        }
        return self._user_message(user, None, {"voice": voice})

    def press(
        self,
        user: FakeUser,
        message: SentMessage | dict[str, Any],
        data: str,
        *,
        forge: bool = False,
    ) -> dict[str, Any]:
        """The user presses the inline button carrying ``data`` under ``message``.

        forge=True sends the callback even if no such button exists (a modified client).
        """
        # The callback carries the message as it is now (after edits), like on Telegram.
        sent: SentMessage | None
        if isinstance(message, SentMessage):
            sent, current = message, message.message
        else:
            sent = self._sent_by_key.get((int(message["chat"]["id"]), int(message["message_id"])))
            current = sent.message if sent is not None else message
        if not forge:
            if sent is not None and sent.deleted:
                raise AssertionError(f"message {sent} was deleted; its buttons are gone")
            buttons = _inline_buttons(current.get("reply_markup"))
            if data not in [d for _, d in buttons]:
                raise AssertionError(
                    f"no inline button with callback_data {data!r} on message "
                    f"#{current.get('message_id')}; buttons: {buttons}"
                )
        chat_id = int(current["chat"]["id"])
        query_id = str(4_200_000_000_000_000 + next(self._counter))
        query = {
            "id": query_id,
            "from": user.to_dict(),
            "chat_instance": str((chat_id * 2654435761) % (1 << 62)),
            "message": copy.deepcopy(current),
            "data": data,
        }
        self._queries[query_id] = query
        return self._enqueue({"callback_query": query})

    def push_raw(self, update: dict[str, Any]) -> dict[str, Any]:
        """Deliver ``update`` (again, keeping its update_id) even if it was confirmed before."""
        update = copy.deepcopy(update)
        if "update_id" not in update:
            update["update_id"] = self._new_update_id()
        update_id = int(update["update_id"])
        self._next_update_id = max(self._next_update_id, update_id + 1)
        self._confirmed_ids.discard(update_id)
        self.updates.append(update)
        self._queue.append(_QueuedUpdate(update, forced=True))
        self._update_pulse.fire()
        return update

    def migrate_group(self, chat: FakeChat, new_id: int, *, by: FakeUser) -> FakeChat:
        """The group becomes a supergroup with a new id, as Telegram does when a group
        grows or gets admin features: a service message in the old chat names the new id,
        one in the new chat names the old; sending to the old id fails from now on."""
        new = self.group(new_id, chat.title, username=chat.username)
        self._migrated[chat.id] = new_id
        for where, body in ((chat, {"migrate_to_chat_id": new_id}), (new, {"migrate_from_chat_id": chat.id})):
            self._enqueue(
                {
                    "message": {
                        "message_id": next(self._counter),
                        "from": by.to_dict(),
                        "chat": where.to_dict(),
                        "date": self._now(),
                        **body,
                    }
                }
            )
        return new

    def remove_bot(self, chat: FakeChat, *, by: FakeUser, status: str = "kicked") -> dict[str, Any]:
        """Someone removes the bot from a group (``kicked``/``left``), or takes its right
        to post away (``restricted``): the bot gets its my_chat_member update."""
        if status != "restricted":
            self._blocked[chat.id] = "Forbidden: bot was kicked from the group chat"
        else:
            self._blocked[chat.id] = "Bad Request: not enough rights to send text messages to the chat"
        new_member: dict[str, Any] = {"status": status, "user": dict(self.bot_user)}
        if status == "kicked":
            new_member["until_date"] = 0
        if status == "restricted":
            new_member.update(is_member=True, can_send_messages=False, until_date=0)
        return self._enqueue(
            {
                "my_chat_member": {
                    "chat": chat.to_dict(),
                    "from": by.to_dict(),
                    "date": self._now(),
                    "old_chat_member": {"status": "member", "user": dict(self.bot_user)},
                    "new_chat_member": new_member,
                }
            }
        )

    def block(self, user: FakeUser, *, notify: bool = True) -> dict[str, Any] | None:
        """The user blocks the bot; with notify, the bot gets its my_chat_member update."""
        self._blocked[user.id] = "Forbidden: bot was blocked by the user"
        return self._member_update(user, "member", "kicked") if notify else None

    def unblock(self, user: FakeUser, *, notify: bool = True) -> dict[str, Any] | None:
        self._blocked.pop(user.id, None)
        return self._member_update(user, "kicked", "member") if notify else None

    def deactivate(self, user: FakeUser) -> None:
        """The user deleted their account."""
        self._blocked[user.id] = "Forbidden: user is deactivated"

    # ------------------------------------------------------------------ observing the bot

    def messages_to(self, chat: ChatRef) -> list[SentMessage]:
        chat_id = _chat_id_of(chat)
        return [m for m in self.sent if m.chat_id == chat_id]

    def inline_buttons(self, message: SentMessage | dict[str, Any]) -> list[tuple[str, str | None]]:
        if isinstance(message, SentMessage):
            return message.buttons
        return _inline_buttons(message.get("reply_markup"))

    def reply_keyboard(self, chat: ChatRef) -> list[list[str]] | None:
        """Button texts of the reply keyboard currently shown in the chat, if any."""
        return self.reply_keyboards.get(_chat_id_of(chat))

    def get_commands(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, Any]] | None:
        return self.commands.get((_scope_key(scope), language_code))

    def commands_for(self, user: FakeUser, chat: FakeChat | None = None) -> list[dict[str, Any]]:
        """The command menu the user's app would show, resolved like Telegram does."""
        language = (user.language_code or "").split("-")[0]
        if chat is None:
            scopes: list[dict[str, Any]] = [
                {"type": "chat", "chat_id": user.id},
                {"type": "all_private_chats"},
                {"type": "default"},
            ]
        else:
            scopes = [
                {"type": "chat_member", "chat_id": chat.id, "user_id": user.id},
                {"type": "chat", "chat_id": chat.id},
                {"type": "all_group_chats"},
                {"type": "default"},
            ]
        for scope in scopes:
            for lang in (language, ""):
                found = self.commands.get((_scope_key(scope), lang))
                if found:
                    return found
        return []

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        return [entry.update for entry in self._queue]

    @property
    def polling(self) -> bool:
        return self._poller is not None and not _request_gone(self._poller)

    async def wait_for(
        self,
        predicate: Callable[[SentMessage], bool],
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - tests pass timeout=
        since: int = 0,
        chat: ChatRef | None = None,
    ) -> SentMessage:
        """First message in ``sent[since:]`` satisfying ``predicate`` (re-checked on edits)."""

        async def find() -> SentMessage:
            async with self._changed:
                while True:
                    for message in self.sent[since:]:
                        if predicate(message):
                            return message
                    await self._changed.wait()

        try:
            async with asyncio.timeout(timeout):
                return await find()
        except TimeoutError:
            raise AssertionError(
                f"no matching message within {timeout}s; {self.describe(chat, since=since)}"
            ) from None

    async def wait_for_text(
        self,
        chat: ChatRef,
        substring: str,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - tests pass timeout=
        since: int = 0,
    ) -> SentMessage:
        chat_id = _chat_id_of(chat)
        try:
            return await self.wait_for(
                lambda m: m.chat_id == chat_id and not m.deleted and substring in (m.text or ""),
                timeout=timeout,
                since=since,
                chat=chat_id,
            )
        except AssertionError as e:
            raise AssertionError(f"waiting for {substring!r}: {e}") from None

    async def wait_confirmed(
        self,
        update_id: int | dict[str, Any],
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - tests pass timeout=
    ) -> None:
        """Wait until the bot's getUpdates offset has passed (confirmed) the update."""
        if isinstance(update_id, dict):
            update_id = int(update_id["update_id"])
        wanted = update_id

        def confirmed() -> bool:
            return wanted in self._confirmed_ids and all(e.update_id != wanted for e in self._queue)

        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    await self._changed.wait_for(confirmed)
        except TimeoutError:
            pending = [e.update_id for e in self._queue]
            raise AssertionError(
                f"update {wanted} not confirmed within {timeout}s; pending: {pending}; "
                f"polling: {self.polling}"
            ) from None

    async def wait_webhook(
        self,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - tests pass timeout=
    ) -> dict[str, Any]:
        """Wait until the bot has set a webhook; returns its settings."""
        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    await self._changed.wait_for(lambda: self.webhook is not None)
        except TimeoutError:
            raise AssertionError(f"no webhook set within {timeout}s") from None
        assert self.webhook is not None
        return self.webhook

    async def wait_polling(
        self,
        active: bool = True,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - tests pass timeout=
    ) -> None:
        """Wait until a getUpdates request is (or no longer is) waiting on the server."""
        try:
            async with asyncio.timeout(timeout):
                while self.polling != active:
                    await self._poller_pulse.wait()
        except TimeoutError:
            raise AssertionError(f"polling did not become {active} within {timeout}s") from None

    async def wait_callback_answer(
        self,
        query: str | dict[str, Any],
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - tests pass timeout=
    ) -> CallbackAnswer:
        """Wait for answerCallbackQuery for a query id or a press() update."""
        query_id = query if isinstance(query, str) else str(query["callback_query"]["id"])

        def answer() -> CallbackAnswer | None:
            return next((a for a in self.callback_answers if a.query_id == query_id), None)

        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    await self._changed.wait_for(lambda: answer() is not None)
        except TimeoutError:
            raise AssertionError(f"callback query {query_id} not answered in {timeout}s") from None
        result = answer()
        assert result is not None
        return result

    def describe(self, chat: ChatRef | None = None, *, since: int = 0) -> str:
        """Readable listing of what the bot sent (to one chat), for assertion messages."""
        if chat is None:
            messages = self.sent[since:][-20:]
            where = "all chats"
        else:
            chat_id = _chat_id_of(chat)
            messages = [m for m in self.sent[since:] if m.chat_id == chat_id]
            where = f"chat {chat_id}"
        if not messages:
            return f"the bot sent nothing to {where} (since #{since})"
        lines = "\n".join(f"  {m}" for m in messages)
        return f"messages to {where} (since #{since}):\n{lines}"

    # ------------------------------------------------------------------ failure injection

    def fail_next(
        self,
        method: str,
        status: int,
        description: str,
        *,
        retry_after: int | None = None,
        times: int = 1,
        chat_id: int | None = None,
    ) -> None:
        """The next ``times`` calls of ``method`` (to ``chat_id``, if given) fail like this."""
        self._failures.append(
            {
                "method": method.lower(),
                "status": status,
                "description": description,
                "retry_after": retry_after,
                "times": times,
                "chat_id": chat_id,
            }
        )

    def hold(self) -> None:
        """Hold every call that changes what people see (send…, edit…, delete…,
        answerCallbackQuery) unanswered until ``release()``: a moment when no reply is
        half-way (sent but not yet known to the bot), to kill a process in."""
        if self._held is None:
            self._held = asyncio.Event()

    def release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.set()

    def held_from(self, ports: set[int]) -> int:
        """How many held calls came over a connection from one of these client ports (a
        killed client's calls stop counting once the server has noticed it is gone)."""
        return sum(n for port, n in self._held_ports.items() if port in ports)

    async def _maybe_hold(self, method: str, request: web.Request) -> None:
        held = self._held
        if held is None or not method.startswith(("send", "edit", "delete", "answerCallback")):
            return
        peer = request.transport.get_extra_info("peername") if request.transport else None
        port = int(peer[1]) if peer else 0
        self.held_calls += 1
        self._held_ports[port] += 1
        try:
            await held.wait()
        finally:
            self.held_calls -= 1
            self._held_ports[port] -= 1

    def stall(self, method: str, *, chat_id: int) -> Stall:
        """Hold the next call of ``method`` to ``chat_id`` unanswered until released.

        For crash tests: ``await stall.arrived.wait()`` means the bot is in the middle
        of that call (its own state already committed), the moment to kill it.
        """
        stall = Stall(method.lower(), chat_id)
        self._stalls.append(stall)
        return stall

    def hold_answers(self, method: str) -> Hold:
        """From now on, calls of ``method`` are carried out (a message is sent and recorded)
        but not answered until ``release_answers``.

        For crash tests: a bot killed while answers are held never learns that those
        messages went out, the worst moment for sending one twice.
        """
        hold = Hold(method.lower())
        self._holds.append(hold)
        return hold

    def release_answers(self, hold: Hold) -> None:
        self._holds.remove(hold)
        hold.released.set()

    async def _maybe_hold_answer(self, method: str) -> None:
        for hold in self._holds:
            if hold.method == method.lower():
                async with hold.changed:
                    hold.held += 1
                    hold.changed.notify_all()
                await hold.released.wait()
                return

    async def _maybe_stall(self, method: str, p: _Params) -> None:
        for stall in self._stalls:
            if stall.method == method.lower() and str(p.raw("chat_id")) == str(stall.chat_id):
                self._stalls.remove(stall)
                stall.arrived.set()
                await stall.released.wait()
                return

    def _injected_failure(self, method: str, p: _Params) -> ApiError | None:
        for rule in self._failures:
            if rule["method"] != method.lower():
                continue
            if rule["chat_id"] is not None and str(p.raw("chat_id")) != str(rule["chat_id"]):
                continue
            rule["times"] -= 1
            if rule["times"] <= 0:
                self._failures.remove(rule)
            params = {"retry_after": rule["retry_after"]} if rule["retry_after"] else None
            return ApiError(rule["status"], rule["description"], params)
        return None

    def telegram_limits(self, *, time_scale: float = 1.0) -> None:
        """Opt-in: enforce Telegram's limits as Telegram does — at most 30 messages in any
        one-second window overall, 1 per second to a private chat, 20 per minute to a
        group — answering 429 with ``retry_after`` (whole seconds) when one is exceeded.
        Blocked users get 403 whatever the mode (``block``). ``time_scale`` > 1 runs the
        windows that much faster (a "second" is 1/time_scale real seconds); clients must
        then scale their own clocks alike."""
        self.enforce_limits = True
        self.private_limit = (1, 1.0)
        self.group_limit = (20, 60.0)
        self.global_limit = (30, 1.0)
        start = time.monotonic()
        self.clock = lambda: (time.monotonic() - start) * time_scale
        self._flood_chat.clear()
        self._flood_global.clear()
        self.flood_violations = 0

    def refusals(self) -> int:
        """How many messages got 429, over all chats."""
        return sum(1 for what, _ in self.send_log if what == "429")

    def limit_chat(self, chat: ChatRef, *, allow: int, retry_after: int = 1) -> None:
        """Counting, not timing: the next ``allow`` messages to this chat go through, every
        one after that gets 429 with ``retry_after`` until ``unlimit_chat``. Deterministic
        whatever the machine's speed; ``send_log`` shows what was refused, in order."""
        self._quotas[_chat_id_of(chat)] = [allow, retry_after]

    def unlimit_chat(self, chat: ChatRef) -> None:
        self._quotas.pop(_chat_id_of(chat), None)

    def refused(self, chat: ChatRef) -> int:
        """How many messages to this chat got 429 (from limit_chat or enforce_limits)."""
        chat_id = _chat_id_of(chat)
        return sum(1 for what, c in self.send_log if what == "429" and c == chat_id)

    def _flood_check(self, chat_id: int) -> None:
        quota = self._quotas.get(chat_id)
        if quota is not None:
            if quota[0] <= 0:
                self.send_log.append(("429", chat_id))
                raise ApiError(429, f"Too Many Requests: retry after {quota[1]}", {"retry_after": quota[1]})
            quota[0] -= 1
        try:
            self._window_check(chat_id)
        except ApiError:
            self.send_log.append(("429", chat_id))
            raise
        self.send_log.append(("sent", chat_id))
        self.last_sent_at = time.monotonic()

    def _window_check(self, chat_id: int) -> None:
        now = self.clock()
        chat_type = self._chat(chat_id)["type"]
        per_chat = self.private_limit if chat_type == "private" else self.group_limit
        chat_window = self._flood_chat.setdefault(chat_id, deque())
        waits: list[float] = []
        for window, (limit, span) in (
            (chat_window, per_chat),
            (self._flood_global, self.global_limit),
        ):
            while window and window[0] <= now - span:
                window.popleft()
            if len(window) >= limit:
                waits.append(window[-limit] + span - now)
        if waits:
            self.flood_violations += 1
            if self.enforce_limits:
                retry_after = max(1, math.ceil(max(waits)))
                raise ApiError(
                    429,
                    f"Too Many Requests: retry after {retry_after}",
                    {"retry_after": retry_after},
                )
        chat_window.append(now)
        self._flood_global.append(now)

    # ------------------------------------------------------------------ HTTP layer

    async def _handle_api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _json_error(ApiError(401, "Unauthorized"))
        raw_method = request.match_info["method"]
        record = RecordedRequest(raw_method, request.method, request.content_type, {}, {})
        self.requests.append(record)
        try:
            record.fields, record.files = await _read_params(request)
            entry = self._methods.get(raw_method.lower())
            if entry is None:
                raise ApiError(404, "Not Found: method not found")
            record.method, handler = entry
            params = _Params(record.fields, record.files)
            failure = self._injected_failure(record.method, params)
            if failure is not None:
                raise failure
            await self._maybe_stall(record.method, params)
            await self._maybe_hold(record.method, request)
            payload: dict[str, Any] = {"ok": True, "result": await handler(params, request)}
            status = 200
            await self._maybe_hold_answer(record.method)
        except ApiError as e:
            payload, status = e.payload(), e.status
        record.status, record.response = status, payload
        return web.json_response(payload, status=status)

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _json_error(ApiError(401, "Unauthorized"))
        stored = self._files_by_path.get(request.match_info["path"])
        if stored is None:
            return _json_error(ApiError(404, "Not Found"))
        return web.Response(body=stored.content, content_type="application/octet-stream")

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        return _json_error(ApiError(404, "Not Found"))

    # ------------------------------------------------------------------ helpers

    def _new_update_id(self) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        return update_id

    def _enqueue(self, body: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": self._new_update_id(), **body}
        self.updates.append(update)
        self._queue.append(_QueuedUpdate(update))
        self._update_pulse.fire()
        return update

    def _now(self) -> int:
        return int(self.wall_clock())

    def _chat(self, chat_id: int) -> dict[str, Any]:
        if chat_id in self.users:
            return self.users[chat_id].chat_dict()
        if chat_id in self.groups:
            return self.groups[chat_id].to_dict()
        raise _bad("chat not found")

    def _next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def _user_message(self, user: FakeUser, chat: FakeChat | None, body: dict[str, Any]) -> dict[str, Any]:
        if user.id not in self.users:
            self.users[user.id] = user
        chat_dict = chat.to_dict() if chat is not None else user.chat_dict()
        message = {
            "message_id": self._next_message_id(chat_dict["id"]),
            "from": user.to_dict(),
            "chat": chat_dict,
            "date": self._now(),
            **body,
        }
        self._messages[(chat_dict["id"], message["message_id"])] = message
        return self._enqueue({"message": message})

    def _member_update(self, user: FakeUser, old: str, new: str) -> dict[str, Any]:
        def member(status: str) -> dict[str, Any]:
            data: dict[str, Any] = {"status": status, "user": dict(self.bot_user)}
            if status == "kicked":
                data["until_date"] = 0
            return data

        return self._enqueue(
            {
                "my_chat_member": {
                    "chat": user.chat_dict(),
                    "from": user.to_dict(),
                    "date": self._now(),
                    "old_chat_member": member(old),
                    "new_chat_member": member(new),
                }
            }
        )

    def _store_file(
        self, content: bytes, folder: str, ext: str, width: int = 0, height: int = 0
    ) -> _StoredFile:
        n = next(self._counter)
        stored = _StoredFile(
            file_id=f"AgAC-fake-{folder}-{n}",
            file_unique_id=f"AQAD{n}",
            file_path=f"{folder}/file_{n}.{ext}",
            content=content,
            kind=folder,
            width=width,
            height=height,
        )
        self._files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    def _store_photo(self, content: bytes) -> list[dict[str, Any]]:
        sizes: list[dict[str, Any]] = []
        for width, height in _PHOTO_SIZES:
            stored = self._store_file(content, "photos", "jpg", width, height)
            sizes.append(
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "width": width,
                    "height": height,
                    "file_size": len(content),
                }
            )
        for size in sizes:
            self._photo_groups[size["file_id"]] = sizes
        return copy.deepcopy(sizes)

    def _resolve_chat(self, p: _Params, *, check_reachable: bool = True) -> int:
        raw = p.raw("chat_id")
        if raw is None:
            raise _bad("chat_id is empty")
        if isinstance(raw, str) and raw.startswith("@"):
            name = raw[1:].lower()
            found = [u.id for u in self.users.values() if (u.username or "").lower() == name]
            found += [g.id for g in self.groups.values() if (g.username or "").lower() == name]
            if not found:
                raise _bad("chat not found")
            chat_id = found[0]
        else:
            try:
                chat_id = int(raw)
            except (TypeError, ValueError):
                raise _bad("chat not found") from None
        self._chat(chat_id)  # raises "chat not found"
        if check_reachable and chat_id in self._migrated:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self._migrated[chat_id]},
            )
        if check_reachable and chat_id in self._blocked:
            raise ApiError(403, self._blocked[chat_id])
        return chat_id

    def _parse_markup(self, p: _Params) -> dict[str, Any] | None:
        if p.raw("reply_markup") is None:
            return None
        error = "can't parse reply keyboard markup JSON object"
        markup = p.get_json("reply_markup", error)
        if not isinstance(markup, dict):
            raise _bad(error)
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays')
            for button in (b for row in rows for b in row):
                if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                    raise _bad('can\'t find field "text"')
                if not any(key in button for key in _INLINE_ACTIONS):
                    raise _bad("text buttons are unallowed in the inline keyboard")
                if "callback_data" in button:
                    data = button["callback_data"]
                    if not isinstance(data, str) or not 1 <= len(data.encode()) <= (MAX_CALLBACK_DATA):
                        raise _bad("BUTTON_DATA_INVALID")
                if "url" in button and not re.match(r"^(https?|tg)://\S+$", button["url"]):
                    raise _bad("BUTTON_URL_INVALID")
        elif "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad('field "keyboard" of the ReplyKeyboardMarkup should be an Array of Arrays')
            for button in (b for row in rows for b in row):
                if not isinstance(button, str) and not (
                    isinstance(button, dict) and isinstance(button.get("text"), str)
                ):
                    raise _bad('can\'t find field "text"')
        elif not ({"remove_keyboard", "force_reply"} & markup.keys()):
            raise _bad(error)
        return markup

    def _reply_part(self, p: _Params, chat_id: int) -> dict[str, Any]:
        params = p.get_json("reply_parameters")
        if isinstance(params, dict):
            target_id = params.get("message_id")
            allow = bool(params.get("allow_sending_without_reply"))
        else:
            target_id = p.get_int("reply_to_message_id")
            allow = p.get_bool("allow_sending_without_reply")
        if target_id is None:
            return {}
        target = self._messages.get((chat_id, int(target_id)))
        if target is None:
            if allow:
                return {}
            raise _bad("message to be replied not found")
        reply = {k: v for k, v in target.items() if k != "reply_to_message"}
        return {"reply_to_message": copy.deepcopy(reply)}

    def _caption(self, p: _Params) -> dict[str, Any]:
        raw = p.get_str("caption")
        if raw is None:
            return {}
        caption, entities = format_text(raw, p.get_str("parse_mode"), p.get_json("caption_entities"))
        if len(caption) > MAX_CAPTION:
            raise _bad("message caption is too long")
        body: dict[str, Any] = {"caption": caption}
        if entities:
            body["caption_entities"] = entities
        return body

    async def _deliver(
        self,
        chat_id: int,
        method: str,
        p: _Params,
        body: dict[str, Any],
        *,
        text: str | None,
        markup: dict[str, Any] | None,
        reply: dict[str, Any],
    ) -> dict[str, Any]:
        """Create a bot message after all validation passed; returns the Message object."""
        self._flood_check(chat_id)
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "from": dict(self.bot_user),
            "chat": self._chat(chat_id),
            "date": self._now(),
            **reply,
            **body,
        }
        # Message.reply_markup can only be inline; reply keyboards live in the client.
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self._track_reply_keyboard(chat_id, markup)
        self._messages[(chat_id, message["message_id"])] = message
        sent = SentMessage(
            index=len(self.sent),
            chat_id=chat_id,
            message_id=message["message_id"],
            method=method,
            text=message.get("text", message.get("caption")),
            reply_markup=markup,
            fields=dict(p.fields),
            message=message,
        )
        self.sent.append(sent)
        self._sent_by_key[(chat_id, sent.message_id)] = sent
        for observer in self.observers:
            observer(sent)
        await self._notify()
        return copy.deepcopy(message)

    def _track_reply_keyboard(self, chat_id: int, markup: dict[str, Any] | None) -> None:
        if markup is None:
            return
        if "keyboard" in markup:
            self.reply_keyboards[chat_id] = [
                [b if isinstance(b, str) else b["text"] for b in row] for row in markup["keyboard"]
            ]
        elif markup.get("remove_keyboard"):
            self.reply_keyboards.pop(chat_id, None)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _editable(self, p: _Params) -> SentMessage:
        if p.raw("inline_message_id") is not None:
            raise _bad("MESSAGE_ID_INVALID")  # the fake has no inline mode
        chat_id = self._resolve_chat(p)
        message_id = p.get_int("message_id")
        if message_id is None:
            raise _bad("message identifier is not specified")
        message = self._messages.get((chat_id, message_id))
        if message is None:
            raise _bad("message to edit not found")
        sent = self._sent_by_key.get((chat_id, message_id))
        if sent is None:
            raise _bad("message can't be edited")
        return sent

    async def _apply_edit(
        self, sent: SentMessage, method: str, p: _Params, changes: dict[str, Any]
    ) -> dict[str, Any]:
        message = sent.message
        markup = changes.pop("reply_markup")
        new_state = {**message, **changes}
        for key, value in changes.items():
            if value is None:
                new_state.pop(key, None)
        inline = markup if markup is not None and "inline_keyboard" in markup else None
        comparable = ("text", "entities", "caption", "caption_entities")
        if all(new_state.get(k) == message.get(k) for k in comparable) and (
            inline == message.get("reply_markup")
        ):
            raise _bad(NOT_MODIFIED.removeprefix("Bad Request: "))
        new_state.pop("reply_markup", None)
        if inline is not None:
            new_state["reply_markup"] = inline
        new_state["edit_date"] = self._now()
        message.clear()
        message.update(new_state)
        sent.text = message.get("text", message.get("caption"))
        sent.reply_markup = inline
        sent.edits.append({"method": method, "text": sent.text, "reply_markup": inline, "fields": p.fields})
        await self._notify()
        return copy.deepcopy(message)

    def _input_file(self, p: _Params, name: str) -> tuple[bytes, str | None, _StoredFile | None]:
        """Content, filename and (for a file_id) the stored file behind a file parameter."""
        value = p.raw(name)
        upload = p.files.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            upload = p.files.get(value.removeprefix("attach://"))
            if upload is None:
                raise _bad(f'can\'t find attached file "{value}"')
        if upload is not None:
            return upload.data, upload.filename, None
        if value is None:
            raise _bad(f"there is no {name} in the request")
        value = str(value)
        if value in self._files:
            return self._files[value].content, None, self._files[value]
        if re.match(r"^https?://", value):
            return b"", value.rsplit("/", 1)[-1] or None, None  # the fake fetches nothing
        raise _bad("wrong file identifier/HTTP URL specified")

    # ------------------------------------------------------------------ Bot API methods

    async def _get_me(self, p: _Params, request: web.Request) -> Any:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _accept(self, p: _Params, request: web.Request) -> Any:
        return True

    def _set_bot_setting(self, key: str) -> Handler:
        async def handler(p: _Params, request: web.Request) -> Any:
            self.bot_settings[key] = dict(p.fields)
            self.bot_settings_by_language[(key, p.get_str("language_code") or "")] = dict(p.fields)
            return True

        return handler

    async def _get_updates(self, p: _Params, request: web.Request) -> Any:
        if self.webhook is not None:
            raise ApiError(409, WEBHOOK_ACTIVE)
        if self.polling:
            # A killed client's socket may not be noticed yet: give it a moment to go away.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.conflict_grace):
                    while self.polling:
                        await self._poller_pulse.wait()
            if self.polling:
                raise ApiError(409, CONFLICT)
        offset = p.get_int("offset")
        limit = min(max(p.get_int("limit") or 100, 1), 100)
        timeout = max(p.get_int("timeout") or 0, 0)
        allowed = p.get_json("allowed_updates")
        if isinstance(allowed, list):  # persists across calls, like on Telegram
            self._allowed_updates = frozenset(allowed) if allowed else None
        if offset:
            self._confirm(offset)
            await self._notify()

        self._poller = request
        self._poller_pulse.fire()
        try:
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                dropped = len(self.dropped_updates)
                batch = self._take(limit)
                if len(self.dropped_updates) != dropped:
                    await self._notify()  # filtered-out updates count as confirmed
                if batch:
                    return batch
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0 or self._closing:
                    return []
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await self._update_pulse.wait()
        finally:
            if self._poller is request:
                self._poller = None
                self._poller_pulse.fire()

    def _confirm(self, offset: int) -> None:
        if offset < 0:  # -N: forget everything but the last N updates
            keep = self._queue[offset:]
            dropped = [e for e in self._queue if e not in keep]
        else:
            dropped = [e for e in self._queue if e.update_id < offset and (e.delivered or not e.forced)]
        for entry in dropped:
            self._queue.remove(entry)
            self._confirmed_ids.add(entry.update_id)

    def _update_allowed(self, update: dict[str, Any]) -> bool:
        kinds = update.keys() - {"update_id"}
        if self._allowed_updates is None:
            return not (kinds & _NOT_DEFAULT_UPDATES)
        return bool(kinds & self._allowed_updates)

    def _take(self, limit: int) -> list[dict[str, Any]]:
        batch: list[_QueuedUpdate] = []
        for entry in list(self._queue):
            if not self._update_allowed(entry.update):
                # Telegram never stores updates of types the bot did not ask for.
                self._queue.remove(entry)
                self._confirmed_ids.add(entry.update_id)
                self.dropped_updates.append(entry.update)
                continue
            batch.append(entry)
            if len(batch) >= limit:
                break
        for entry in batch:
            entry.delivered = True
            self.deliveries.append(entry.update_id)
        return [copy.deepcopy(entry.update) for entry in batch]

    async def _set_webhook(self, p: _Params, request: web.Request) -> Any:
        url = p.get_str("url") or ""
        if not url:
            await self._stop_webhook()
            return True
        if not re.match(r"^https?://", url):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = p.get_str("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise _bad("bad webhook: secret token contains unallowed characters")
        allowed = p.get_json("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) if allowed else None
        if p.get_bool("drop_pending_updates"):
            self._drop_pending()
        self.webhook = {
            "url": url,
            "secret_token": secret,
            "max_connections": min(max(p.get_int("max_connections") or 40, 1), 100),
        }
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.create_task(self._webhook_loop(), name="fake-webhook")
        self._update_pulse.fire()
        await self._notify()
        return True

    async def _stop_webhook(self) -> None:
        self.webhook = None
        task, self._webhook_task = self._webhook_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for entry in self._queue:
            entry.posting = False

    def _drop_pending(self) -> None:
        for entry in self._queue:
            self._confirmed_ids.add(entry.update_id)
        self._queue.clear()

    async def _delete_webhook(self, p: _Params, request: web.Request) -> Any:
        if self.webhook is not None:
            await self._stop_webhook()
        if p.get_bool("drop_pending_updates"):
            self._drop_pending()
            await self._notify()
        return True

    async def _get_webhook_info(self, p: _Params, request: web.Request) -> Any:
        info: dict[str, Any] = {
            "url": self.webhook["url"] if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._queue),
        }
        if self.webhook is not None:
            info["max_connections"] = self.webhook["max_connections"]
            if self._allowed_updates is not None:
                info["allowed_updates"] = sorted(self._allowed_updates)
            if self.webhook_last_error is not None:
                info["last_error_message"] = self.webhook_last_error
        return info

    async def _webhook_loop(self) -> None:
        """Deliver queued updates to the webhook: FIFO per chat, one POST per chat at a time."""
        loop = asyncio.get_running_loop()
        posts: set[asyncio.Task[None]] = set()
        timeout = aiohttp.ClientTimeout(total=self.webhook_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            try:
                while self.webhook is not None and not self._closing:
                    pulse = self._update_pulse.next()  # taken before looking: no lost wake-up
                    now = loop.time()
                    waiting_chats: set[int | str] = set()
                    soonest: float | None = None
                    for entry in list(self._queue):
                        if len(posts) >= self.webhook["max_connections"]:
                            break
                        if not self._update_allowed(entry.update):
                            self._queue.remove(entry)
                            self._confirmed_ids.add(entry.update_id)
                            self.dropped_updates.append(entry.update)
                            continue
                        chat = _update_chat(entry.update)
                        if chat in waiting_chats:
                            continue  # an earlier update of this chat is not answered yet
                        waiting_chats.add(chat)
                        if entry.posting:
                            continue
                        if entry.retry_at > now:
                            soonest = entry.retry_at if soonest is None else min(soonest, entry.retry_at)
                            continue
                        entry.posting = True
                        task = asyncio.create_task(self._post_update(http, entry))
                        posts.add(task)
                        task.add_done_callback(posts.discard)
                    wait = None if soonest is None else max(0.0, soonest - loop.time())
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await pulse.wait()
            finally:
                for task in posts:
                    task.cancel()
                if posts:
                    await asyncio.wait(posts)

    async def _post_update(self, http: aiohttp.ClientSession, entry: _QueuedUpdate) -> None:
        config = self.webhook
        assert config is not None
        url = self.webhook_route(config["url"]) if self.webhook_route is not None else config["url"]
        headers = {"Content-Type": "application/json"}
        if config["secret_token"]:
            headers[SECRET_HEADER] = config["secret_token"]
        attempt = WebhookAttempt(entry.update_id, url)
        self.webhook_attempts.append(attempt)
        self.deliveries.append(entry.update_id)
        entry.delivered = True
        try:
            async with http.post(url, data=json.dumps(entry.update), headers=headers) as response:
                attempt.status = response.status
                await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            attempt.error = f"{type(e).__name__}: {e}"
        finally:
            entry.posting = False
        if attempt.ok:
            if entry in self._queue:
                self._queue.remove(entry)
            self._confirmed_ids.add(entry.update_id)
            await self._notify()
        else:
            self.webhook_last_error = attempt.error or f"Wrong response from the webhook: {attempt.status}"
            entry.retry_at = asyncio.get_running_loop().time() + self.webhook_retry_after
        self._update_pulse.fire()

    def _commands_key(self, p: _Params) -> tuple[str, str]:
        scope = p.get_json("scope")
        if scope is not None and not (isinstance(scope, dict) and "type" in scope):
            raise _bad("can't parse BotCommandScope JSON object")
        language = p.get_str("language_code") or ""
        if language and not _LANGUAGE_RE.match(language):
            raise _bad("invalid language code specified")
        return _scope_key(scope), language

    async def _set_my_commands(self, p: _Params, request: web.Request) -> Any:
        commands = p.get_json("commands")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad("too many commands specified")
        for command in commands:
            if not isinstance(command, dict) or not _COMMAND_RE.match(str(command.get("command", ""))):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _bad("command description is empty")
        key = self._commands_key(p)
        stored = [{"command": c["command"], "description": c["description"]} for c in commands]
        if stored:
            self.commands[key] = stored
        else:
            self.commands.pop(key, None)
        await self._notify()
        return True

    async def _get_my_commands(self, p: _Params, request: web.Request) -> Any:
        return self.commands.get(self._commands_key(p), [])

    async def _delete_my_commands(self, p: _Params, request: web.Request) -> Any:
        self.commands.pop(self._commands_key(p), None)
        await self._notify()
        return True

    async def _send_message(self, p: _Params, request: web.Request) -> Any:
        chat_id = self._resolve_chat(p)
        raw = p.get_str("text")
        if raw is None:
            raise _bad("message text is empty")
        text, entities = format_text(raw, p.get_str("parse_mode"), p.get_json("entities"))
        if not text.strip():
            raise _bad("message text is empty")
        if len(text) > MAX_TEXT:
            raise _bad("message is too long")
        markup = self._parse_markup(p)
        reply = self._reply_part(p, chat_id)
        body: dict[str, Any] = {"text": text}
        if entities:
            body["entities"] = entities
        return await self._deliver(chat_id, "sendMessage", p, body, text=text, markup=markup, reply=reply)

    async def _edit_message_text(self, p: _Params, request: web.Request) -> Any:
        sent = self._editable(p)
        raw = p.get_str("text")
        if raw is None:
            raise _bad("message text is empty")
        text, entities = format_text(raw, p.get_str("parse_mode"), p.get_json("entities"))
        if not text.strip():
            raise _bad("message text is empty")
        if len(text) > MAX_TEXT:
            raise _bad("message is too long")
        if "text" not in sent.message:
            raise _bad("there is no text in the message to edit")
        # Like Telegram: an edit without reply_markup removes the inline keyboard.
        changes = {"text": text, "entities": entities, "reply_markup": self._parse_markup(p)}
        return await self._apply_edit(sent, "editMessageText", p, changes)

    async def _edit_message_caption(self, p: _Params, request: web.Request) -> Any:
        sent = self._editable(p)
        if "text" in sent.message:
            raise _bad("there is no caption in the message to edit")
        caption = self._caption(p)
        changes = {
            "caption": caption.get("caption"),
            "caption_entities": caption.get("caption_entities"),
            "reply_markup": self._parse_markup(p),
        }
        return await self._apply_edit(sent, "editMessageCaption", p, changes)

    async def _edit_message_reply_markup(self, p: _Params, request: web.Request) -> Any:
        sent = self._editable(p)
        changes = {"reply_markup": self._parse_markup(p)}
        return await self._apply_edit(sent, "editMessageReplyMarkup", p, changes)

    async def _delete_message(self, p: _Params, request: web.Request) -> Any:
        chat_id = self._resolve_chat(p)
        message_id = p.get_int("message_id")
        if message_id is None:
            raise _bad("message identifier is not specified")
        if self._messages.pop((chat_id, message_id), None) is None:
            raise _bad("message to delete not found")
        sent = self._sent_by_key.get((chat_id, message_id))
        if sent is not None:
            sent.deleted = True
        await self._notify()
        return True

    async def _answer_callback_query(self, p: _Params, request: web.Request) -> Any:
        query_id = p.get_str("callback_query_id")
        if query_id is None or query_id not in self._queries or query_id in self._answered:
            raise _bad(QUERY_INVALID.removeprefix("Bad Request: "))
        self._answered.add(query_id)
        query = self._queries[query_id]
        message = query.get("message") or {}
        self.callback_answers.append(
            CallbackAnswer(
                query_id=query_id,
                text=p.get_str("text"),
                show_alert=p.get_bool("show_alert"),
                url=p.get_str("url"),
                cache_time=p.get_int("cache_time") or 0,
                data=query.get("data"),
                user_id=int(query["from"]["id"]),
                chat_id=message.get("chat", {}).get("id"),
                message_id=message.get("message_id"),
            )
        )
        await self._notify()
        return True

    def _location(self, p: _Params) -> dict[str, float]:
        latitude, longitude = p.get_float("latitude"), p.get_float("longitude")
        if latitude is None or not -90 <= latitude <= 90:
            raise _bad("wrong latitude specified")
        if longitude is None or not -180 <= longitude <= 180:
            raise _bad("wrong longitude specified")
        return {"latitude": latitude, "longitude": longitude}

    async def _send_location(self, p: _Params, request: web.Request) -> Any:
        chat_id = self._resolve_chat(p)
        body = {"location": self._location(p)}
        return await self._deliver(
            chat_id,
            "sendLocation",
            p,
            body,
            text=None,
            markup=self._parse_markup(p),
            reply=self._reply_part(p, chat_id),
        )

    async def _send_venue(self, p: _Params, request: web.Request) -> Any:
        chat_id = self._resolve_chat(p)
        location = self._location(p)
        title, address = p.get_str("title"), p.get_str("address")
        if not title:
            raise _bad("venue title is empty")
        if not address:
            raise _bad("venue address is empty")
        venue: dict[str, Any] = {"location": location, "title": title, "address": address}
        for key in ("foursquare_id", "foursquare_type", "google_place_id", "google_place_type"):
            if p.get_str(key):
                venue[key] = p.get_str(key)
        body = {"venue": venue, "location": location}  # Telegram sends both
        return await self._deliver(
            chat_id,
            "sendVenue",
            p,
            body,
            text=title,
            markup=self._parse_markup(p),
            reply=self._reply_part(p, chat_id),
        )

    async def _send_contact(self, p: _Params, request: web.Request) -> Any:
        chat_id = self._resolve_chat(p)
        phone, first_name = p.get_str("phone_number"), p.get_str("first_name")
        if not phone:
            raise _bad("phone number is empty")
        if not first_name:
            raise _bad("first name is empty")
        contact: dict[str, Any] = {"phone_number": phone, "first_name": first_name}
        for key in ("last_name", "vcard"):
            if p.get_str(key):
                contact[key] = p.get_str(key)
        return await self._deliver(
            chat_id,
            "sendContact",
            p,
            {"contact": contact},
            text=None,
            markup=self._parse_markup(p),
            reply=self._reply_part(p, chat_id),
        )

    async def _send_photo(self, p: _Params, request: web.Request) -> Any:
        chat_id = self._resolve_chat(p)
        content, _, stored = self._input_file(p, "photo")
        if stored is not None:
            sizes = self._photo_groups.get(stored.file_id)
            if sizes is None:
                raise _bad("type of file mismatch")
            photo = copy.deepcopy(sizes)
        else:
            photo = self._store_photo(content)
        caption = self._caption(p)
        return await self._deliver(
            chat_id,
            "sendPhoto",
            p,
            {"photo": photo, **caption},
            text=caption.get("caption"),
            markup=self._parse_markup(p),
            reply=self._reply_part(p, chat_id),
        )

    async def _send_document(self, p: _Params, request: web.Request) -> Any:
        chat_id = self._resolve_chat(p)
        content, filename, stored = self._input_file(p, "document")
        if stored is None:
            ext = (filename or "file.bin").rsplit(".", 1)[-1]
            stored = self._store_file(content, "documents", ext)
        document: dict[str, Any] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
        }
        if filename:
            document["file_name"] = filename
        caption = self._caption(p)
        return await self._deliver(
            chat_id,
            "sendDocument",
            p,
            {"document": document, **caption},
            text=caption.get("caption"),
            markup=self._parse_markup(p),
            reply=self._reply_part(p, chat_id),
        )

    async def _get_file(self, p: _Params, request: web.Request) -> Any:
        file_id = p.get_str("file_id")
        stored = self._files.get(file_id or "")
        if stored is None:
            raise _bad("invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
            "file_path": stored.file_path,
        }

    async def _send_chat_action(self, p: _Params, request: web.Request) -> Any:
        chat_id = self._resolve_chat(p)
        action = p.get_str("action")
        if action not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        self.chat_actions.append((chat_id, action))
        return True

    async def _get_chat(self, p: _Params, request: web.Request) -> Any:
        chat_id = self._resolve_chat(p, check_reachable=False)
        return {
            **self._chat(chat_id),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": True,
                "limited_gifts": True,
                "unique_gifts": True,
                "premium_subscription": True,
                "gifts_from_channels": True,
            },
        }

    async def _set_chat_menu_button(self, p: _Params, request: web.Request) -> Any:
        chat_id = self._resolve_chat(p) if p.raw("chat_id") is not None else None
        button = p.get_json("menu_button") or {"type": "default"}
        self.menu_buttons[chat_id] = button
        return True

    async def _get_chat_menu_button(self, p: _Params, request: web.Request) -> Any:
        chat_id = self._resolve_chat(p) if p.raw("chat_id") is not None else None
        return self.menu_buttons.get(chat_id, self.menu_buttons.get(None, {"type": "commands"}))


# --------------------------------------------------------------------------- module helpers


def _update_chat(update: dict[str, Any]) -> int | str:
    """The chat an update belongs to (webhook delivery keeps each chat's updates in order)."""
    if "message" in update:
        return int(update["message"]["chat"]["id"])
    if "callback_query" in update:
        query = update["callback_query"]
        message = query.get("message")
        return int(message["chat"]["id"]) if message else int(query["from"]["id"])
    if "my_chat_member" in update:
        return int(update["my_chat_member"]["chat"]["id"])
    return f"update:{update['update_id']}"


def _scope_key(scope: dict[str, Any] | None) -> str:
    return json.dumps(scope or {"type": "default"}, sort_keys=True, separators=(",", ":"))


def _request_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _json_error(error: ApiError) -> web.Response:
    return web.json_response(error.payload(), status=error.status)


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    """Query string + urlencoded / multipart / JSON body, the ways Telegram accepts params."""
    fields: dict[str, Any] = dict(request.query)
    files: dict[str, UploadedFile] = {}
    if not request.body_exists:
        return fields, files
    content_type = request.content_type
    if content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise _bad("can't parse JSON object") from None
        if not isinstance(body, dict):
            raise _bad("JSON object expected")
        fields.update(body)
    elif content_type.startswith("multipart/"):
        # Read parts by hand: request.post() spools files to temp files nobody closes.
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.filename is not None:
                files[part.name] = UploadedFile(
                    field=part.name,
                    filename=part.filename,
                    content_type=part.headers.get("Content-Type", "application/octet-stream"),
                    data=bytes(await part.read()),
                )
            else:
                fields[part.name] = await part.text()
    else:
        form = await request.post()
        fields.update({k: v for k, v in form.items() if isinstance(v, str)})
    return fields, files


@pytest_asyncio.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegramServer]:
    """A started fake Telegram server, stopped after the test."""
    async with FakeTelegramServer() as server:
        yield server
