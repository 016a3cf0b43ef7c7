"""Free-text routing: "我要打车", "井盖坏了", "I need a ride" → the flow that serves it.

Each feature declares its phrases (``Feature.intents``) in both languages; this
module only scores what someone typed against them (rapidfuzz).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rapidfuzz import fuzz

from dialogs.feature import Intent

_NOISE = re.compile(r"[\s,.!?;:'\"，。！？；：、…~～（）()\[\]【】]+")


CUTOFF = 82.0


def normalise(text: str) -> str:
    return _NOISE.sub(" ", text).strip().lower()


def _score(query: str, phrase: str) -> float:
    if query == phrase:
        return 100.0
    if phrase.isascii():
        return fuzz.token_set_ratio(query, phrase) if len(phrase) >= 4 else 0.0
    # A Chinese phrase inside a longer message ("我想打个车去医院" ⊃ "打个车"); only
    # phrases no longer than the message, or one character would match everything.
    compact = query.replace(" ", "")
    if len(phrase) <= len(compact):
        return fuzz.partial_ratio(phrase, compact)
    return fuzz.ratio(phrase, compact)


def match(text: str, intents: Sequence[Intent]) -> str | None:
    """The best target for what someone typed, or None if nothing is close enough."""
    query = normalise(text)[:200]
    if len(query) < 2:
        return None
    best: tuple[float, str] | None = None
    for intent in intents:
        for phrase in intent.phrases:
            score = _score(query, phrase)
            if score >= CUTOFF and (best is None or score > best[0]):
                best = (score, intent.target)
    return None if best is None else best[1]
