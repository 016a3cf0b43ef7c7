"""When should the ride happen? Natural Chinese or English phrases → a time in Wuhan.

The common date libraries do not read 下午3点 or 一个半小时后, so this is a small
hand-written grammar: regular expressions and word tables, applied in a fixed order.

How a phrase is read
  1. Normalise: NFKC (１５：３０ → 15:30), lower case, a few traditional characters.
  2. Scan: each rule in ``_RULES`` finds its pieces, records them in a ``_Reading``
     and blanks them out, so later rules cannot read the same characters twice.
     Order matters: relative times before clocks (两个小时后 is not 2 o'clock),
     weekdays before clocks (周一十点), clocks before dates (Dec 3 10am).
  3. Resolve: the pieces must agree (one clock, one day, periods that fit the hour);
     then the day and the time of day make candidate instants, checked against the
     window [now + min_lead - 2 min, now + max_ahead]. The likelier reading decides:
     if it is past, the phrase is IN_PAST even when the other reading would fit
     (今天9点 at 10:20); the other reading is offered only when it fits too.
  Unrecognised words are ignored (下午3点去医院), but an unplaced number (a digit, or
  a Chinese numeral before 点/号/月…) refuses the phrase: it may be the real time, misread.

Defaults for what people leave out (the reply is always confirmed with ``describe``)
  * No day: today if the time is still ahead, else tomorrow (not marked ambiguous).
  * 周五 / friday: the next Friday whose time is still ahead (today counts).
    下周五 / next friday: Friday of next week (weeks start on Monday); 这周五 / this
    friday: Friday of this week, even if that is past.
  * 12月3日 / Dec 3 without a year: the nearest such date, so yesterday's date is
    IN_PAST rather than a year ahead. 3号 / the 3rd: the next such day, today included.
  * A bare hour (3点, at 9, 9:30): 1–6 → afternoon, 7–11 → morning; both ambiguous,
    the other half of the day as ``alternative``. 12 → noon, 0 and 13–24 are 24-hour
    and so is a leading zero (09:30); none of these is ambiguous.
  * A period word picks the reading of the hour inside its window (``_WINDOWS``):
    下午3点 → 15:00, 上午12点 → 12:00, 晚上12点 → midnight at the end of that
    evening, 晚上1点 → 1:00 after that evening; 上午15点 contradicts itself → refused.
  * A day with a morning word but no hour (明天早上, tomorrow morning) → 9:00,
    marked ambiguous with no alternative. 中午/noon → 12:00, 半夜/midnight → 24:00.
    Any other day without an hour (明天, 下午, tonight) → NOT_UNDERSTOOD, so the bot
    asks for the hour instead of guessing across a whole afternoon; but IN_PAST or
    TOO_FAR when no hour of that day could do (60天后, in 60 days).
  * 现在/now and anything up to two minutes ago mean now. With ``min_lead`` > 0,
    times sooner than that (including "now") are refused as IN_PAST: too late to book.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import Enum
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
# "Now" typed a minute ago is still now: the message took time to arrive.
GRACE = timedelta(minutes=2)
# Where a morning is named but no hour: clinics open around then.
MORNING_DEFAULT = 9 * 60
_MAX_TEXT = 200  # longer messages are not an answer to "when?"


@dataclass(frozen=True)
class ParsedTime:
    when: datetime  # timezone-aware, Asia/Shanghai
    ambiguous: bool = False  # we picked the likelier reading; confirm it
    alternative: datetime | None = None  # the other reading, to offer as a button


class TimeError(Enum):
    """Why a phrase was refused."""

    NOT_UNDERSTOOD = "not_understood"
    IN_PAST = "in_past"
    TOO_FAR = "too_far"
    # A day (明天, 周五下午, tonight) but no hour: ask for the hour, never guess one.
    NEEDS_HOUR = "needs_hour"


class _NotUnderstood(Exception):
    """Raised anywhere in reading or resolving; parse_when turns it into NOT_UNDERSTOOD."""


class _InPast(Exception):
    """A day word that is behind us (昨天, 前天, 去年): refused, never dropped."""


# ---------------------------------------------------------------- periods of the day


class _Period(Enum):
    EARLY = "凌晨"
    MORNING = "上午"
    NOON = "中午"
    AFTERNOON = "下午"
    EVENING = "晚上"
    MIDNIGHT = "半夜"
    AM = "am"
    PM = "pm"


# The 24-hour values (24+ = after midnight that night) each period word can mean.
_WINDOWS: dict[_Period, range] = {
    _Period.EARLY: range(0, 7),
    _Period.MORNING: range(4, 13),
    _Period.NOON: range(11, 15),
    _Period.AFTERNOON: range(12, 24),
    _Period.EVENING: range(16, 29),
    _Period.MIDNIGHT: range(24, 29),
    _Period.AM: range(0, 12),
    _Period.PM: range(12, 24),
}

_CN_PERIODS = {
    "凌晨": _Period.EARLY,
    "早上": _Period.MORNING,
    "早晨": _Period.MORNING,
    "清晨": _Period.MORNING,
    "上午": _Period.MORNING,
    "中午": _Period.NOON,
    "正午": _Period.NOON,
    "下午": _Period.AFTERNOON,
    "午后": _Period.AFTERNOON,
    "傍晚": _Period.EVENING,
    "晚上": _Period.EVENING,
    "晚间": _Period.EVENING,
    "夜里": _Period.EVENING,
    "夜晚": _Period.EVENING,
    "半夜": _Period.MIDNIGHT,
    "午夜": _Period.MIDNIGHT,
}
_EN_PERIODS = {
    "morning": _Period.MORNING,
    "afternoon": _Period.AFTERNOON,
    "evening": _Period.EVENING,
    "night": _Period.EVENING,
    "noon": _Period.NOON,
    "midday": _Period.NOON,
    "midnight": _Period.MIDNIGHT,
}

# ---------------------------------------------------------------- word tables

_CN_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4}
_CN_DIGIT |= {"五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_DAYS = {
    "大后天": 3,
    "后天": 2,
    "后儿": 2,
    "明天": 1,
    "明日": 1,
    "明儿": 1,
    "今天": 0,
    "今日": 0,
    "今儿": 0,
}
_CN_DAYS |= {"大后儿": 3, "后儿": 2, "后儿个": 2, "明儿个": 1, "今儿个": 0}  # northern and Wuhan speech
_CN_DAY_PERIODS = {
    "今晚": (0, _Period.EVENING),
    "今夜": (0, _Period.EVENING),
    "今早": (0, _Period.MORNING),
    "明晚": (1, _Period.EVENING),
    "明早": (1, _Period.MORNING),
    "明晨": (1, _Period.MORNING),
}
_CN_WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_CN_WEEK_PREFIX = {"上": -1, "这": 0, "这个": 0, "本": 0, "下": 1, "下个": 1, "下下": 2, "下下个": 2}
_EN_WEEKDAY = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_EN_MONTH = {"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6}
_EN_MONTH |= {"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}
_EN_NUMBER: dict[str, float] = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4}
_EN_NUMBER |= {"five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "twelve": 12}
_EN_NUMBER |= {"fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "forty-five": 45}
_EN_NUMBER |= {"fifty": 50, "sixty": 60, "half a": 0.5, "half an": 0.5}
# Traditional characters from relatives' phones in Hong Kong or Taiwan.
_TRADITIONAL = str.maketrans("點號週後兩個鐘時禮現馬淩曉", "点号周后两个钟时礼现马凌晓")


def _alternation(words: Iterable[str]) -> str:
    """Regex alternation, longest first so 大后天 wins over 后天."""
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


# Numbers: ASCII digits (never \d, which also matches ٣) or Chinese numerals up to 九十九.
# The lookbehinds stop a rule from starting in the middle of a longer number.
_CN_NUM = "[零〇一二两三四五六七八九十]"
_NUM = rf"(?:(?<![0-9])[0-9]{{1,2}}|(?<!{_CN_NUM}){_CN_NUM}{{1,3}})"
_COUNT = rf"(?:(?<![0-9])[0-9]{{1,4}}|(?<!{_CN_NUM}){_CN_NUM}{{1,3}})"
_EN_COUNT = rf"(?:[0-9]{{1,4}}(?:\.[0-9])?|{_alternation(_EN_NUMBER)})"
_EN_MONTHS = (
    r"(?P<mon>january|jan|february|feb|march|mar|april|apr|may|june|jun|july|jul|august|aug"
    r"|september|sept|sep|october|oct|november|nov|december|dec)\b\.?"
)


def _number(text: str) -> int:
    """'15', '十五', '二十三', '两', '零五' → int; anything else is not understood."""
    if text.isascii() and text.isdigit():
        return int(text)
    if "十" in text:
        tens, _, ones = text.partition("十")
        if len(tens) > 1 or len(ones) > 1:
            raise _NotUnderstood
        return (_digit(tens) if tens else 1) * 10 + (_digit(ones) if ones else 0)
    if len(text) == 2 and text[0] in "零〇":  # 九点零五
        return _digit(text[1])
    if len(text) == 1:
        return _digit(text)
    raise _NotUnderstood


def _digit(char: str) -> int:
    if char not in _CN_DIGIT:
        raise _NotUnderstood
    return _CN_DIGIT[char]


def _en_count(text: str) -> float:
    text = re.sub(r"\s+", " ", text)
    return float(text) if text[0].isdigit() else float(_EN_NUMBER[text])


# ---------------------------------------------------------------- what a scan collects


@dataclass(frozen=True)
class _Clock:
    hour: int
    minute: int
    plain: bool  # written like a 12-hour clock (3点, at 9, 9:30): could be either half of the day


@dataclass
class _Reading:
    today: date
    now: bool = False
    after: list[timedelta] = field(default_factory=list)
    dates: list[date] = field(default_factory=list)
    weekdays: list[int] = field(default_factory=list)  # "the next Friday" (0 = Monday)
    clocks: list[_Clock] = field(default_factory=list)
    periods: set[_Period] = field(default_factory=set)

    def empty(self) -> bool:
        return not (self.now or self.after or self.dates or self.weekdays or self.clocks or self.periods)

    def add_days(self, days: int) -> None:
        self.dates.append(self.today + timedelta(days=days))

    def add_week_day(self, weekday: int, weeks: int) -> None:
        monday = self.today - timedelta(days=self.today.weekday())
        self.dates.append(monday + timedelta(weeks=weeks, days=weekday))


# A rule reads one match into the reading; False means "not what I thought", keep the text.
_Build = Callable[[re.Match[str], _Reading], bool]
_RULES: list[tuple[re.Pattern[str], _Build]] = []


def _rule(pattern: str) -> Callable[[_Build], _Build]:
    def register(build: _Build) -> _Build:
        _RULES.append((re.compile(pattern), build))
        return build

    return register


# ---------------------------------------------------------------- rules, in scan order
# Relative times come first: "30 minutes from now" must not leave a bare "now".


@_rule(
    rf"(?:(?P<pre>再?过|等)\s*)?(?P<h>[0-9]{{1,3}}(?:\.[0-9])?|{_CN_NUM}{{1,3}}|半)\s*个?\s*(?P<half>半)?\s*"
    rf"(?:小时|钟头)(?:\s*(?P<m>{_NUM})\s*分钟)?\s*(?P<post>以后|之后|后)?"
)
def _cn_hours_later(match: re.Match[str], reading: _Reading) -> bool:
    """半小时后, 两个小时后, 一个半小时后, 1小时30分钟后, 过2小时."""
    if not (match["pre"] or match["post"]):
        return False
    raw = match["h"]
    hours = 0.5 if raw == "半" else float(raw) if raw[0].isdigit() else _number(raw)
    minutes = hours * 60 + (30 if match["half"] else 0) + (_number(match["m"]) if match["m"] else 0)
    reading.after.append(timedelta(minutes=minutes))
    return True


@_rule(rf"(?:(?P<pre>再?过|等)\s*)?(?P<m>{_COUNT})\s*分钟\s*(?P<post>以后|之后|后)?")
def _cn_minutes_later(match: re.Match[str], reading: _Reading) -> bool:
    """30分钟后, 过20分钟."""
    if not (match["pre"] or match["post"]):
        return False
    reading.after.append(timedelta(minutes=_number(match["m"])))
    return True


_EN_SPAN = rf"(?P<n>{_EN_COUNT})\s*(?P<unit>hours?|hrs?|h|minutes?|mins?)(?P<half>\s+and\s+a\s+half)?"


@_rule(rf"(?P<pre>\bin\s+)?\b{_EN_SPAN}\b(?P<post>\s+(?:from\s+now|later))?")
def _en_later(match: re.Match[str], reading: _Reading) -> bool:
    """in 30 minutes, in an hour and a half, 45 minutes from now."""
    if not (match["pre"] or match["post"]):
        return False
    per_unit = 60 if match["unit"].startswith("h") else 1
    minutes = _en_count(match["n"]) * per_unit + (30 if match["half"] else 0)
    reading.after.append(timedelta(minutes=minutes))
    return True


@_rule(r"现在|马上|立刻|立即|立马|尽快|赶紧|\b(?:right\s+)?now\b|\bimmediately\b|\basap\b|\bright\s+away\b")
def _now(match: re.Match[str], reading: _Reading) -> bool:
    reading.now = True
    return True


# Days.


@_rule(rf"(?P<n>{_COUNT})\s*天\s*(?:以后|之后|后)")
def _cn_days_later(match: re.Match[str], reading: _Reading) -> bool:
    """三天后, 60天以后."""
    reading.add_days(_number(match["n"]))
    return True


@_rule(rf"\bin\s+(?P<n>{_EN_COUNT})\s*(?P<unit>days?|weeks?)\b")
def _en_days_later(match: re.Match[str], reading: _Reading) -> bool:
    """in 3 days, in a week."""
    days = _en_count(match["n"]) * (7 if match["unit"].startswith("w") else 1)
    if not days.is_integer():
        raise _NotUnderstood
    reading.add_days(int(days))
    return True


@_rule(_alternation([*_CN_DAYS, *_CN_DAY_PERIODS]))
def _cn_day(match: re.Match[str], reading: _Reading) -> bool:
    """今天 明天 后天 大后天; 今晚 明早 明晚 also name the period."""
    word = match[0]
    if word in _CN_DAY_PERIODS:
        days, period = _CN_DAY_PERIODS[word]
        reading.periods.add(period)
    else:
        days = _CN_DAYS[word]
    reading.add_days(days)
    return True


@_rule(r"\b(?:(?P<d2>(?:the\s+)?day\s+after\s+tomorrow)|(?P<d1>tomorrow|tomorow|tmrw?)|(?P<d0>today))\b")
def _en_day(match: re.Match[str], reading: _Reading) -> bool:
    reading.add_days(2 if match["d2"] else 1 if match["d1"] else 0)
    return True


@_rule(r"\b(?:tonight|this\s+(?P<period>morning|afternoon|evening))\b")
def _en_today_period(match: re.Match[str], reading: _Reading) -> bool:
    """tonight, this morning: today, and which part of it."""
    reading.add_days(0)
    reading.periods.add(_EN_PERIODS[match["period"] or "evening"])
    return True


# 上 only when it does not end 早上/晚上: 早上周三 is not last Wednesday.
_CN_WEEK_PRE = rf"(?<![早晚])上|{_alternation(set(_CN_WEEK_PREFIX) - {'上'})}"


@_rule(rf"(?P<pre>{_CN_WEEK_PRE})?\s*(?:周|星期|礼拜)(?P<d>[一二三四五六日天]|[1-7](?![0-9]))")
def _cn_weekday(match: re.Match[str], reading: _Reading) -> bool:
    """周三, 星期天, 礼拜一; 下周三 / 这周五 / 上周五 fix the week."""
    raw = match["d"]
    weekday = int(raw) - 1 if raw.isdigit() else _CN_WEEKDAY[raw]
    if match["pre"] is None:
        reading.weekdays.append(weekday)
    else:
        reading.add_week_day(weekday, _CN_WEEK_PREFIX[match["pre"]])
    return True


@_rule(
    r"\b(?:(?P<pre>next|this|coming)\s+)?(?P<d>monday|mon|tuesday|tues|tue|wednesday|wed"
    r"|thursday|thurs|thur|thu|friday|fri|saturday|sat|sunday|sun)\b"
)
def _en_weekday(match: re.Match[str], reading: _Reading) -> bool:
    """friday / coming friday: the next one; next friday = 下周五; this friday = 这周五."""
    weekday = _EN_WEEKDAY[match["d"][:3]]
    pre = match["pre"]
    if pre in (None, "coming"):
        reading.weekdays.append(weekday)
    else:
        reading.add_week_day(weekday, 1 if pre == "next" else 0)
    return True


# Clocks.


@_rule(r"(?:\bat\s+)?(?<![0-9:])(?P<h>[0-9]{1,2})(?::(?P<m>[0-9]{2}))?\s*(?P<ap>a|p)\.?\s?m(?![a-z])\.?")
def _en_am_pm(match: re.Match[str], reading: _Reading) -> bool:
    """3pm, 3:30 pm, 9 a.m."""
    reading.clocks.append(_Clock(int(match["h"]), int(match["m"] or 0), plain=True))
    reading.periods.add(_Period.AM if match["ap"] == "a" else _Period.PM)
    return True


@_rule(r"(?:\bat\s+)?(?<![0-9])(?P<h>[0-9]{1,2}):(?P<m>[0-9]{2})(?![0-9])")
def _colon_clock(match: re.Match[str], reading: _Reading) -> bool:
    """15:30, 9:30, 09:30, 10:00: two hour digits say 24-hour (no am/pm alternative)."""
    reading.clocks.append(_Clock(int(match["h"]), int(match["m"]), plain=len(match["h"]) == 1))
    return True


@_rule(
    rf"(?P<h>{_NUM})\s*(?:点钟?|时)(?:(?P<half>半)|(?P<q1>[一1]刻)|(?P<q3>[三3]刻)|整"
    # The minutes must not be the start of a date: 3点12月3日.
    rf"|(?P<m>[0-9]{{1,2}}|{_CN_NUM}{{1,3}})(?![0-9]|{_CN_NUM}|\s*[月号日])\s*分?)?"
)
def _cn_clock(match: re.Match[str], reading: _Reading) -> bool:
    """3点, 九点, 两点半, 3点一刻, 十点四十, 15点30分, 8时."""
    hour_text = match["h"]
    bare = not (match["half"] or match["q1"] or match["q3"] or match["m"])
    before = match.string[match.start() - 1 : match.start()]
    if hour_text == "一" and bare and before and before in "快早晚慢多少好有差":
        return False  # 快一点 = "a bit faster", 早一点 = "a bit earlier"
    if match["half"]:
        minute = 30
    elif match["q1"] or match["q3"]:
        minute = 15 if match["q1"] else 45
    else:
        minute = _number(match["m"]) if match["m"] else 0
    reading.clocks.append(_Clock(_number(hour_text), minute, plain=not hour_text.startswith("0")))
    return True


@_rule(r"\bat\s+(?P<h>[0-9]{1,2})\b(?:\s*o'?clock\b)?|\b(?P<h2>[0-9]{1,2})\s*o'?clock\b")
def _en_bare_hour(match: re.Match[str], reading: _Reading) -> bool:
    """at 9, 9 o'clock."""
    reading.clocks.append(_Clock(int(match["h"] or match["h2"]), 0, plain=True))
    return True


