"""Community names typed after a command (/bind_driver_group 春和 青和居 …), shared by
the features that bind a chat to some communities."""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

from storage import communities

# Names are separated by spaces or any of the commas and semicolons people type.
SEPARATORS = re.compile(r"[\s,，、;；]+")
MAX_NAMES = 20


def split_names(text: str) -> list[str]:
    return [n for n in SEPARATORS.split(text.strip()) if n]


async def communities_named(session: AsyncSession, names: list[str]) -> tuple[dict[int, str], list[str]]:
    """(found community id → name, names that match none) for what was typed."""
    found: dict[int, str] = {}
    unknown: list[str] = []
    for name in names[:MAX_NAMES]:
        matches = await communities.search_communities(session, name, limit=1)
        if matches:
            found[matches[0].id] = matches[0].name
        else:
            unknown.append(name[:30])
    return found, unknown
