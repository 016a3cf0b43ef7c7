"""Urgent triage: words about violence, threats or self-harm get emergency numbers at
once, before any FAQ answer. Better a needless emergency note than a missed one, so
the phrases are broad; they are phrases, not single characters ("打工" is no violence).
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum


class Urgent(StrEnum):
    VIOLENCE = "violence"
    SELF_HARM = "self_harm"


_SELF_HARM_ZH = (
    "自杀", "想死", "不想活", "活不下去", "轻生", "寻死", "跳楼", "割腕", "吃安眠药", "结束生命",
    "了结自己", "一死了之", "去死",
)  # fmt: skip
_VIOLENCE_ZH = (
    "家暴", "打我", "被打", "殴打", "打伤", "掐我", "砍我", "拿刀", "动刀", "杀了我", "要杀", "杀人",
    "威胁", "恐吓", "要弄死", "弄死我", "绑架", "囚禁", "关起来不让", "强奸", "性侵", "猥亵",
    "跟踪我", "报复我", "泼硫酸", "放火", "正在打", "打孩子", "虐待",
)  # fmt: skip
_SELF_HARM_EN = (
    r"suicid\w*", r"kill (myself|me)", r"end (my|it all)", r"want to die", r"hurt myself", r"self[- ]harm",
    r"don'?t want to live",
)  # fmt: skip
_VIOLENCE_EN = (
    r"beat(s|ing)? me", r"hit(s|ting)? me", r"hurt(s|ing)? me", r"threat\w*", r"kill", r"knife",
    r"domestic violence", r"abus\w*", r"rape\w*", r"kidnap\w*", r"stalk\w*", r"violen\w*", r"attack\w*",
)  # fmt: skip

_EN_SELF = re.compile(r"\b(" + "|".join(_SELF_HARM_EN) + r")\b")
_EN_VIOLENCE = re.compile(r"\b(" + "|".join(_VIOLENCE_EN) + r")\b")


def triage(text: str) -> Urgent | None:
    """Self-harm first (it needs a different number), then violence; None otherwise."""
    plain = unicodedata.normalize("NFKC", text).lower()
    compact = re.sub(r"\s+", "", plain)
    if any(p in compact for p in _SELF_HARM_ZH) or _EN_SELF.search(plain):
        return Urgent.SELF_HARM
    if any(p in compact for p in _VIOLENCE_ZH) or _EN_VIOLENCE.search(plain):
        return Urgent.VIOLENCE
    return None
