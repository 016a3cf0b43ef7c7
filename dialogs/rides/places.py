"""Common destinations: Wuhan hospitals and clinics residents ride to most.

A small constant table, so a resident taps a button instead of typing a long
hospital name. Coordinates are WGS-84 (how Linli stores points) and approximate:
good enough for a driver's navigation link, not for surveying. The Chinese full
name is what drivers see, whatever language the booker uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Place:
    key: str  # short and ASCII: it travels in button data
    name_zh: str  # the full official name, shown to drivers
    short_zh: str
    short_en: str
    latitude: float
    longitude: float
    aliases: tuple[str, ...] = ()

    def label(self, lang: str) -> str:
        return self.short_en if lang == "en" else self.short_zh


PLACES: tuple[Place, ...] = (
    Place("xiehe", "华中科技大学同济医学院附属协和医院", "协和医院", "Union Hospital (Xiehe)",
          30.5836, 114.2752, ("协和", "union hospital", "xiehe")),
    Place("tongji", "华中科技大学同济医学院附属同济医院", "同济医院", "Tongji Hospital",
          30.5804, 114.2597, ("同济", "tongji")),
    Place("renmin", "武汉大学人民医院", "人民医院", "Renmin Hospital of WHU",
          30.5378, 114.3026, ("省人民医院", "人民医院", "renmin")),
    Place("zhongnan", "武汉大学中南医院", "中南医院", "Zhongnan Hospital of WHU",
          30.5560, 114.3470, ("中南", "zhongnan")),
    Place("central", "武汉市中心医院", "市中心医院", "Wuhan Central Hospital",
          30.5866, 114.2957, ("中心医院", "central hospital")),
    Place("fuyou", "湖北省妇幼保健院", "省妇幼", "Hubei Maternal & Child Hospital",
          30.5098, 114.3610, ("妇幼", "妇幼保健院", "maternal")),
    Place("guandong", "关东街社区卫生服务中心", "关东街卫生服务中心", "Guandong Health Centre",
          30.4846, 114.4068, ("关东街卫生", "guandong")),
    Place("nanhu", "南湖街社区卫生服务中心", "南湖街卫生服务中心", "Nanhu Health Centre",
          30.5032, 114.3285, ("南湖街卫生", "nanhu health")),
)  # fmt: skip

_BY_KEY = {p.key: p for p in PLACES}
_SPACES = re.compile(r"\s+")


_BY_NAME = {p.name_zh: p for p in PLACES}


def label_for(text: str, lang: str) -> str:
    """A stored destination in the reader's language: a known hospital's English name."""
    place = _BY_NAME.get(text)
    return place.label(lang) if place is not None and lang == "en" else text


def by_key(key: str) -> Place | None:
    return _BY_KEY.get(key)


def match(text: str) -> Place | None:
    """The place a typed destination clearly names ("协和医院", "tongji"), if any.

    Only a name contained in the text counts: a typed street address that merely
    mentions a district must stay what the person wrote.
    """
    norm = _SPACES.sub("", text).lower()
    for place in PLACES:
        names = (place.name_zh, place.short_zh, place.short_en, *place.aliases)
        if any(_SPACES.sub("", n).lower() in norm for n in names):
            return place
    return None
