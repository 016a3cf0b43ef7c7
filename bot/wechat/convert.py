"""WeChat callback messages (parsed by wechatpy) → channel-neutral ``Incoming``.

- text → TEXT, or CHOICE when it is just the number of an option last shown (or a tap
  on a menu message, which carries ``bizmsgmenuid``); "/start"-style text → COMMAND;
- voice with WeChat's speech recognition → TEXT of what was said (without recognition:
  UNSUPPORTED, answered kindly);
- location → LOCATION, converted from WeChat's GCJ-02 to the WGS-84 Linli stores;
- image → PHOTO (``photo_ref`` is the media id, fetched through the media API);
- a menu click (CLICK event) → TEXT of the menu key, so menu keys are phrases Linli
  understands ("我要打车") or commands ("/help");
- subscribe → COMMAND start; video, links and the rest → UNSUPPORTED.

Unsubscribe and the periodic location report are not messages: the server handles them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot import numbered
from bot.wechat import CHANNEL
from dialogs.messages import Incoming, Kind, Location, Sender
from storage.geo import wgs84_to_gcj02

LANGUAGE = "zh-CN"  # WeChat does not tell a follower's language; Chinese is the default


def update_id(message: Any) -> str:
    """WeChat's own duplicate key: MsgId for messages, sender + time + event for events."""
    if message.type == "event":
        return f"{message.source}:{message.time}:{getattr(message, 'event', '')}"[:90]
    return str(message.id)


def gcj02_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """The inverse of the GCJ-02 offset, by fixed-point iteration (well under a metre)."""
    wlat, wlon = lat, lon
    for _ in range(5):
        glat, glon = wgs84_to_gcj02(wlat, wlon)
        wlat, wlon = wlat + (lat - glat), wlon + (lon - glon)
    return wlat, wlon


def to_incoming(message: Any, options: Sequence[str] = ()) -> Incoming | None:
    """The Incoming for a parsed callback message; None for what is not a message.

    ``options``: the button data of the numbered options the person saw last.
    """
    openid = str(message.source)
    base: dict[str, Any] = {
        "channel": CHANNEL,
        "sender": Sender(external_id=openid, language_code=LANGUAGE),
        "chat_id": openid,
        "update_id": update_id(message),
    }
    kind = message.type
    if kind == "text":
        raw = message._data  # wechatpy keeps the whole XML as a dict
        menu_id = raw.get("bizmsgmenuid")
        text = str(message.content or "")
        if menu_id:
            text = str(menu_id)  # a tap on a menu message: its id is the option's number
        return _text(base, text, options)
    if kind == "voice":
        recognised = str(message.recognition or "").strip()
        if not recognised:
            return Incoming(kind=Kind.UNSUPPORTED, **base)
        # Speech recognition ends sentences with "。"; a spoken "二" is option two.
        return _text(base, recognised.rstrip("。.！!？?"), options)
    if kind == "location":
        try:
            lat, lon = float(message.location_x), float(message.location_y)
        except (TypeError, ValueError):
            return Incoming(kind=Kind.UNSUPPORTED, **base)
        lat, lon = gcj02_to_wgs84(lat, lon)
        return Incoming(kind=Kind.LOCATION, location=Location(lat, lon), **base)
    if kind == "image":
        return Incoming(kind=Kind.PHOTO, photo_ref=str(message.media_id), **base)
    if kind == "event":
        event = getattr(message, "event", "")
        if event in ("subscribe", "subscribe_scan"):
            return Incoming(kind=Kind.COMMAND, command="start", **base)
        if event == "click":
            return _text(base, str(message.key or ""), ())
        return None
    return Incoming(kind=Kind.UNSUPPORTED, **base)


def _text(base: dict[str, Any], text: str, options: Sequence[str]) -> Incoming:
    data = numbered.picked(text, options)
    if data is not None:
        return Incoming(kind=Kind.CHOICE, choice=data, message_ref="0", **base)
    stripped = text.strip()
    if stripped.startswith("/") and len(stripped) > 1:
        command, _, args = stripped[1:].partition(" ")
        return Incoming(kind=Kind.COMMAND, command=command.lower(), text=args.strip(), **base)
    return Incoming(kind=Kind.TEXT, text=text, **base)
