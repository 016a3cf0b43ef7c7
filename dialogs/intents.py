"""Free-text routing: "我要打车", "井盖坏了", "I need a ride" → the flow that serves it.

Phrases live here, per service, in both languages. A service whose flow is not
installed yet still gets recognised, so the person hears that it is coming rather
than "I don't understand".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz

_NOISE = re.compile(r"[\s,.!?;:'\"，。！？；：、…~～（）()\[\]【】]+")


@dataclass(frozen=True, slots=True)
class Intent:
    target: str  # a flow name or a command name
    phrases: tuple[str, ...]


INTENTS: tuple[Intent, ...] = (
    Intent(
        "ride",
        (
            "我要打车",
            "打车",
            "打个车",
            "叫车",
            "叫个车",
            "约车",
            "用车",
            "坐车",
            "要车",
            "接我",
            "送我去医院",
            "去医院",
            "预约车",
            "我要坐车",
            "i need a ride",
            "need a ride",
            "book a ride",
            "ride",
            "taxi",
            "need a car",
            "pick me up",
            "take me to hospital",
            "book a car",
        ),
    ),
    Intent(
        "report",
        (
            "井盖坏了",
            "井盖",
            "井盖丢了",
            "路灯坏了",
            "路灯",
            "随手拍",
            "报修",
            "隐患",
            "坑",
            "路面坑洼",
            "漏水",
            "积水",
            "垃圾",
            "举报问题",
            "反映问题",
            "树倒了",
            "电线",
            "report a problem",
            "report",
            "hazard",
            "manhole",
            "pothole",
            "broken streetlight",
            "street light",
            "something is broken",
            "leak",
            "flooding",
        ),
    ),
    Intent(
        "stations",
        (
            "找驿站",
            "驿站",
            "休息",
            "歇脚",
            "喝水",
            "充电",
            "热饭",
            "微波炉",
            "厕所",
            "户外工作者驿站",
            "小哥食堂",
            "司机之家",
            "附近驿站",
            "rest station",
            "find a station",
            "stations",
            "rest",
            "water",
            "charge my phone",
            "microwave",
            "toilet",
            "where can i rest",
        ),
    ),
    Intent(
        "legal",
        (
            "法律咨询",
            "法律",
            "律师",
            "咨询律师",
            "工资拖欠",
            "拖欠工资",
            "欠薪",
            "不发工资",
            "工伤",
            "劳动合同",
            "纠纷",
            "离婚",
            "继承",
            "赡养",
            "维权",
            "春芽小站",
            "法律明白人",
            "legal advice",
            "legal",
            "lawyer",
            "unpaid wages",
            "injury at work",
            "contract",
            "dispute",
            "divorce",
            "inheritance",
        ),
    ),
    Intent("notice", ("发通知", "通知", "公告", "send a notice", "notice", "announcement")),
    Intent(
        "driver",
        (
            "我想当司机",
            "当志愿司机",
            "申请司机",
            "志愿者司机",
            "我是司机",
            "become a driver",
            "volunteer driver",
            "i want to drive",
            "apply as driver",
        ),
    ),
    Intent(
        "lawyer",
        (
            "我是律师",
            "申请律师",
            "志愿律师",
            "律师志愿者",
            "i am a lawyer",
            "volunteer lawyer",
            "apply as lawyer",
        ),
    ),
    Intent("language", ("语言", "切换语言", "换成英文", "换成中文", "english", "中文", "language")),
    Intent("mydata", ("我的数据", "我的信息", "my data", "what do you know about me")),
    Intent("help", ("帮助", "菜单", "你能做什么", "怎么用", "help", "menu", "what can you do")),
)

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


def match(text: str, intents: tuple[Intent, ...] = INTENTS) -> str | None:
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
