"""Outgoing → what WeChat can show: text with numbered options, a picture, a menu message.

WeChat has no buttons. A message's choices become numbered lines the person answers by
number; where the customer-service API is used, they also come as a menu message
(msgmenu) whose options the person can tap. What Telegram shows as a reply keyboard
(share location or phone number, send a photo) becomes a line saying how to do it in
WeChat.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from bot import numbered
from dialogs.messages import Ask, Choice, Outgoing
from storage.geo import wgs84_to_gcj02

# WeChat refuses text over 2048 bytes (45002); parts are cut below that, at line ends.
MAX_TEXT_BYTES = 2000
# Menu messages are for short questions; a long text or many options go as plain text.
MENU_MAX_HEAD = 600
MENU_MAX_OPTIONS = 10

_CJK = re.compile(r"[\u4e00-\u9fff]")


def _zh(message: Outgoing) -> bool:
    return bool(_CJK.search(message.text))


_HINTS = {
    True: {
        "choose": "回复数字选择",
        "menu_tail": "点击选项，或回复数字",
        Ask.LOCATION: "发送位置：点输入框旁的 ＋，选「位置」",
        Ask.CONTACT: "请直接输入手机号码",
        Ask.PHOTO: "发送照片：点输入框旁的 ＋，选「相册」或「拍摄」",
        "map": "在地图中查看",
    },
    False: {
        "choose": "Reply with a number to choose",
        "menu_tail": "Tap an option or reply with its number",
        Ask.LOCATION: "To share a location: tap + beside the input box, then Location",
        Ask.CONTACT: "Please type your phone number",
        Ask.PHOTO: "To send a photo: tap + beside the input box, then Album or Camera",
        "map": "Open in map",
    },
}


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Image:
    ref: str  # "file:<path>" (uploaded first) or a WeChat media id


@dataclass(frozen=True, slots=True)
class Menu:
    head: str
    options: list[str]  # labels, in order; their ids are "1", "2", …
    tail: str


Part = Text | Image | Menu


def options_of(message: Outgoing) -> list[Choice]:
    """The numbered options a message offers: its buttons, in order."""
    return message.all_choices()


def body(message: Outgoing) -> str:
    """The message's text with its place and ask hint, without the options."""
    hints = _HINTS[_zh(message)]
    lines = [message.text] if message.text else []
    if message.place is not None:
        p = message.place
        lat, lon = wgs84_to_gcj02(p.latitude, p.longitude)
        url = f"https://uri.amap.com/marker?position={lon:.6f},{lat:.6f}&name={quote(p.title)}"
        lines.append(f'📍 {p.title}\n{p.address}\n<a href="{url}">{hints["map"]}</a>')
    if message.ask is not None:
        lines.append(f"（{hints[message.ask]}）" if _zh(message) else f"({hints[message.ask]})")
    return "\n\n".join(lines)


def as_text(message: Outgoing) -> str:
    """The whole message as one text: body and numbered options."""
    options = options_of(message)
    text = body(message)
    if options:
        hint = _HINTS[_zh(message)]["choose"]
        text = "\n".join([text, "", *numbered.lines(options), f"（{hint}）" if _zh(message) else f"({hint})"])
    return text


def parts(message: Outgoing, *, menus: bool) -> list[Part]:
    """What to send for one message, in order. ``menus``: options as a menu message
    (customer-service API) rather than numbered lines in the text."""
    out: list[Part] = []
    if message.photo_ref:
        out.append(Image(message.photo_ref))
    options = options_of(message)
    head = body(message)
    if menus and options and len(options) <= MENU_MAX_OPTIONS and len(head) <= MENU_MAX_HEAD:
        labels = [f"{n}. {c.label}" for n, c in enumerate(options, 1)]
        out.append(Menu(head=head, options=labels, tail=_HINTS[_zh(message)]["menu_tail"]))
        return out
    out.extend(Text(chunk) for chunk in split(as_text(message)))
    return out


def split(text: str, limit: int = MAX_TEXT_BYTES) -> list[str]:
    """Cut text into parts of at most ``limit`` UTF-8 bytes, at line ends where possible."""
    if len(text.encode()) <= limit:
        return [text] if text else []
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate.encode()) <= limit:
            current = candidate
            continue
        if current:
            chunks.append(current)
        while len(line.encode()) > limit:  # one line too long: cut it by characters
            cut = len(line)
            while len(line[:cut].encode()) > limit:
                cut -= max(1, (len(line[:cut].encode()) - limit) // 3)
            chunks.append(line[:cut])
            line = line[cut:]
        current = line
    if current:
        chunks.append(current)
    return chunks