@_rule(r"\b(?P<q>half|quarter)\s+(?P<dir>past|to)\s+(?P<h>[0-9]{1,2})\b")
def _en_past_to(match: re.Match[str], reading: _Reading) -> bool:
    """half past 3, quarter past 9, quarter to 10."""
    hour = int(match["h"])
    if match["dir"] == "past":
        clock = _Clock(hour, 30 if match["q"] == "half" else 15, plain=True)
    elif match["q"] == "quarter":
        clock = _Clock(hour - 1 if hour > 1 else 12, 45, plain=True)
    else:
        raise _NotUnderstood  # "half to 3"
    reading.clocks.append(clock)
    return True


# Dates.


@_rule(r"(?<![0-9])(?P<y>[12][0-9]{3})[-/.](?P<mo>[0-9]{1,2})[-/.](?P<d>[0-9]{1,2})(?![0-9])")
def _iso_date(match: re.Match[str], reading: _Reading) -> bool:
    """2026-12-03."""
    reading.dates.append(_date(int(match["y"]), int(match["mo"]), int(match["d"])))
    return True


@_rule(
    rf"(?:(?<![0-9])(?P<y>[12][0-9]{{3}})\s*年|(?P<ry>今|明)年)?\s*(?P<mo>{_NUM})\s*月\s*"
    rf"(?P<d>{_NUM})\s*(?:日|号)?"
)
def _cn_date(match: re.Match[str], reading: _Reading) -> bool:
    """12月3日, 十二月三号, 2026年12月3日, 明年3月1日."""
    month, day = _number(match["mo"]), _number(match["d"])
    if match["y"]:
        reading.dates.append(_date(int(match["y"]), month, day))
    elif match["ry"]:
        reading.dates.append(_date(reading.today.year + (match["ry"] == "明"), month, day))
    else:
        reading.dates.append(_nearest(reading.today, month, day))
    return True


