"""Where is "光谷", "guanggu" or "gg"? Places a person types, matched fuzzily.

Three sources, best match first: Wuhan's districts and well-known areas (a small
table here, WGS-84, approximate centres), the stations themselves (name, street,
district), and the communities Linli knows. Chinese is matched by characters and,
for typos that sound right (光股 → 光谷), by pinyin; Latin letters by full pinyin
("guanggu") or initials ("gg"), and by English names ("Optics Valley").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from pypinyin import Style, lazy_pinyin
from rapidfuzz import fuzz

from storage.stations import StationData

# A score at or above this is a match worth offering; a clear winner is taken at once.
OFFER = 80.0
CLEAR = 95.0
MAX_OFFERED = 6


@dataclass(frozen=True, slots=True)
class Spot:
    name: str
    name_en: str
    latitude: float
    longitude: float
    aliases: tuple[str, ...] = ()


SPOTS: tuple[Spot, ...] = (
    # Districts (centres of their built-up areas).
    Spot("江岸区", "Jiang'an District", 30.6000, 114.3050),
    Spot("江汉区", "Jianghan District", 30.5880, 114.2700),
    Spot("硚口区", "Qiaokou District", 30.5800, 114.2430),
    Spot("汉阳区", "Hanyang District", 30.5500, 114.2250),
    Spot("武昌区", "Wuchang District", 30.5480, 114.3160),
    Spot("青山区", "Qingshan District", 30.6320, 114.3850),
    Spot("洪山区", "Hongshan District", 30.5050, 114.3430),
    Spot("东湖高新区", "East Lake High-tech Zone", 30.4900, 114.4300, ("光谷开发区",)),
    Spot("东西湖区", "Dongxihu District", 30.6250, 114.1400),
    Spot("蔡甸区", "Caidian District", 30.5820, 114.0350),
    Spot("汉南区", "Hannan District", 30.3120, 114.0850),
    Spot("江夏区", "Jiangxia District", 30.3760, 114.3200),
    Spot("黄陂区", "Huangpi District", 30.8800, 114.3750),
    Spot("新洲区", "Xinzhou District", 30.8420, 114.8000),
    Spot("武汉经开区", "Wuhan Economic Development Zone", 30.5000, 114.1600, ("经开区", "沌口")),
    # Areas and landmarks people name.
    Spot("光谷", "Optics Valley", 30.5058, 114.3987, ("光谷广场", "optical valley")),
    Spot("汉口火车站", "Hankou Railway Station", 30.6177, 114.2567, ("汉口站",)),
    Spot("武汉站", "Wuhan Railway Station", 30.6075, 114.4240, ("武汉火车站",)),
    Spot("武昌火车站", "Wuchang Railway Station", 30.5290, 114.3170, ("武昌站",)),
    Spot("江汉路", "Jianghan Road", 30.5800, 114.2880, ("江汉路步行街",)),
    Spot("楚河汉街", "Chu River Han Street", 30.5540, 114.3430, ("汉街",)),
    Spot("街道口", "Jiedaokou", 30.5272, 114.3535),
    Spot("徐东", "Xudong", 30.5900, 114.3440, ("徐东大街",)),
    Spot("王家墩", "Wangjiadun CBD", 30.6030, 114.2620, ("武汉CBD",)),
    Spot("后湖", "Houhu", 30.6420, 114.2970),
    Spot("钟家村", "Zhongjiacun", 30.5500, 114.2600),
    Spot("王家湾", "Wangjiawan", 30.5580, 114.2160),
    Spot("中南路", "Zhongnan Road", 30.5380, 114.3350),
    Spot("司门口", "Simenkou", 30.5470, 114.3030, ("黄鹤楼",)),
    Spot("天河机场", "Tianhe Airport", 30.7840, 114.2080, ("机场",)),
    Spot("阳逻港", "Yangluo Port", 30.6840, 114.5580, ("阳逻",)),
    Spot("金银湖", "Jinyinhu", 30.6500, 114.1900),
    Spot("吴家山", "Wujiashan", 30.6330, 114.1410),
    Spot("纸坊", "Zhifang", 30.3560, 114.3220),
    Spot("关山大道", "Guanshan Avenue", 30.4900, 114.4100, ("关山",)),
)


@dataclass(frozen=True, slots=True)
class Found:
    label: str
    latitude: float
    longitude: float
    score: float
    is_spot: bool


_NOISE = re.compile(r"[\s,.!?;:'\"，。！？；：、…~～（）()\[\]【】·\-_]+")
# Words around a place that are not the place: "光谷附近的驿站" → "光谷".
_AROUND = re.compile(r"(附近|周边|一带|旁边|那边|这边|的|有没有|哪里有|哪儿有|驿站|在|找|吗|呢|\?|？)+$")
_LEAD = re.compile(r"^(我在|在|找|去|到)+")


def normalise(text: str) -> str:
    return _NOISE.sub("", text).lower()


def core_query(text: str) -> str:
    q = normalise(text)
    if q.isascii():
        return q
    q = _LEAD.sub("", q)
    shorter = _AROUND.sub("", q)
    return shorter or q


@lru_cache(maxsize=100_000)
def pinyin_of(text: str) -> tuple[str, str]:
    """(full pinyin, initials) of a name, lower case, no spaces: 光谷 → ("guanggu", "gg")."""
    full = "".join(lazy_pinyin(text)).lower()
    initials = "".join(lazy_pinyin(text, style=Style.FIRST_LETTER)).lower()
    return _NOISE.sub("", full), _NOISE.sub("", initials)


def score(query: str, names: Iterable[str], english: Iterable[str] = ()) -> float:
    """How well ``query`` (already ``core_query``) names a place with these names."""
    best = 0.0
    if query.isascii():
        q = query
        for name in names:
            full, initials = pinyin_of(name)
            if q in (full, initials):
                return 100.0
            if len(q) >= 3 and full.startswith(q):
                best = max(best, 95.0)
            if len(q) >= 2 and initials.startswith(q):
                best = max(best, 88.0 if len(q) < len(initials) else 100.0)
            if len(q) >= 5:
                best = max(best, 0.93 * fuzz.partial_ratio(q, full))
        for name in english:
            en = normalise(name)
            if q == en:
                return 100.0
            if len(q) >= 4:
                best = max(best, 0.95 * fuzz.partial_ratio(q, en) if q in en else 0.9 * fuzz.ratio(q, en))
        return best
    q_full, _ = pinyin_of(query)
    for name in names:
        n = normalise(name)
        if q_full and len(query) >= 2 and pinyin_of(n)[0] == q_full:
            return 100.0 if n == query else 96.0  # the name itself, or one that sounds the same
        if len(query) >= 2 and query in n:
            best = max(best, 92.0)
        elif len(n) >= 2 and n in query:
            best = max(best, 85.0)
        best = max(best, 0.9 * fuzz.ratio(query, n))
    return best


def find(text: str, stations: Iterable[StationData], extra: Iterable[Found] = ()) -> list[Found]:
    """The places ``text`` may name, best first (at most ``MAX_OFFERED``)."""
    query = core_query(text)
    if len(query) < 2 or len(query) > 40:
        return []
    found: list[Found] = []
    for spot in SPOTS:
        s = score(query, (spot.name, *spot.aliases), (spot.name_en,))
        if s >= OFFER:
            found.append(Found(spot.name, spot.latitude, spot.longitude, s, True))
    for station in stations:
        s = score(query, (station.name,))
        if s >= OFFER:
            found.append(Found(station.name, station.latitude, station.longitude, s, False))
    found.extend(extra)
    found.sort(key=lambda f: (-f.score, not f.is_spot, len(f.label)))
    unique: list[Found] = []
    for f in found:
        if all(u.label != f.label for u in unique):
            unique.append(f)
    return unique[:MAX_OFFERED]


def clear_winner(found: list[Found]) -> Found | None:
    """The one place meant, when the match leaves no doubt."""
    if not found or found[0].score < CLEAR:
        return None
    if len(found) == 1 or found[1].score < found[0].score or (found[0].score == 100.0 and found[0].is_spot):
        return found[0]
    return None
