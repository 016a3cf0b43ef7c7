"""When each person last wrote, per channel, and the options they were last offered.

Some channels only let Linli write to a person for a while after that person's last
message (WeChat's customer-service window: 48 hours). Those channels record every
contact here, check the window before sending, and hand back the messages they had to
keep once the person writes again. Channels without buttons (WeChat) also keep the
numbered options they showed last, so "2" means the same after a restart or on
another worker.

Rows are keyed by the user id and hold no platform id, name or typed text: only a
time and the options' button data. /forget leaves nothing personal here.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Column, Text, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from storage.dialect import changed_count, upsert_insert
from storage.engine import QUEUED
from storage.models import OutboxMessage, User, utcnow


class ChannelContact(SQLModel, table=True):
    __tablename__ = "channel_contacts"

    user_id: int = Field(primary_key=True, foreign_key="users.id")
    # The person's last message or event (UTC); None until they write.
    last_inbound_at: datetime | None = None
    # JSON list of the button data of the numbered options last shown ("1" is the first).
    choices: str = Field(default="[]", sa_column=Column(Text, nullable=False, server_default="[]"))
    updated_at: datetime = Field(default_factory=utcnow)


async def touch(session: AsyncSession, *, user_id: int, at: datetime) -> None:
    """The person wrote (or clicked, or followed) at ``at``."""
    stmt = upsert_insert(session, ChannelContact).values(
        user_id=user_id, last_inbound_at=at, choices="[]", updated_at=utcnow()
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["user_id"], set_={"last_inbound_at": at, "updated_at": utcnow()}
    )
    await session.execute(stmt)


async def set_choices(session: AsyncSession, *, user_id: int, choices: list[str]) -> None:
    """Remember the button data of the numbered options just shown to the person."""
    raw = json.dumps(choices, ensure_ascii=False, separators=(",", ":"))
    stmt = upsert_insert(session, ChannelContact).values(user_id=user_id, choices=raw, updated_at=utcnow())
    stmt = stmt.on_conflict_do_update(
        index_elements=["user_id"], set_={"choices": raw, "updated_at": utcnow()}
    )
    await session.execute(stmt)


async def choices_of(session: AsyncSession, *, user_id: int) -> list[str]:
    raw = (
        await session.execute(
            select(col(ChannelContact.choices)).where(col(ChannelContact.user_id) == user_id)
        )
    ).scalar_one_or_none()
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


async def last_inbound(session: AsyncSession, *, channel: str, chat_id: str) -> datetime | None:
    """When the person behind this private chat last wrote, or None if never (or unknown)."""
    stmt = (
        select(col(ChannelContact.last_inbound_at))
        .join(User, col(User.id) == col(ChannelContact.user_id))
        .where(col(User.channel) == channel, col(User.chat_id) == chat_id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def release_held(
    session: AsyncSession, *, channel: str, chat_id: str, now: datetime, up_to: datetime
) -> int:
    """The person wrote again: their messages put off until no later than ``up_to`` (kept
    ones, and those waiting in order behind them) are due now. Later ones keep their time."""
    released = await changed_count(
        session,
        update(OutboxMessage)
        .where(
            col(OutboxMessage.channel) == channel,
            col(OutboxMessage.chat_id) == chat_id,
            col(OutboxMessage.status) == "pending",
            col(OutboxMessage.not_before) > now,
            col(OutboxMessage.not_before) <= up_to,
        )
        .values(not_before=now),
    )
    if released:
        session.info[QUEUED] = True
    return released


async def waiting_kinds(session: AsyncSession, *, channel: str, chat_id: str) -> list[tuple[int, str, str]]:
    """(id, kind, payload) of the messages waiting for this chat, oldest first."""
    stmt = (
        select(col(OutboxMessage.id), col(OutboxMessage.kind), col(OutboxMessage.payload))
        .where(
            col(OutboxMessage.channel) == channel,
            col(OutboxMessage.chat_id) == chat_id,
            col(OutboxMessage.status) == "pending",
        )
        .order_by(col(OutboxMessage.not_before), col(OutboxMessage.id))
        .limit(100)
    )
    return [(int(i or 0), str(k), str(p)) for i, k, p in (await session.execute(stmt)).all()]