@_rule(rf"(?P<rel>下个?月|这个?月|本月)\s*(?P<d>{_NUM})\s*(?:日|号)")
def _cn_month_day(match: re.Match[str], reading: _Reading) -> bool:
    """下个月3号, 本月20号."""
    today = reading.today
    months = today.year * 12 + today.month - 1 + match["rel"].startswith("下")
    reading.dates.append(_date(months // 12, months % 12 + 1, _number(match["d"])))
    return True


@_rule(rf"(?P<d>{_NUM})\s*(?:号|日)(?![线楼门口床房院车位窗])")
def _cn_day_of_month(match: re.Match[str], reading: _Reading) -> bool:
    """3号, 十五日 (but not 3号线, the metro line)."""
    reading.dates.append(_next_day_of_month(reading.today, _number(match["d"])))
    return True


@_rule(rf"\b{_EN_MONTHS}\s*(?P<d>[0-9]{{1,2}})(?:st|nd|rd|th)?(?![0-9])(?:,?\s*(?P<y>[12][0-9]{{3}})\b)?")
def _en_month_day(match: re.Match[str], reading: _Reading) -> bool:
    """Dec 3, December 3rd, dec 3, 2026."""
    return _add_en_date(match, reading)


@_rule(rf"\b(?P<d>[0-9]{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_EN_MONTHS}(?:,?\s*(?P<y>[12][0-9]{{3}})\b)?")
def _en_day_month(match: re.Match[str], reading: _Reading) -> bool:
    """3 December, 3rd of Dec."""
    return _add_en_date(match, reading)


@_rule(r"\b(?:the\s+)?(?P<d>[0-9]{1,2})(?:st|nd|rd|th)\b")
def _en_day_of_month(match: re.Match[str], reading: _Reading) -> bool:
    """the 3rd."""
    reading.dates.append(_next_day_of_month(reading.today, int(match["d"])))
    return True


# Periods last: the words that did not come with a day or a clock.


@_rule(_alternation(_CN_PERIODS))
def _cn_period(match: re.Match[str], reading: _Reading) -> bool:
    reading.periods.add(_CN_PERIODS[match[0]])
    return True


# 晚7点, 早8点: a lone 早/晚 that is no part of 早上/晚上/晚点 ("later") names the period.
@_rule(r"(?<![今明昨傍])(?P<p>[早晚])(?![上间点些饭餐安一])")
def _cn_short_period(match: re.Match[str], reading: _Reading) -> bool:
    reading.periods.add(_Period.MORNING if match["p"] == "早" else _Period.EVENING)
    return True


@_rule(rf"(?:\b(?P<h>[0-9]{{1,2}})\s+)?\b(?:in\s+the\s+)?(?P<w>{_alternation(_EN_PERIODS)})\b")
def _en_period(match: re.Match[str], reading: _Reading) -> bool:
    """morning, in the afternoon, night, noon; 9 in the morning, 12 midnight."""
    if match["h"]:
        reading.clocks.append(_Clock(int(match["h"]), 0, plain=True))
    reading.periods.add(_EN_PERIODS[match["w"]])
    return True


# ---------------------------------------------------------------- date helpers


def _date(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:  # 2月30日
        raise _NotUnderstood from None


def _nearest(today: date, month: int, day: int) -> date:
    """12月3日 without a year: the closest one, so yesterday's date reads as past, not next year."""
    options = []
    for year in (today.year - 1, today.year, today.year + 1):
        try:
            options.append(date(year, month, day))
        except ValueError:  # 2月29日 outside leap years
            continue
    if not options:
        raise _NotUnderstood
    return min(options, key=lambda d: (abs((d - today).days), d < today))


def _next_day_of_month(today: date, day: int) -> date:
    """3号: this month's if still to come (today included), else next month's."""
    for months_ahead in range(3):  # 31号 may skip a month that has no 31st
        months = today.year * 12 + today.month - 1 + months_ahead
        try:
            candidate = date(months // 12, months % 12 + 1, day)
        except ValueError:
            continue
        if candidate >= today:
            return candidate
    raise _NotUnderstood


def _add_en_date(match: re.Match[str], reading: _Reading) -> bool:
    month, day = _EN_MONTH[match["mon"][:3]], int(match["d"])
    year = match["y"]
    reading.dates.append(_date(int(year), month, day) if year else _nearest(reading.today, month, day))
    return True


# ---------------------------------------------------------------- reading


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold().translate(_TRADITIONAL)
    return text.replace("’", "'")


# A number left over after the scan may be the real time, misread: 下午3点 第2个门, 8点三刻明天.
# (一点 alone is spared: 快一点 "a bit faster" is chatter.)
_UNPLACED = re.compile(r"[0-9]|[零〇二两三四五六七八九十]\s*[点时刻分号日月]|一\s*[时刻分号日月]")
# Day words behind us are refused as past, never dropped (昨天下午3点 is not today).
_PAST_DAY = re.compile(r"昨|前天|前儿|去年|上个?月|\byesterday\b|\blast\s+(?:year|month|night)\b")
# Day words left over after the scan (元旦, 春节, 过年, 下个月…): not understood, so the
# person is asked again instead of the word being dropped (元旦 3点 is not today at 3).
_UNREAD_DAY = re.compile(r"[天年节旦宵夕月]|\bnew\s*year|\bchristmas|\beaster|\bweek\b|\bmonth\b")


def _read(text: str, today: date) -> _Reading:
    reading = _Reading(today)
    text = _normalise(text)
    if len(text) > _MAX_TEXT:
        raise _NotUnderstood
    if _PAST_DAY.search(text):
        raise _InPast
    for pattern, build in _RULES:

        def consume(match: re.Match[str], build: _Build = build) -> str:
            return " " * len(match[0]) if build(match, reading) else match[0]

        text = pattern.sub(consume, text)
    if reading.empty() or _UNPLACED.search(text) or _UNREAD_DAY.search(text):
        raise _NotUnderstood
    return reading


# ---------------------------------------------------------------- resolving


@dataclass(frozen=True)
class _DayRule:
    fixed: date | None = None  # a known calendar day
    weekday: int | None = None  # else the next such weekday; neither = the next day that fits


def _day_rule(reading: _Reading) -> _DayRule:
    """All the day words must agree: 下周三 12月2日 is fine, 明天 后天 is not."""
    fixed = set(reading.dates)
    weekdays = set(reading.weekdays)
    if len(fixed) > 1 or len(weekdays) > 1:
        raise _NotUnderstood
    day = next(iter(fixed), None)
    weekday = next(iter(weekdays), None)
    if day is not None and weekday is not None:
        if day.weekday() != weekday:
            raise _NotUnderstood
        weekday = None
    return _DayRule(day, weekday)


def _hour_readings(hour: int) -> tuple[int, ...]:
    """What a written hour can mean on a 24-hour clock, 24+ being after midnight that night."""
    if 1 <= hour <= 12:
        return (hour % 12, hour % 12 + 12, hour % 12 + 24)
    if hour == 0:
        return (0, 24)
    return (hour,)


def _with_period(hour: int, period: _Period) -> int:
    for reading in _hour_readings(hour):
        if reading in _WINDOWS[period]:
            return reading
    raise _NotUnderstood  # 上午15点


def _bare_hours(clock: _Clock) -> list[int]:
    """An hour with no period word, likelier reading first."""
    hour = clock.hour
    if not clock.plain or hour == 0 or hour >= 12:
        return [hour]
    if hour <= 6:
        return [hour + 12, hour]  # rides at 3 are rarely at 3 in the night
    return [hour, hour + 12]


def _times_of_day(reading: _Reading) -> tuple[list[int], bool]:
    """Minutes after the day's midnight, likelier first, and whether we filled in a default.

    An empty list means no time was given.
    """
    periods = reading.periods
    if len(reading.clocks) > 1:
        raise _NotUnderstood  # 3点到5点
    if not reading.clocks:
        if periods == {_Period.NOON}:
            return [12 * 60], False
        if periods == {_Period.MIDNIGHT}:
            return [24 * 60], False
        if periods == {_Period.MORNING}:
            return [MORNING_DEFAULT], True
        return [], False
    clock = reading.clocks[0]
    if clock.hour > 24 or clock.minute >= 60 or (clock.hour == 24 and clock.minute):
        raise _NotUnderstood
    if periods:
        hours = {_with_period(clock.hour, period) for period in periods}
        if len(hours) > 1:
            raise _NotUnderstood  # 9am tonight
        return [hours.pop() * 60 + clock.minute], False
    candidates = [hour * 60 + clock.minute for hour in _bare_hours(clock)]
    return candidates, False


def _at(day: date, minutes: int) -> datetime:
    return datetime.combine(day, time(), tzinfo=SHANGHAI) + timedelta(minutes=minutes)


def _instant(rule: _DayRule, minutes: int, now: datetime) -> datetime:
    """The day comes from the rule; a free day is the first whose time is still ahead."""
    if rule.fixed is not None:
        return _at(rule.fixed, minutes)
    # Yesterday too: 晚上1点 typed at 00:30 is yesterday evening's 1 o'clock, half an hour away.
    days = [now.date() + timedelta(days=offset) for offset in range(-1, 8)]
    options = [_at(day, minutes) for day in days if rule.weekday in (None, day.weekday())]
    return next((t for t in options if t >= now - GRACE), options[-1])


@dataclass(frozen=True)
class _Window:
    now: datetime
    earliest: datetime
    latest: datetime

    def verdict(self, when: datetime) -> TimeError | None:
        if when < self.earliest:
            return TimeError.IN_PAST
        if when > self.latest:
            return TimeError.TOO_FAR
        return None


def _day_only(rule: _DayRule, window: _Window) -> TimeError:
    """A day but no hour: ask for the hour, but say so if no hour of that day could work."""
    if rule.fixed is not None:
        if _at(rule.fixed, 24 * 60) <= window.earliest:
            return TimeError.IN_PAST
        if _at(rule.fixed, 0) > window.latest:
            return TimeError.TOO_FAR
    return TimeError.NEEDS_HOUR


def _pick(instants: list[datetime], guessed: bool, window: _Window) -> ParsedTime | TimeError:
    """The likelier reading decides; the other is offered only if it is bookable."""
    error = window.verdict(instants[0])
    if error is not None:
        return error
    others = [t for t in instants[1:] if window.verdict(t) is None]
    alternative = max(others[0], window.now) if others else None
    ambiguous = guessed or len(instants) > 1
    return ParsedTime(max(instants[0], window.now), ambiguous, alternative)


def _resolve(reading: _Reading, window: _Window) -> ParsedTime | TimeError:
    if reading.now or reading.after:
        # "now" and "in 30 minutes" stand alone: 明天半小时后 is not a time.
        alone = len(reading.after) + reading.now == 1 and not (
            reading.dates or reading.weekdays or reading.clocks or reading.periods
        )
        if not alone:
            raise _NotUnderstood
        return _pick([window.now + sum(reading.after, timedelta())], False, window)
    rule = _day_rule(reading)
    minutes, guessed = _times_of_day(reading)
    if not minutes:
        return _day_only(rule, window)
    return _pick([_instant(rule, m, window.now) for m in minutes], guessed, window)


def parse_when(
    text: str,
    *,
    now: datetime,
    max_ahead: timedelta = timedelta(days=30),
    min_lead: timedelta = timedelta(minutes=0),
) -> ParsedTime | TimeError:
    """Read when a ride should happen from what the person typed (see the module docstring)."""
    local_now = now.astimezone(SHANGHAI)
    window = _Window(local_now, local_now + min_lead - GRACE, local_now + max_ahead)
    try:
        return _resolve(_read(text, local_now.date()), window)
    except _NotUnderstood:
        return TimeError.NOT_UNDERSTOOD
    except _InPast:
        return TimeError.IN_PAST
    except OverflowError:  # 9999 days ahead runs off the calendar
        return TimeError.TOO_FAR


# ---------------------------------------------------------------- saying it back

_ZH_WEEKDAY = "一二三四五六日"
_ZH_NEAR = {0: "今天", 1: "明天", 2: "后天"}
_EN_NEAR = {0: "today", 1: "tomorrow", 2: "the day after tomorrow"}
_EN_WEEKDAY_NAME = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_EN_MONTH_NAME = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def describe(when: datetime, *, now: datetime, lang: str) -> str:
    """The understood time, for confirmation: 明天（11月28日 周六）下午3:00 / tomorrow (Sat 28 Nov) 3:00 pm.

    Today, tomorrow and the day after are named, other days by weekday; the year
    appears only when it is not the current one. Unknown languages get Chinese.
    """
    local = when.astimezone(SHANGHAI)
    today = now.astimezone(SHANGHAI).date()
    days = (local.date() - today).days
    show_year = local.year != today.year
    if lang == "en":
        return _describe_en(local, days, show_year)
    return _describe_zh(local, days, show_year)


def _describe_zh(local: datetime, days: int, show_year: bool) -> str:
    day = f"{local.year}年" if show_year else ""
    day += f"{local.month}月{local.day}日"
    weekday = f"周{_ZH_WEEKDAY[local.weekday()]}"
    if days in _ZH_NEAR:
        return f"{_ZH_NEAR[days]}（{day} {weekday}）{_zh_clock(local)}"
    return f"{weekday}（{day}）{_zh_clock(local)}"


def _zh_clock(local: datetime) -> str:
    hour = local.hour
    if hour < 6:
        word, shown = "凌晨", hour
    elif hour < 12:
        word, shown = "上午", hour
    elif hour < 13:
        word, shown = "中午", hour
    elif hour < 18:
        word, shown = "下午", hour - 12
    else:
        word, shown = "晚上", hour - 12
    return f"{word}{shown}:{local.minute:02d}"


def _describe_en(local: datetime, days: int, show_year: bool) -> str:
    day = f"{local.day} {_EN_MONTH_NAME[local.month - 1]}" + (f" {local.year}" if show_year else "")
    weekday = _EN_WEEKDAY_NAME[local.weekday()]
    if days in _EN_NEAR:
        return f"{_EN_NEAR[days]} ({weekday[:3]} {day}) {_en_clock(local)}"
    return f"{weekday} ({day}) {_en_clock(local)}"


def _en_clock(local: datetime) -> str:
    if (local.hour, local.minute) == (12, 0):
        return "12:00 noon"
    if (local.hour, local.minute) == (0, 0):
        return "12:00 midnight"
    suffix = "am" if local.hour < 12 else "pm"
    return f"{local.hour % 12 or 12}:{local.minute:02d} {suffix}"
