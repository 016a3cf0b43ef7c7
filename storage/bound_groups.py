"""Group chats bound to a purpose: the driver groups rides are posted to
(storage/rides.py) and the staff groups reports go to (storage/reports.py).

Each purpose keeps its own table (rides and reports point at their group by id), but
the columns and the code that binds, finds, moves and unbinds a group are the same,
so they live here once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from storage.dialect import changed_one
from storage.models import utcnow


class BoundGroup(SQLModel):
    """The columns every bound-group table has (not a table itself)."""

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    chat_id: str = Field(max_length=64)
    title: str = Field(default="", max_length=200)
    # Comma-separated community ids it serves; empty: every community (the fallback).
    communities: str = Field(default="", max_length=500)
    bound_by: int | None = Field(default=None, foreign_key="users.id")
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def community_ids(self) -> frozenset[int]:
        return frozenset(int(c) for c in self.communities.split(",") if c)


G = TypeVar("G", bound=BoundGroup)


async def bind(
    session: AsyncSession,
    table: type[G],
    *,
    channel: str,
    chat_id: str,
    title: str,
    community_ids: Sequence[int],
    bound_by: int,
) -> G:
    """Make a chat a group of this kind, or change which communities it serves."""
    row = (
        await session.execute(
            select(table).where(col(table.channel) == channel, col(table.chat_id) == chat_id)
        )
    ).scalar_one_or_none()
    if row is None:
        row = table(channel=channel, chat_id=chat_id)
        session.add(row)
    row.title = title[:200]
    row.communities = ",".join(str(c) for c in sorted(set(community_ids)))
    row.bound_by = bound_by
    row.active = True
    await session.flush()
    return row


async def unbind(session: AsyncSession, table: type[BoundGroup], *, channel: str, chat_id: str) -> bool:
    """Whether the chat was an active group of this kind (and is no longer)."""
    return await changed_one(
        session,
        update(table)
        .where(col(table.channel) == channel, col(table.chat_id) == chat_id, col(table.active))
        .values(active=False),
    )


async def by_chat(session: AsyncSession, table: type[G], *, channel: str, chat_id: str) -> G | None:
    """The active group of this kind held in this chat, if it is one."""
    stmt = select(table).where(
        col(table.channel) == channel, col(table.chat_id) == chat_id, col(table.active)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def move(session: AsyncSession, table: type[BoundGroup], *, group_id: int, chat_id: str) -> None:
    """The group's chat got a new id (a Telegram group upgraded to a supergroup)."""
    await session.execute(update(table).where(col(table.id) == group_id).values(chat_id=chat_id))


async def serving(session: AsyncSession, table: type[G], community_id: int | None) -> G | None:
    """The active group bound to a community; else the oldest one serving every community."""
    rows = list(
        (await session.execute(select(table).where(col(table.active)).order_by(col(table.id)))).scalars()
    )
    if community_id is not None:
        for row in rows:
            if community_id in row.community_ids:
                return row
    return next((row for row in rows if not row.communities), None)
