"""Reading ride times typed in Chinese or English, and saying them back.

Most tables use NOW = Friday 27 November 2026, 10:20 in Wuhan; LATE is 23:50 the
same evening, where "today if still ahead, else tomorrow" has to roll over.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialogs.timeparse import SHANGHAI, ParsedTime, TimeError, describe, parse_when

NOW = datetime(2026, 11, 27, 10, 20, tzinfo=SHANGHAI)
LATE = datetime(2026, 11, 27, 23, 50, tzinfo=SHANGHAI)
AFTER_MIDNIGHT = datetime(2026, 11, 28, 0, 30, tzinfo=SHANGHAI)
UTC = ZoneInfo("UTC")

NOT_UNDERSTOOD = TimeError.NOT_UNDERSTOOD
NEEDS_HOUR = TimeError.NEEDS_HOUR
IN_PAST = TimeError.IN_PAST
TOO_FAR = TimeError.TOO_FAR


def at(day: int, hour: int, minute: int = 0, month: int = 11, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def dec(day: int, hour: int, minute: int = 0) -> datetime:
    return at(day, hour, minute, month=12)


def sure(when: datetime) -> ParsedTime:
    return ParsedTime(when)


def guess(when: datetime, alternative: datetime | None = None) -> ParsedTime:
    return ParsedTime(when, ambiguous=True, alternative=alternative)


def test_the_fixed_now_is_a_friday() -> None:
    assert NOW.strftime("%A") == "Friday"
    assert dec(3, 0).strftime("%A") == "Thursday"


ZH_CASES: list[tuple[str, ParsedTime | TimeError]] = [
    # now and relative
    ("现在", sure(NOW)),
    ("马上", sure(NOW)),
    ("立刻走", sure(NOW)),
    ("半小时后", sure(at(27, 10, 50))),
    ("半个小时以后", sure(at(27, 10, 50))),
    ("30分钟后", sure(at(27, 10, 50))),
    ("过20分钟", sure(at(27, 10, 40))),
    ("两个小时后", sure(at(27, 12, 20))),
    ("一个半小时后", sure(at(27, 11, 50))),
    ("1小时30分钟之后", sure(at(27, 11, 50))),
    ("三天后上午9点", sure(at(30, 9))),
    # days and periods
    ("今天下午3点", sure(at(27, 15))),
    ("下午3点", sure(at(27, 15))),
    ("下午三点半", sure(at(27, 15, 30))),
    ("明天上午10点", sure(at(28, 10))),
    ("明天早上八点", sure(at(28, 8))),
    ("明早7点", sure(at(28, 7))),
    ("今晚8点", sure(at(27, 20))),
    ("明晚七点半", sure(at(28, 19, 30))),
    ("后天中午12点", sure(at(29, 12))),
    ("大后天下午两点", sure(at(30, 14))),
    ("中午", sure(at(27, 12))),
    ("明天中午", sure(at(28, 12))),
    ("中午1点", sure(at(27, 13))),
    ("凌晨5点", sure(at(28, 5))),  # today's 5:00 is gone
    ("明天凌晨四点", sure(at(28, 4))),
    ("傍晚6点", sure(at(27, 18))),
    ("晚上十点四十", sure(at(27, 22, 40))),
    ("今晚12点", sure(at(28, 0))),  # midnight closing tonight
    ("晚上1点", sure(at(28, 1))),  # the small hours after this evening
    ("半夜2点", sure(at(28, 2))),
    ("上午12点", sure(at(27, 12))),
    ("下午15点", sure(at(27, 15))),
    ("明天早上", guess(at(28, 9))),  # morning without an hour: 9:00, to be confirmed
    # minutes
    ("下午3点一刻", sure(at(27, 15, 15))),
    ("下午3点三刻", sure(at(27, 15, 45))),
    ("下午3点15分", sure(at(27, 15, 15))),
    ("下午3点15", sure(at(27, 15, 15))),
    ("晚上9点零五", sure(at(27, 21, 5))),
    ("下午3:30", sure(at(27, 15, 30))),
    ("15:30", sure(at(27, 15, 30))),
    ("15点", sure(at(27, 15))),
    ("十五点三十分", sure(at(27, 15, 30))),
    ("下午3点整", sure(at(27, 15))),
    ("下午3点钟", sure(at(27, 15))),
    # bare hours: 1–6 afternoon, 7–11 morning, each reading rolled to when it is next ahead
    ("3点", guess(at(27, 15), at(28, 3))),
    ("两点半", guess(at(27, 14, 30), at(28, 2, 30))),
    ("11点", guess(at(27, 11), at(27, 23))),
    ("10点", guess(at(28, 10), at(27, 22))),  # 10:00 went by twenty minutes ago
    ("九点一刻", guess(at(28, 9, 15), at(27, 21, 15))),
    ("十点四十", guess(at(27, 10, 40), at(27, 22, 40))),
    ("12点", sure(at(27, 12))),
    ("零点", sure(at(28, 0))),
    ("08:30", sure(at(28, 8, 30))),  # a leading zero is a 24-hour clock
    ("今天3点", guess(at(27, 15), None)),  # today's 3:00 in the night is past: nothing to offer
    # weekdays
    ("周五下午3点", sure(at(27, 15))),  # today is Friday and 15:00 is ahead
    ("周五早上8点", sure(dec(4, 8))),  # ...but 8:00 is past: next Friday
    ("星期一上午9点", sure(at(30, 9))),
    ("礼拜三下午2点", sure(dec(2, 14))),
    ("下周三下午2点", sure(dec(2, 14))),
    ("下个星期三下午2点", sure(dec(2, 14))),
    ("这周五晚上7点", sure(at(27, 19))),
    ("星期天上午10点", sure(at(29, 10))),
    ("周日上午10点", sure(at(29, 10))),
    ("下周日上午10点", sure(dec(6, 10))),
    ("下下周一上午9点", sure(dec(7, 9))),
    ("早上周三8点", sure(dec(2, 8))),  # 早上 is not 上周
    # dates
    ("12月3日上午10点", sure(dec(3, 10))),
    ("12月3号 上午10点", sure(dec(3, 10))),
    ("3号下午两点", sure(dec(3, 14))),
    ("十二月三日下午三点", sure(dec(3, 15))),
    ("2026年12月3日 下午3点", sure(dec(3, 15))),
    ("下个月3号上午9点", sure(dec(3, 9))),
    ("12月3日周四上午10点", sure(dec(3, 10))),  # the weekday agrees
    ("30号上午9点", sure(at(30, 9))),
    # leftovers that are not numbers are ignored
    ("下午3点去医院", sure(at(27, 15))),
    ("请明天上午十点来接我", sure(at(28, 10))),
    ("下午3点，快一点", sure(at(27, 15))),  # 快一点 is "hurry", not 1 o'clock
    # full width and traditional characters
    ("１５：３０", sure(at(27, 15, 30))),
    ("明天 下午３点", sure(at(28, 15))),
    ("明天下午3點", sure(at(28, 15))),
    ("兩點半", guess(at(27, 14, 30), at(28, 2, 30))),
]

ZH_REFUSED: list[tuple[str, ParsedTime | TimeError]] = [
    ("今天早上8点", IN_PAST),
    ("今天9点", IN_PAST),  # the likelier reading decides; 晚上9点 must be said
    ("这周四下午3点", IN_PAST),
    ("上周五下午3点", IN_PAST),
    ("11月26日下午3点", IN_PAST),  # yesterday's date, not next year's
    ("1999年1月1日上午9点", IN_PAST),
    ("明年3月1日上午9点", TOO_FAR),
    ("60天后下午3点", TOO_FAR),
    ("60天后", TOO_FAR),  # no hour, but no hour of that day would do
    ("12月30日上午10点", TOO_FAR),
    # A day without an hour: the hour is asked for (with buttons), never guessed.
    ("明天", NEEDS_HOUR),
    ("今天", NEEDS_HOUR),
    ("明天下午", NEEDS_HOUR),
    ("礼拜天", NEEDS_HOUR),
    ("大后天", NEEDS_HOUR),
    ("周五下午", NEEDS_HOUR),
    ("后儿", NEEDS_HOUR),
    # Issue 8: a word the parser does not understand is never dropped silently.
    ("昨天", IN_PAST),
    ("昨天下午3点", IN_PAST),  # was read as today 15:00
    ("前天", IN_PAST),
    ("前天上午9点", IN_PAST),
    ("去年", IN_PAST),
    ("元旦", NOT_UNDERSTOOD),
    ("元旦上午9点", NOT_UNDERSTOOD),  # was read as today 9:00
    ("春节", NOT_UNDERSTOOD),
    ("春节下午3点", NOT_UNDERSTOOD),
    ("后儿下午3点", sure(at(29, 15))),  # dialect 后儿 = 后天, was read as today
    ("后儿个上午9点", sure(at(29, 9))),
    # 晚7点 is 19:00 first; 早8点 8:00.
    ("晚7点", sure(at(27, 19))),
    ("明天晚7点", sure(at(28, 19))),
    ("明天早8点", sure(at(28, 8))),
    # 24-hour forms offer no am/pm alternative.
    ("14:00", sure(at(27, 14))),
    ("10:00", sure(at(28, 10))),  # today's 10:00 has passed
    ("明天10:00", sure(at(28, 10))),
    ("明天 08:30", sure(at(28, 8, 30))),
    ("", NOT_UNDERSTOOD),
    ("   ", NOT_UNDERSTOOD),
    ("你好", NOT_UNDERSTOOD),
    ("25点", NOT_UNDERSTOOD),
    ("下午3点70分", NOT_UNDERSTOOD),
    ("上午15点", NOT_UNDERSTOOD),
    ("2月30日上午10点", NOT_UNDERSTOOD),
    ("明天后天3点", NOT_UNDERSTOOD),
    ("3点到5点", NOT_UNDERSTOOD),
    ("明天半小时后", NOT_UNDERSTOOD),
    ("12月3日周五上午10点", NOT_UNDERSTOOD),  # 3 December is a Thursday
    ("快一点", NOT_UNDERSTOOD),
    ("明天早一点", NEEDS_HOUR),  # "a bit early tomorrow": which hour is asked, not guessed
    ("坐3号线", NOT_UNDERSTOOD),
    ("下午3点 第2个门", NOT_UNDERSTOOD),  # a number we could not place
    ("中午 三刻", NOT_UNDERSTOOD),
]

EN_CASES: list[tuple[str, ParsedTime | TimeError]] = [
    ("now", sure(NOW)),
    ("Right now please", sure(NOW)),
    ("asap", sure(NOW)),
    ("in 30 minutes", sure(at(27, 10, 50))),
    ("in 2 hours", sure(at(27, 12, 20))),
    ("in an hour", sure(at(27, 11, 20))),
    ("in half an hour", sure(at(27, 10, 50))),
    ("in an hour and a half", sure(at(27, 11, 50))),
    ("in 1.5 hours", sure(at(27, 11, 50))),
    ("in two hours", sure(at(27, 12, 20))),
    ("45 minutes from now", sure(at(27, 11, 5))),
    ("3pm", sure(at(27, 15))),
    ("3 PM", sure(at(27, 15))),
    ("3:30 pm", sure(at(27, 15, 30))),
    ("3:30 p.m.", sure(at(27, 15, 30))),
    ("15:30", sure(at(27, 15, 30))),
    ("at 9", guess(at(28, 9), at(27, 21))),
    ("at 3", guess(at(27, 15), at(28, 3))),
    ("at 10 o'clock", guess(at(28, 10), at(27, 22))),
    ("10 o’clock", guess(at(28, 10), at(27, 22))),
    ("half past 3", guess(at(27, 15, 30), at(28, 3, 30))),
    ("quarter to 10 tomorrow", guess(at(28, 9, 45), at(28, 21, 45))),
    ("9am tomorrow", sure(at(28, 9))),
    ("Tomorrow 9am", sure(at(28, 9))),
    ("tmrw 9am", sure(at(28, 9))),
    ("tomorrow at 9", guess(at(28, 9), at(28, 21))),
    ("tomorrow morning", guess(at(28, 9))),
    ("tomorrow morning at 8", sure(at(28, 8))),
    ("9 in the morning", sure(at(28, 9))),
    ("tonight at 8", sure(at(27, 20))),
    ("this evening at 7:30", sure(at(27, 19, 30))),
    ("at 7 in the evening", sure(at(27, 19))),
    ("today 5pm", sure(at(27, 17))),
    ("day after tomorrow 10am", sure(at(29, 10))),
    ("in 3 days at 9am", sure(at(30, 9))),
    ("noon", sure(at(27, 12))),
    ("tomorrow at 12 noon", sure(at(28, 12))),
    ("midnight", sure(at(28, 0))),
    ("monday 10am", sure(at(30, 10))),
    ("on Wednesday at 2:30pm", sure(dec(2, 14, 30))),
    ("sat 10am", sure(at(28, 10))),
    ("friday 3pm", sure(at(27, 15))),
    ("friday 8am", sure(dec(4, 8))),
    ("next friday 3pm", sure(dec(4, 15))),
    ("next monday 9am", sure(at(30, 9))),
    ("Dec 3 10am", sure(dec(3, 10))),
    ("3 December at 10:00", sure(dec(3, 10))),
    ("December 3rd at 2pm", sure(dec(3, 14))),
    ("the 3rd at 2pm", sure(dec(3, 14))),
    ("2026-12-03 15:30", sure(dec(3, 15, 30))),
    ("3pm tomorrow, to the hospital", sure(at(28, 15))),
    ("８ｐｍ", sure(at(27, 20))),
]

EN_REFUSED: list[tuple[str, ParsedTime | TimeError]] = [
    ("8am today", IN_PAST),
    ("this friday 9am", IN_PAST),
    ("in 60 days", TOO_FAR),
    ("Jan 5 2027 at 10am", TOO_FAR),
    ("asdf", NOT_UNDERSTOOD),
    ("tomorrow", NEEDS_HOUR),
    ("tonight", NEEDS_HOUR),
    ("friday afternoon", NEEDS_HOUR),
    ("yesterday 3pm", IN_PAST),
    ("last night", IN_PAST),
    ("new year's day 9am", NOT_UNDERSTOOD),
    ("christmas", NOT_UNDERSTOOD),
    ("at 25", NOT_UNDERSTOOD),
    ("13am", NOT_UNDERSTOOD),
    ("9am tonight", NOT_UNDERSTOOD),
    ("half to 3", NOT_UNDERSTOOD),
    ("I know", NOT_UNDERSTOOD),  # no "now" inside "know"
    ("feb 30 at 3pm", NOT_UNDERSTOOD),
]

# Late in the evening: "today if ahead, else tomorrow" rolls, and 明天 is hours away.
LATE_CASES: list[tuple[str, ParsedTime | TimeError]] = [
    ("明天", NEEDS_HOUR),
    ("后天", NEEDS_HOUR),
    ("明天早上", guess(at(28, 9))),
    ("明天早上8点", sure(at(28, 8))),
    ("3点", guess(at(28, 15), at(28, 3))),
    ("11点", guess(at(28, 11), at(28, 23))),
    ("半小时后", sure(at(28, 0, 20))),
    ("今晚11点", IN_PAST),
    ("今晚12点", sure(at(28, 0))),
    ("midnight", sure(at(28, 0))),
    ("周六上午10点", sure(at(28, 10))),
    ("周五晚上11点", sure(dec(4, 23))),
    ("23:49", sure(LATE)),  # a minute ago counts as now
    ("23:40", sure(at(28, 23, 40))),  # no day given: tomorrow's
    ("现在", sure(LATE)),
    ("tomorrow 9am", sure(at(28, 9))),
]

# Half past midnight: the evening that just ended is still "tonight" for 晚上1点.
AFTER_MIDNIGHT_CASES: list[tuple[str, ParsedTime | TimeError]] = [
    ("晚上1点", sure(at(28, 1))),
    ("周五晚上1点", sure(at(28, 1))),
    ("midnight", sure(at(29, 0))),
]


@pytest.mark.parametrize(("text", "expected"), ZH_CASES + ZH_REFUSED)
def test_chinese(text: str, expected: ParsedTime | TimeError) -> None:
    assert parse_when(text, now=NOW) == expected


@pytest.mark.parametrize(("text", "expected"), EN_CASES + EN_REFUSED)
def test_english(text: str, expected: ParsedTime | TimeError) -> None:
    assert parse_when(text, now=NOW) == expected


@pytest.mark.parametrize(("text", "expected"), LATE_CASES)
def test_late_evening(text: str, expected: ParsedTime | TimeError) -> None:
    assert parse_when(text, now=LATE) == expected


@pytest.mark.parametrize(("text", "expected"), AFTER_MIDNIGHT_CASES)
def test_after_midnight(text: str, expected: ParsedTime | TimeError) -> None:
    assert parse_when(text, now=AFTER_MIDNIGHT) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("现在", IN_PAST),  # too late to book a ride for right now
        ("10:40", IN_PAST),
        ("14:40", sure(at(27, 14, 40))),
        ("一个小时后", sure(at(27, 11, 20))),
    ],
)
def test_min_lead(text: str, expected: ParsedTime | TimeError) -> None:
    assert parse_when(text, now=NOW, min_lead=timedelta(minutes=30)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3号下午两点", TOO_FAR), ("明天下午3点", sure(at(28, 15))), ("in 3 days at 9am", TOO_FAR)],
)
def test_max_ahead(text: str, expected: ParsedTime | TimeError) -> None:
    assert parse_when(text, now=NOW, max_ahead=timedelta(days=2)) == expected


def test_now_in_another_zone_is_read_in_wuhan() -> None:
    utc_now = NOW.astimezone(UTC)  # 02:20 UTC
    result = parse_when("下午3点", now=utc_now)
    assert result == sure(at(27, 15))
    assert isinstance(result, ParsedTime)
    assert result.when.tzinfo == SHANGHAI
    assert result.when.hour == 15


DESCRIBE_CASES: list[tuple[datetime, str, str]] = [
    (at(28, 15), "zh", "明天（11月28日 周六）下午3:00"),
    (at(28, 15), "en", "tomorrow (Sat 28 Nov) 3:00 pm"),
    (at(27, 10, 20), "zh", "今天（11月27日 周五）上午10:20"),
    (at(27, 10, 20), "en", "today (Fri 27 Nov) 10:20 am"),
    (at(29, 10), "zh", "后天（11月29日 周日）上午10:00"),
    (at(29, 10), "en", "the day after tomorrow (Sun 29 Nov) 10:00 am"),
    (dec(3, 10), "zh", "周四（12月3日）上午10:00"),
    (dec(3, 10), "en", "Thursday (3 Dec) 10:00 am"),
    (at(27, 12), "zh", "今天（11月27日 周五）中午12:00"),
    (at(27, 12), "en", "today (Fri 27 Nov) 12:00 noon"),
    (at(27, 20, 5), "zh", "今天（11月27日 周五）晚上8:05"),
    (at(28, 0), "zh", "明天（11月28日 周六）凌晨0:00"),
    (at(28, 0), "en", "tomorrow (Sat 28 Nov) 12:00 midnight"),
    (at(28, 0, 30), "en", "tomorrow (Sat 28 Nov) 12:30 am"),
    (at(5, 9, year=2027, month=1), "zh", "周二（2027年1月5日）上午9:00"),
    (at(5, 9, year=2027, month=1), "en", "Tuesday (5 Jan 2027) 9:00 am"),
    (datetime(2026, 11, 28, 7, 0, tzinfo=UTC), "zh", "明天（11月28日 周六）下午3:00"),  # shown in Wuhan time
    (at(28, 15), "fr", "明天（11月28日 周六）下午3:00"),  # unknown language: Chinese
]


@pytest.mark.parametrize(("when", "lang", "expected"), DESCRIBE_CASES)
def test_describe(when: datetime, lang: str, expected: str) -> None:
    assert describe(when, now=NOW, lang=lang) == expected


def test_describe_reads_now_in_wuhan() -> None:
    """At 17:00 UTC on the 27th it is already the 28th in Wuhan: 15:00 on the 28th is today."""
    utc_now = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)
    assert describe(at(28, 15), now=utc_now, lang="en") == "today (Sat 28 Nov) 3:00 pm"


# ---------------------------------------------------------------- property: never raises, stays in range

_PIECES = [
    *"0123456789 :：１点半号日月年后天周",
    *["明天", "后天", "下午", "上午", "晚上", "凌晨", "中午", "半夜", "今晚", "明早", "下周", "星期", "礼拜"],
    *["十", "两", "一刻", "三刻", "个", "小时", "分钟", "分", "以后", "过", "2026-", "12/", "3号线"],
    *["at ", "in ", "pm", "am", "a.m.", "tomorrow", "tonight", "today", "noon", "midnight", "morning"],
    *["next ", "this ", "friday", "sun", "dec ", "3rd", "of ", "o'clock", "half past ", "quarter to "],
    *["minutes", "hours", "an hour", "days", "weeks", " and a half", "from now", "now", "现在"],
]
_texts = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(_PIECES), max_size=10).map("".join),
    st.lists(st.sampled_from(_PIECES), max_size=10).map(" ".join),
)
_nows = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([SHANGHAI, UTC, ZoneInfo("America/New_York")]),
)


@settings(max_examples=600, deadline=None, database=None)
@given(
    text=_texts,
    now=_nows,
    max_ahead=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)),
    min_lead=st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=3)),
)
def test_never_raises_and_stays_in_range(
    text: str, now: datetime, max_ahead: timedelta, min_lead: timedelta
) -> None:
    result = parse_when(text, now=now, max_ahead=max_ahead, min_lead=min_lead)
    if isinstance(result, TimeError):
        return
    # Bounds in UTC: adding to a New York wall clock across a DST change is not elapsed time.
    now_utc = now.astimezone(UTC)
    for when in (result.when, result.alternative):
        if when is None:
            continue
        assert when.tzinfo == SHANGHAI
        assert now_utc - timedelta(minutes=2) <= when <= now_utc + max_ahead
        assert describe(when, now=now, lang="zh")
        assert describe(when, now=now, lang="en")
    assert result.alternative is None or result.ambiguous
