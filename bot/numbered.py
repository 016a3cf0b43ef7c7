"""Buttons for channels without buttons: numbered options, answered by number.

The terminal and WeChat show a message's choices as "[1] 打车" lines and read a reply of
"1" (or "１", "1.", "第1个", "一") back as a press of the first one. Only a reply that
is nothing but the number counts: "1号楼" stays text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from dialogs.messages import Choice

_CHINESE = {
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
}
_NUMBER = re.compile(r"^(?:第\s*)?([0-9]{1,2}|[一二两三四五六七八九十])\s*(?:个|项)?\s*[.。、)）]?$")


def lines(choices: Sequence[Choice]) -> list[str]:
    """One line per option: "[1] label"."""
    return [f"[{number}] {choice.label}" for number, choice in enumerate(choices, 1)]


def picked(text: str, options: Sequence[str]) -> str | None:
    """The option a reply of just a number names (1-based), or None."""
    text = text.strip().translate(_FULL_WIDTH)
    match = _NUMBER.match(text)
    if match is None:
        return None
    raw = match.group(1)
    number = int(raw) if raw.isdigit() else _CHINESE[raw]
    if 1 <= number <= len(options):
        return options[number - 1]
    return None


_FULL_WIDTH = str.maketrans("０１２３４５６７８９", "0123456789")
