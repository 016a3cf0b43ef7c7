"""Matching a typed question to FAQ entries, Chinese-aware, with rapidfuzz.

Chinese has no spaces, and word segmenters either go unmaintained or need dictionaries
that miss legal words, so Chinese text is read as character bigrams (plus single
characters at a lower weight), English as words. Each entry's question variants and
keywords make its "document"; a query scores by how much of its (IDF-weighted) grams an
entry covers, blended with rapidfuzz's best partial match against a variant, so word
order and small slips cost little. The score (0–100) is shown as the confidence.
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz

from dialogs.legal.kb import Entry

# Below this the best entry is a guess: the person is offered a lawyer instead.
THRESHOLD = 45.0
TOP = 3

_CJK = re.compile(r"[\u3400-\u9fff]")
_NOISE = re.compile(r"[^\w\u3400-\u9fff]+")
# Words that carry no topic: asking, hedging, particles.
_ZH_FILLER = (
    "怎么办",
    "怎么样",
    "怎么",
    "如何",
    "请问",
    "我想问",
    "想问",
    "问一下",
    "一下",
    "是不是",
    "有没有",
    "能不能",
    "可不可以",
    "可以吗",
    "应该",
    "需要",
    "什么",
    "吗",
    "呢",
    "吧",
    "啊",
    "呀",
    "嘛",
    "了",
    "的",
    "我",
    "你",
    "他",
    "她",
    "们",
    "这",
    "那",
    "个",
)
_EN_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "he",
        "she",
        "it",
        "they",
        "them",
        "his",
        "her",
        "its",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "am",
        "do",
        "does",
        "did",
        "can",
        "could",
        "should",
        "would",
        "will",
        "what",
        "how",
        "who",
        "whom",
        "which",
        "when",
        "where",
        "why",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "with",
        "by",
        "from",
        "and",
        "or",
        "but",
        "if",
        "so",
        "not",
        "no",
        "any",
        "some",
        "this",
        "that",
        "these",
        "there",
        "have",
        "has",
        "had",
        "get",
        "got",
        "about",
        "as",
        "into",
        "out",
        "up",
    ]
)
_UNIGRAM_WEIGHT = 0.3
_COVERAGE_WEIGHT = 0.7


def _plain(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def _zh_core(text: str) -> str:
    core = _NOISE.sub("", _plain(text))
    for filler in _ZH_FILLER:
        core = core.replace(filler, "")
    return core


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _en_words(text: str) -> list[str]:
    return [_stem(w) for w in re.findall(r"[a-z0-9']+", _plain(text)) if w not in _EN_STOP]


def _weights(text: str) -> dict[str, float]:
    """Gram → weight for a query (single Chinese characters count less)."""
    core = _zh_core(text)
    weights: dict[str, float] = {}
    for run in re.findall(r"[\u3400-\u9fff]+", core):
        for char in run:
            weights.setdefault(char, _UNIGRAM_WEIGHT)
        for i in range(len(run) - 1):
            weights[run[i : i + 2]] = 1.0
    words = _en_words(text)
    for word in words:
        weights[word] = 1.0
    for a, b in itertools.pairwise(words):
        weights[f"{a} {b}"] = 1.0
    return weights


@dataclass(frozen=True, slots=True)
class Hit:
    entry: Entry
    score: float  # 0–100, shown as the confidence


class Index:
    def __init__(self, entries: Iterable[Entry]) -> None:
        self.entries = tuple(entries)
        self._grams: list[set[str]] = []
        self._variants: list[tuple[list[str], list[str]]] = []
        df: Counter[str] = Counter()
        for entry in self.entries:
            texts = [*entry.q_zh, *entry.q_en, *entry.keywords]
            bag: set[str] = set()
            for text in texts:
                bag |= set(_weights(text))
            self._grams.append(bag)
            df.update(bag)
            zh = [_zh_core(t) for t in (*entry.q_zh, *entry.keywords) if _CJK.search(t)]
            en = [" ".join(_en_words(t)) for t in (*entry.q_en, *entry.keywords) if not _CJK.search(t)]
            self._variants.append(([v for v in zh if v], [v for v in en if v]))
        n = max(len(self.entries), 1)
        self._idf = {g: math.log(1 + n / c) for g, c in df.items()}
        self._unknown_idf = math.log(1 + n)

    def search(self, text: str, *, top: int = TOP) -> list[Hit]:
        query = _weights(text[:300])
        if not query:
            return []
        total = sum(w * self._idf.get(g, self._unknown_idf * 0.3) for g, w in query.items())
        # A query of one or two characters ("你好") says too little to be sure of anything.
        pairs = sum(1 for g in query if len(g) > 1)
        substance = min(1.0, (pairs + 0.5) / 2) if pairs else 0.0
        is_zh = bool(_CJK.search(text))
        core = _zh_core(text[:300]) if is_zh else " ".join(_en_words(text[:300]))
        hits = []
        for i, entry in enumerate(self.entries):
            bag = self._grams[i]
            covered = sum(w * self._idf[g] for g, w in query.items() if g in bag)
            coverage = covered / total if total else 0.0
            zh, en = self._variants[i]
            if is_zh:
                similar = max((fuzz.partial_ratio(core, v) if len(v) >= 2 else 0.0 for v in zh), default=0.0)
            else:
                similar = max((fuzz.token_set_ratio(core, v) for v in en), default=0.0)
            score = substance * 100 * (_COVERAGE_WEIGHT * coverage + (1 - _COVERAGE_WEIGHT) * similar / 100)
            hits.append(Hit(entry, round(score, 1)))
        hits.sort(key=lambda h: -h.score)
        return hits[:top]


@lru_cache(maxsize=4)
def index_for(entries: tuple[Entry, ...]) -> Index:
    """Built once per version of the FAQ (entries are immutable, so they are the key)."""
    return Index(entries)
