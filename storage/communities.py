"""Communities and buildings, with fuzzy search by Chinese name or pinyin."""

from __future__ import annotations

import re

from pypinyin import Style, lazy_pinyin
from rapidfuzz import fuzz
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.data import BuildingData, CommunityData
from storage.models import Building, Community

_NOISE = re.compile(r"[\s\-_·,，.。'’]+")
# Suffixes that every community shares; matching on them would make all equal.
_SUFFIXES = ("社区居委会", "社区", "小区", "居委会")


def pinyin_keys(name: str) -> str:
    """Full pinyin and initials, e.g. 春和社区 → "chunheshequ chsq"."""
    syllables = lazy_pinyin(name)
    initials = lazy_pinyin(name, style=Style.FIRST_LETTER)
    return f"{''.join(syllables)} {''.join(initials)}".lower()


def _core(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _normalise(query: str) -> str:
    return _NOISE.sub("", query).lower()


async def add_community(
    session: AsyncSession,
    *,
    name: str,
    district: str = "",
    street: str = "",
    buildings: list[str] | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    name_en: str = "",
    phone: str = "",
) -> CommunityData:
    """Create a community (or return the existing one of that name) with its buildings."""
    row = (await session.execute(select(Community).where(col(Community.name) == name))).scalar_one_or_none()
    if row is None:
        row = Community(
            name=name,
            pinyin=pinyin_keys(_core(name)),
            district=district,
            street=street,
            latitude=latitude,
            longitude=longitude,
            name_en=name_en,
            phone=phone,
        )
        session.add(row)
        await session.flush()
    elif (name_en and not row.name_en) or (phone and not row.phone):
        # Demo data loaded by an older version: fill in what it lacked, keep staff's edits.
        row.name_en = row.name_en or name_en
        row.phone = row.phone or phone
        await session.flush()
    assert row.id is not None
    existing = set(
        (
            await session.execute(select(col(Building.name)).where(col(Building.community_id) == row.id))
        ).scalars()
    )
    for building in buildings or []:
        if building not in existing:
            session.add(Building(community_id=row.id, name=building))
            existing.add(building)
    await session.flush()
    return _data(row)


def _data(row: Community) -> CommunityData:
    return CommunityData(
        id=row.id or 0,
        name=row.name,
        district=row.district,
        street=row.street,
        latitude=row.latitude,
        longitude=row.longitude,
        name_en=row.name_en,
        phone=row.phone,
    )


async def get_community(session: AsyncSession, community_id: int) -> CommunityData | None:
    row = await session.get(Community, community_id)
    return None if row is None else _data(row)


async def list_communities(session: AsyncSession) -> list[CommunityData]:
    rows = (await session.execute(select(Community).order_by(col(Community.id)))).scalars()
    return [_data(r) for r in rows]


async def search_communities(
    session: AsyncSession, query: str, *, limit: int = 5, cutoff: float = 60.0
) -> list[CommunityData]:
    """Best matches for what a person typed: Chinese name, part of it, or pinyin."""
    q = _normalise(query)
    if not q:
        return []
    rows = list((await session.execute(select(Community))).scalars())
    if q.isascii():
        # Pinyin: compare against full syllables and initials separately.
        choices = {i: r.pinyin.split() for i, r in enumerate(rows)}
        scored = []
        for i, keys in choices.items():
            best = max(
                [fuzz.ratio(q, k) for k in keys]
                + [100.0 if k.startswith(q) and len(q) >= 2 else 0.0 for k in keys]
                + [fuzz.partial_ratio(q, keys[0]) if len(q) >= 4 else 0.0]
            )
            scored.append((best, i))
    else:
        names = [_normalise(r.name) for r in rows]
        cores = [_normalise(_core(r.name)) for r in rows]
        scored = []
        for i in range(len(rows)):
            exact = 100.0 if q in (names[i], cores[i]) else 0.0
            contained = 95.0 if _core(q) and _core(q) in names[i] else 0.0
            scored.append((max(exact, contained, fuzz.WRatio(_core(q), cores[i])), i))
    scored.sort(key=lambda s: (-s[0], s[1]))
    result = []
    for score, i in scored[:limit]:
        if score < cutoff:
            break
        result.append(_data(rows[i]))
    return result


async def list_buildings(session: AsyncSession, community_id: int) -> list[BuildingData]:
    rows = (
        await session.execute(
            select(Building).where(col(Building.community_id) == community_id).order_by(col(Building.id))
        )
    ).scalars()
    return [BuildingData(id=r.id or 0, community_id=r.community_id, name=r.name) for r in rows]


async def get_building(session: AsyncSession, building_id: int) -> BuildingData | None:
    row = await session.get(Building, building_id)
    if row is None:
        return None
    return BuildingData(id=row.id or 0, community_id=row.community_id, name=row.name)


# "3", "3栋", "3号楼", "西区6栋", "building 3": an optional zone, a number, a building word.
_BUILDING = re.compile(r"(?P<zone>[^\d]{0,6}?)(?P<num>\d{1,4})(?:栋|号楼|幢|号|座|楼)?")
_BUILDING_EN = re.compile(r"(?:building|bldg\.?|block|no\.?)\s*(?P<num>\d{1,4})")
# Longer than this is a sentence, not a building; markup is never an answer to pick from.
_MAX_BUILDING_TEXT = 20
_MARKUP = re.compile(r"[<>*`\[\]{}|#_~\\/=]")


def _number_of(name: str) -> tuple[str, int] | None:
    found = _BUILDING.fullmatch(_normalise(name))
    return (found["zone"], int(found["num"])) if found else None


def match_buildings(buildings: list[BuildingData], text: str) -> list[BuildingData]:
    """The buildings a typed answer can mean: one when it is clear, several when the
    community has more than one (东区3栋 and 西区3栋 for "3栋"), none when unsure.

    The number must be the building's own ("0" is not 10栋) and a zone typed must be the
    building's zone ("西区6栋" never means 东区6栋). Long sentences and markup are refused
    rather than searched for a number."""
    raw = text.strip()
    if not raw or len(raw) > _MAX_BUILDING_TEXT or _MARKUP.search(raw):
        return []
    q = _normalise(raw)
    exact = [b for b in buildings if _normalise(b.name) == q]
    if exact:
        return exact
    english = _BUILDING_EN.fullmatch(q)
    typed = ("", int(english["num"])) if english else _number_of(q)
    if typed is None:
        return []
    zone, number = typed
    found = []
    for b in buildings:
        own = _number_of(b.name)
        if (
            own is not None
            and own[1] == number
            and (not zone or zone in own[0] or (own[0] in zone and own[0]))
        ):
            found.append(b)
    return found


def match_building(buildings: list[BuildingData], text: str) -> BuildingData | None:
    """The one building a typed answer clearly means, if it is one (see match_buildings)."""
    found = match_buildings(buildings, text)
    return found[0] if len(found) == 1 else None
