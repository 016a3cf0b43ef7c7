"""The kinds of problem people report, their deadlines and how far apart two reports of
the same kind may be and still be one problem; and guessing the kind from words."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from dialogs.intents import normalise

HAZARD_ACCEPT = timedelta(hours=2)
HAZARD_RESOLVE = timedelta(hours=24)
GENERAL_ACCEPT = timedelta(hours=24)
GENERAL_RESOLVE = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Category:
    key: str
    emoji: str
    hazard: bool  # a danger to people: short deadlines
    radius_m: int  # reports this close are offered as "the same problem?"
    words: tuple[str, ...]  # what people write about it, both languages

    @property
    def accept_within(self) -> timedelta:
        return HAZARD_ACCEPT if self.hazard else GENERAL_ACCEPT

    @property
    def resolve_within(self) -> timedelta:
        return HAZARD_RESOLVE if self.hazard else GENERAL_RESOLVE

    @property
    def points(self) -> int:
        """What an accepted report of this kind earns a gig worker."""
        return 20 if self.hazard else 10


CATEGORIES: tuple[Category, ...] = (
    Category("manhole", "🕳", True, 100, ("井盖", "下水道盖", "窨井", "manhole", "drain cover")),
    Category(
        "road", "🚧", True, 100, ("路面", "坑", "塌陷", "破损", "人行道", "pothole", "road", "pavement")
    ),
    Category(
        "streetlight", "💡", False, 100, ("路灯", "灯不亮", "灯坏", "street light", "streetlight", "lamp")
    ),
    Category(
        "fire",
        "🔥",
        True,
        100,
        ("消防", "着火", "火灾", "电线", "飞线", "电动车充电", "fire", "wires", "smoke"),
    ),
    Category("garbage", "🗑", False, 50, ("垃圾", "脏", "臭", "garbage", "rubbish", "trash", "litter")),
    Category(
        "parking", "🚗", False, 100, ("乱停", "停车", "占道", "堵", "通道", "parking", "blocked", "passage")
    ),
    Category("noise", "🔊", False, 300, ("噪音", "吵", "扰民", "noise", "loud")),
    Category("lift", "🛗", True, 30, ("电梯", "lift", "elevator")),
    Category("water", "💧", False, 100, ("漏水", "积水", "水管", "爆管", "淹", "leak", "flood", "water")),
    Category("trees", "🌳", False, 100, ("树", "树枝", "倒树", "tree", "branch")),
    Category("other", "📌", False, 100, ()),
)

BY_KEY = {c.key: c for c in CATEGORIES}
DEFAULT = BY_KEY["other"]


def get(key: str | None) -> Category:
    return BY_KEY.get(key or "", DEFAULT)


def offered(configured: Sequence[str]) -> tuple[Category, ...]:
    """The categories shown as buttons: the configured ones in their order (unknown
    names ignored), always ending with "other"; all of them when none are configured."""
    chosen = [BY_KEY[k] for k in dict.fromkeys(configured) if k in BY_KEY and k != "other"]
    return (*(chosen or [c for c in CATEGORIES if c.key != "other"]), DEFAULT)


def guess(text: str, choices: Sequence[Category] = CATEGORIES) -> Category | None:
    """The category whose words appear in the text (the longest match wins), if any."""
    query = normalise(text)
    compact = query.replace(" ", "")
    best: tuple[int, Category] | None = None
    for category in choices:
        for word in category.words:
            hit = (word in query.split() or word in query) if word.isascii() else word in compact
            if hit and (best is None or len(word) > best[0]):
                best = (len(word), category)
    return None if best is None else best[1]
