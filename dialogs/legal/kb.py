"""The legal FAQ: entries shipped in knowledge.toml, replaced or added to by staff's
imports (stored in the database), validated the same way either way."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage import legal

TOPICS = (
    "wages",
    "contract",
    "injury",
    "traffic",
    "insurance",
    "property",
    "neighbour",
    "family",
    "inheritance",
    "elderly",
    "consumer",
    "rent",
)
WHERE = (
    "12348",
    "12333",
    "arbitration",
    "station",
    "court",
    "110",
    "122",
    "12315",
    "12345",
    "12338",
    "marriage_registry",
    "legal_aid",
)
_ID = re.compile(r"[a-z][a-z0-9_]{0,23}")
_TEXTS = ("answer_zh", "answer_en", "law_zh", "law_en")


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    topic: str
    q_zh: tuple[str, ...]
    q_en: tuple[str, ...]
    keywords: tuple[str, ...]
    answer_zh: str
    answer_en: str
    law_zh: str
    law_en: str
    where: tuple[str, ...]

    def title(self, lang: str) -> str:
        return (self.q_en if lang == "en" else self.q_zh)[0]

    def answer(self, lang: str) -> str:
        return self.answer_en if lang == "en" else self.answer_zh

    def law(self, lang: str) -> str:
        return self.law_en if lang == "en" else self.law_zh

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


class InvalidEntry(ValueError):
    pass


def _strings(raw: Any, name: str, *, required: bool) -> tuple[str, ...]:
    if raw is None and not required:
        return ()
    if not isinstance(raw, list) or not all(isinstance(s, str) and s.strip() for s in raw):
        raise InvalidEntry(f"{name} must be a list of non-empty strings")
    if required and not raw:
        raise InvalidEntry(f"{name} needs at least one item")
    return tuple(s.strip() for s in raw)


def parse_entry(raw: Mapping[str, Any]) -> Entry:
    """One entry from a file or the database; ``InvalidEntry`` says what is wrong."""
    entry_id = raw.get("id")
    if not isinstance(entry_id, str) or not _ID.fullmatch(entry_id):
        raise InvalidEntry(f"id {entry_id!r}: lower-case letters, digits and _, at most 24")
    topic = raw.get("topic")
    if topic not in TOPICS:
        raise InvalidEntry(f"{entry_id}: topic {topic!r} is not one of {', '.join(TOPICS)}")
    texts = {}
    for name in _TEXTS:
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip() or len(value) > 2000:
            raise InvalidEntry(f"{entry_id}: {name} must be text of 1 to 2000 characters")
        texts[name] = value.strip()
    where = _strings(raw.get("where"), f"{entry_id}: where", required=True)
    unknown = [w for w in where if w not in WHERE]
    if unknown:
        raise InvalidEntry(f"{entry_id}: where {unknown} not among {', '.join(WHERE)}")
    known = {"id", "topic", "q_zh", "q_en", "keywords", "where", *_TEXTS}
    extra = sorted(set(raw) - known)
    if extra:
        raise InvalidEntry(f"{entry_id}: unknown fields {extra}")
    return Entry(
        id=entry_id,
        topic=topic,
        q_zh=_strings(raw.get("q_zh"), f"{entry_id}: q_zh", required=True),
        q_en=_strings(raw.get("q_en"), f"{entry_id}: q_en", required=True),
        keywords=_strings(raw.get("keywords"), f"{entry_id}: keywords", required=False),
        where=where,
        **texts,
    )


def parse_file(text: str, *, name: str = "") -> list[Entry]:
    """Every entry of a TOML (``[[entry]]``) or JSON (a list, or {"entry": [...]}) file.
    All problems are reported at once."""
    try:
        data: Any = json.loads(text) if name.endswith(".json") else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise InvalidEntry(f"cannot read {name or 'the file'}: {exc}") from exc
    raw = data.get("entry", []) if isinstance(data, dict) else data
    if not isinstance(raw, list) or not raw:
        raise InvalidEntry("no entries found (expected [[entry]] tables)")
    entries, problems = [], []
    for n, item in enumerate(raw, 1):
        try:
            if not isinstance(item, dict):
                raise InvalidEntry("not a table")
            entries.append(parse_entry(item))
        except InvalidEntry as exc:
            problems.append(f"entry {n}: {exc}")
    ids = [e.id for e in entries]
    problems += [f"id {i!r} appears twice" for i in sorted({i for i in ids if ids.count(i) > 1})]
    if problems:
        raise InvalidEntry("\n".join(problems))
    return entries


@cache
def shipped() -> tuple[Entry, ...]:
    text = resources.files("dialogs.legal").joinpath("knowledge.toml").read_text("utf-8")
    return tuple(parse_file(text, name="knowledge.toml"))


def merge(base: Iterable[Entry], imported: Iterable[tuple[Entry, bool]]) -> tuple[Entry, ...]:
    """Shipped entries, replaced by imported ones with the same id (or hidden, when an
    import deactivated it), plus imported new ones."""
    by_id = {e.id: e for e in base}
    for entry, active in imported:
        if active:
            by_id[entry.id] = entry
        else:
            by_id.pop(entry.id, None)
    return tuple(by_id.values())


async def imported(session: AsyncSession) -> list[tuple[Entry, bool]]:
    out = []
    for _id, body, active in await legal.faq_entries(session):
        try:
            out.append((parse_entry(json.loads(body)), active))
        except (InvalidEntry, ValueError):
            continue  # validated on import; a row edited by hand by mistake is skipped
    return out


async def save(session: AsyncSession, entries: Iterable[Entry]) -> int:
    count = 0
    for entry in entries:
        await legal.save_faq_entry(session, entry_id=entry.id, body=entry.to_json())
        count += 1
    return count
