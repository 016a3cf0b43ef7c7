"""Weekly opening hours of a rest station, in Asia/Shanghai local time.

A schedule is seven lists of intervals (Monday first), each ``(start, end)`` in
minutes after that day's midnight. An interval may run past midnight: 22:00–06:00 on
Monday is ``(1320, 1800)`` and keeps the station open until 06:00 on Tuesday. 24 h is
``(0, 1440)`` every day.

Written as text (CSV, GeoJSON, staff typing in chat) like::

    24h
    daily 07:00-22:00
    mon-fri 08:00-20:00; sat-sun 09:00-17:00
    mon-sun 22:00-06:00
    周一至周五 07:00-09:00,11:00-14:00；周末 10:00-16:00

``parse_hours`` reads it (or raises ``HoursError`` saying why); ``Hours.text`` writes
the canonical English form back, which ``parse_hours`` reads again unchanged.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = 1440
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ZH_DAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "七": 6}
_ALL = tuple(range(7))
_DAY_WORDS: dict[str, tuple[int, ...]] = {
    "daily": _ALL,
    "everyday": _ALL,
    "每天": _ALL,
    "每日": _ALL,
    "天天": _ALL,
    "weekdays": (0, 1, 2, 3, 4),
    "工作日": (0, 1, 2, 3, 4),
    "weekends": (5, 6),
    "weekend": (5, 6),
    "周末": (5, 6),
}
_ALWAYS_WORDS = ("24h", "24小时", "24 小时", "全天", "24/7", "全天候")
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


class HoursError(ValueError):
    """Hours that cannot be read; the message says why, in plain English."""


Interval = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Hours:
    days: tuple[tuple[Interval, ...], ...]  # seven entries, Monday first

    @property
    def always(self) -> bool:
        return all(day == ((0, DAY),) for day in self.days)

    def is_open(self, local: datetime) -> bool:
        """Whether open at this moment (a Shanghai-local or aware datetime)."""
        local = _local(local)
        return self.is_open_at(local.weekday(), local.hour * 60 + local.minute)

    def is_open_at(self, weekday: int, minute: int) -> bool:
        if any(s <= minute < e for s, e in self.days[weekday]):
            return True
        # Yesterday's intervals that run past midnight.
        return any(e > DAY and minute < e - DAY for _s, e in self.days[(weekday - 1) % 7])

    def closes_at(self, local: datetime) -> datetime | None:
        """When the current opening ends (following back-to-back intervals across
        midnight); None when it is not open now or never closes (24 h)."""
        local = _local(local)
        if not self.is_open(local):
            return None
        end = local
        for _ in range(8 * 4):  # every interval of the week at most, a few times over
            nxt = self._end_of_interval_at(end)
            if nxt is None:
                return end
            end = nxt
            if end - local > timedelta(days=7):
                return None  # open around the clock
        return None

    def _end_of_interval_at(self, local: datetime) -> datetime | None:
        """The end of an interval containing ``local``, or None when none contains it."""
        midnight = datetime.combine(local.date(), time(0), tzinfo=SHANGHAI)
        minute = local.hour * 60 + local.minute
        best: datetime | None = None
        for day_offset, weekday in ((0, local.weekday()), (-1, (local.weekday() - 1) % 7)):
            for s, e in self.days[weekday]:
                rel = minute - day_offset * DAY
                if s <= rel < e:
                    candidate = midnight + timedelta(days=day_offset, minutes=e)
                    if best is None or candidate > best:
                        best = candidate
        return best

    def next_open(self, local: datetime) -> datetime | None:
        """The next moment after ``local`` at which an interval starts."""
        local = _local(local)
        start_day = local.date()
        for offset in range(8):
            day = start_day + timedelta(days=offset)
            for s, _e in sorted(self.days[day.weekday()]):
                when = datetime.combine(day, time(0), tzinfo=SHANGHAI) + timedelta(minutes=s)
                if when > local:
                    return when
        return None

    def text(self) -> str:
        """The canonical text form (``parse_hours(h.text()) == h``)."""
        if self.always:
            return "24h"
        groups: list[tuple[list[int], tuple[Interval, ...]]] = []
        for weekday, intervals in enumerate(self.days):
            if not intervals:
                continue
            if groups and groups[-1][1] == intervals and groups[-1][0][-1] == weekday - 1:
                groups[-1][0].append(weekday)
            else:
                groups.append(([weekday], intervals))
        if len(groups) == 1 and len(groups[0][0]) == 7:
            return f"daily {_ranges(groups[0][1])}"
        parts = []
        for days, intervals in groups:
            label = DAY_NAMES[days[0]] if len(days) == 1 else f"{DAY_NAMES[days[0]]}-{DAY_NAMES[days[-1]]}"
            parts.append(f"{label} {_ranges(intervals)}")
        return "; ".join(parts)

    def week_lines(self) -> list[tuple[int, str]]:
        """(weekday, "08:00-20:00, 21:00-23:00") per day; "" for a closed day."""
        return [(weekday, _ranges(self.days[weekday])) for weekday in range(7)]


def _local(when: datetime) -> datetime:
    return when.astimezone(SHANGHAI) if when.tzinfo is not None else when.replace(tzinfo=SHANGHAI)


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _ranges(intervals: tuple[Interval, ...]) -> str:
    return ",".join(f"{_hhmm(s)}-{_hhmm(e if e <= DAY else e - DAY)}" for s, e in intervals)


def minute_text(minute: int) -> str:
    return _hhmm(minute % DAY if minute != DAY else DAY)


def _normalise(raw: str) -> str:
    text = raw.strip().lower()
    for a, b in (("：", ":"), ("；", ";"), ("，", ","), ("、", ","), ("～", "-"), ("~", "-"), ("—", "-")):
        text = text.replace(a, b)
    text = re.sub(r"(\d)\s*(?:至|到|–|－)\s*(\d)", r"\1-\2", text)
    text = re.sub(r"\s*-\s*", "-", text)
    return re.sub(r"\s+", " ", text)


def _days(spec: str) -> tuple[int, ...]:
    spec = spec.strip().replace("至", "-").replace("到", "-").replace("–", "-")
    if spec in _DAY_WORDS:
        return _DAY_WORDS[spec]
    found: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        ends = [_one_day(p) for p in part.split("-")]
        if len(ends) == 1:
            found.append(ends[0])
        elif len(ends) == 2:
            a, b = ends
            found.extend((a + i) % 7 for i in range(((b - a) % 7) + 1))
        else:
            raise HoursError(f"cannot read the days {part!r}")
    if not found:
        raise HoursError("no days given")
    return tuple(dict.fromkeys(found))


def _one_day(word: str) -> int:
    word = word.strip()
    if word[:3] in DAY_NAMES:
        return DAY_NAMES.index(word[:3])
    for prefix in ("星期", "礼拜", "周"):
        if word.startswith(prefix) and word[len(prefix) :] in _ZH_DAYS:
            return _ZH_DAYS[word[len(prefix) :]]
    raise HoursError(f"cannot read the day {word!r} (use mon…sun or 周一…周日)")


def _interval(text: str) -> Interval:
    if text in _ALWAYS_WORDS:
        return (0, DAY)
    m = _RANGE.match(text)
    if m is None:
        raise HoursError(f"cannot read the time range {text!r} (write it like 08:00-20:00)")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2 != 0):
        raise HoursError(f"{text!r} is not a time of day")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end == start:
        raise HoursError(f"{text!r} opens and closes at the same time (write 24h for all day)")
    if end < start:
        end += DAY  # past midnight: 22:00-06:00
    return (start, end)


@lru_cache(maxsize=4096)  # imports repeat a handful of schedules many times
def parse_hours(raw: str) -> Hours:
    text = _normalise(raw)
    if not text:
        raise HoursError("no opening hours given")
    if text in _ALWAYS_WORDS:
        return Hours(tuple(((0, DAY),) for _ in range(7)))
    days: list[list[Interval]] = [[] for _ in range(7)]
    for segment in (s.strip() for s in text.split(";")):
        if not segment:
            continue
        spec, ranges = _split_segment(segment)
        weekdays = _days(spec) if spec else _ALL
        intervals = [_interval(r.strip()) for r in ranges.split(",") if r.strip()]
        if not intervals:
            raise HoursError(f"no time range in {segment!r}")
        for weekday in weekdays:
            days[weekday].extend(intervals)
    for weekday, intervals in enumerate(days):
        intervals.sort()
        for (_s1, e1), (s2, _e2) in itertools.pairwise(intervals):
            if s2 < e1:
                raise HoursError(f"overlapping times on {DAY_NAMES[weekday]}")
    if not any(days):
        raise HoursError("open on no day at all")
    return Hours(tuple(tuple(d) for d in days))


def _split_segment(segment: str) -> tuple[str, str]:
    """("mon-fri", "08:00-20:00,21:00-22:00") from one segment; the day spec is optional."""
    m = re.search(r"(\d{1,2}:\d{2}-\d{1,2}:\d{2}|24h|24小时|全天)", segment)
    if m is None:
        raise HoursError(f"no time range in {segment!r} (write it like 08:00-20:00)")
    return segment[: m.start()].strip(" ,"), segment[m.start() :]


def local_date(when: datetime) -> date:
    return _local(when).date()
