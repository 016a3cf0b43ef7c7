"""The persisted outbox: messages to people other than the one who just wrote.

Rows are written in the same transaction as the change that caused them, so a
crash either loses both or neither. The sender (scheduler/sender.py) delivers
them and records the outcome.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.dialect import changed_count, changed_one, upsert_insert
from storage.engine import QUEUED
from storage.models import OutboxMessage, utcnow

log = logging.getLogger("linli.outbox")


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    channel: str
    chat_id: str
    user_id: int | None
    payload: dict[str, Any]  # a dialogs.messages.Outgoing as JSON; channels turn it back
    kind: str
    is_group: bool
    attempts: int


def to_item(row: OutboxMessage) -> OutboxItem:
    assert row.id is not None
    return OutboxItem(
        id=row.id,
        channel=row.channel,
        chat_id=row.chat_id,
        user_id=row.user_id,
        payload=json.loads(row.payload),
        kind=row.kind,
        is_group=row.is_group,
        attempts=row.attempts,
    )


async def enqueue(
    session: AsyncSession,
    *,
    channel: str,
    chat_id: str,
    payload: dict[str, Any],
    user_id: int | None = None,
    kind: str = "message",
    dedupe_key: str | None = None,
    is_group: bool = False,
    not_before: datetime | None = None,
) -> bool:
    """Add a message; with a dedupe_key a second enqueue of the same key is a no-op.

    The session remembers that it queued something, so whoever commits it can wake
    the sender (see ``Database.transaction``).
    """
    values = {
        "channel": channel,
        "chat_id": chat_id,
        "user_id": user_id,
        "payload": json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
        "kind": kind,
        "dedupe_key": dedupe_key,
        "is_group": is_group,
        "status": "pending",
        "attempts": 0,
        "not_before": not_before or utcnow(),
        "created_at": utcnow(),
    }
    stmt = upsert_insert(session, OutboxMessage).values(**values)
    if dedupe_key is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=["dedupe_key"])
    queued = await changed_one(session, stmt)
    if queued:
        session.info[QUEUED] = True
    return queued


@dataclass(frozen=True, slots=True)
class NewMessage:
    """One row of a bulk enqueue (``enqueue_many``)."""

    channel: str
    chat_id: str
    user_id: int | None
    payload: dict[str, Any]
    dedupe_key: str
    kind: str = "message"
    not_before: datetime | None = None
    notice_run_id: int | None = None


async def enqueue_many(session: AsyncSession, messages: Sequence[NewMessage]) -> int:
    """Add many rows in one statement; rows whose dedupe key exists are skipped.

    For broadcasts (community notices): the caller writes a bounded batch per
    transaction, so a crash keeps whole batches or nothing, and running the same
    batch again adds nothing. Returns how many rows were added.
    """
    if not messages:
        return 0
    now = utcnow()
    values = [
        {
            "channel": m.channel,
            "chat_id": m.chat_id,
            "user_id": m.user_id,
            "payload": json.dumps(m.payload, ensure_ascii=False, separators=(",", ":")),
            "kind": m.kind,
            "dedupe_key": m.dedupe_key,
            "is_group": False,
            "status": "pending",
            "attempts": 0,
            "not_before": m.not_before or now,
            "created_at": now,
            "notice_run_id": m.notice_run_id,
        }
        for m in messages
    ]
    stmt = (
        upsert_insert(session, OutboxMessage)
        .values(values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )
    added = await changed_count(session, stmt)
    if added:
        session.info[QUEUED] = True
    return added


async def run_counts(session: AsyncSession, run_id: int) -> dict[tuple[str, str], int]:
    """(status, kind) → rows of one notice sending."""
    stmt = (
        select(col(OutboxMessage.status), col(OutboxMessage.kind), func.count())
        .where(col(OutboxMessage.notice_run_id) == run_id)
        .group_by(col(OutboxMessage.status), col(OutboxMessage.kind))
    )
    return {(status, kind): int(n) for status, kind, n in (await session.execute(stmt)).all()}


async def cancel_runs(session: AsyncSession, run_ids: Collection[int]) -> int:
    """Pending rows of these notice sendings will not be sent (status ``cancelled``)."""
    if not run_ids:
        return 0
    return await changed_count(
        session,
        update(OutboxMessage)
        .where(col(OutboxMessage.notice_run_id).in_(list(run_ids)), col(OutboxMessage.status) == "pending")
        .values(status="cancelled", error="notice cancelled"),
    )


async def erase_notice_rows(session: AsyncSession, user_id: int) -> int:
    """/forget: notice rows keep their outcome (the author's counts) but no longer say
    who or where: chat id and user are removed, and the text with them. Rows not sent
    yet are cancelled first (nothing more goes to someone who asked to be forgotten)."""
    await session.execute(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.user_id) == user_id,
            col(OutboxMessage.notice_run_id).is_not(None),
            col(OutboxMessage.status) == "pending",
        )
        .values(status="cancelled")
    )
    return await changed_count(
        session,
        update(OutboxMessage)
        .where(col(OutboxMessage.user_id) == user_id, col(OutboxMessage.notice_run_id).is_not(None))
        .values(chat_id="forgotten", user_id=None, payload="{}", sent_message_id=None, error=None),
    )


async def due(
    session: AsyncSession,
    *,
    now: datetime,
    limit: int = 100,
    skip: Collection[tuple[str, str]] = (),
    channels: Collection[str] | None = None,
) -> list[OutboxItem]:
    """Pending messages whose time has come, oldest first.

    ``skip`` leaves out (channel, chat id) pairs the caller already holds;
    ``channels`` limits to the channels the caller can deliver (a Telegram-only
    process leaves terminal messages for the terminal). A row whose payload cannot
    be read is marked failed here, or it would come first, forever, and hold up
    the whole outbox.
    """
    stmt = (
        select(OutboxMessage)
        .where(col(OutboxMessage.status) == "pending", col(OutboxMessage.not_before) <= now)
        .order_by(col(OutboxMessage.not_before), col(OutboxMessage.id))
        .limit(limit)
    )
    if skip:
        chat = tuple_(col(OutboxMessage.channel), col(OutboxMessage.chat_id))
        stmt = stmt.where(chat.not_in(list(skip)))
    if channels is not None:
        stmt = stmt.where(col(OutboxMessage.channel).in_(list(channels)))
    items = []
    for row in (await session.execute(stmt)).scalars():
        try:
            items.append(to_item(row))
        except Exception as exc:
            assert row.id is not None
            log.error("outbox item %s has an unreadable payload", row.id, exc_info=exc)
            await mark_failed(session, row.id, error=f"unreadable payload: {exc!r}")
    return items


async def next_due_after(
    session: AsyncSession, now: datetime, *, channels: Collection[str] | None = None
) -> datetime | None:
    """When the next pending row comes due after ``now`` (rows already due are in hand)."""
    stmt = select(func.min(col(OutboxMessage.not_before))).where(
        col(OutboxMessage.status) == "pending", col(OutboxMessage.not_before) > now
    )
    if channels is not None:
        stmt = stmt.where(col(OutboxMessage.channel).in_(list(channels)))
    value: datetime | None = (await session.execute(stmt)).scalar_one_or_none()
    return value


async def defer_chat(session: AsyncSession, item: OutboxItem, until: datetime) -> None:
    """Keep a chat's later rows behind a retried one: none may come due before it.

    They get ``until`` plus a microsecond, so the retried row sorts first; among
    themselves they then sort by id (enqueue order).
    """
    await session.execute(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.channel) == item.channel,
            col(OutboxMessage.chat_id) == item.chat_id,
            col(OutboxMessage.status) == "pending",
            col(OutboxMessage.id) != item.id,
            col(OutboxMessage.not_before) <= until,
        )
        .values(not_before=until + timedelta(microseconds=1))
    )


async def mark_sent(session: AsyncSession, item_id: int, *, message_id: str | None) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.id) == item_id)
        .values(status="sent", sent_at=utcnow(), sent_message_id=message_id)
    )


async def mark_retry(session: AsyncSession, item_id: int, *, not_before: datetime, error: str) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.id) == item_id)
        .values(not_before=not_before, attempts=col(OutboxMessage.attempts) + 1, error=error[:500])
    )


async def mark_failed(session: AsyncSession, item_id: int, *, error: str, status: str = "failed") -> None:
    await session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.id) == item_id)
        .values(status=status, attempts=col(OutboxMessage.attempts) + 1, error=error[:500])
    )


async def cancel_pending_for_chat(session: AsyncSession, *, channel: str, chat_id: str) -> int:
    """A blocked chat gets nothing more: its pending messages are marked blocked."""
    return await changed_count(
        session,
        update(OutboxMessage)
        .where(
            col(OutboxMessage.channel) == channel,
            col(OutboxMessage.chat_id) == chat_id,
            col(OutboxMessage.status) == "pending",
        )
        .values(status="blocked", error="recipient blocked the bot"),
    )


async def counts(session: AsyncSession) -> dict[str, int]:
    stmt = select(col(OutboxMessage.status), func.count()).group_by(col(OutboxMessage.status))
    return {status: int(n) for status, n in (await session.execute(stmt)).all()}


async def last_sent_message_id(
    session: AsyncSession, *, channel: str, chat_id: str, dedupe_prefix: str
) -> str | None:
    """The platform id of the newest delivered message to a chat whose dedupe key starts
    with ``dedupe_prefix`` (so a later change can edit that message)."""
    stmt = (
        select(col(OutboxMessage.sent_message_id))
        .where(
            col(OutboxMessage.channel) == channel,
            col(OutboxMessage.chat_id) == chat_id,
            col(OutboxMessage.dedupe_key).startswith(dedupe_prefix, autoescape=True),
            col(OutboxMessage.sent_message_id).is_not(None),
        )
        .order_by(col(OutboxMessage.id).desc())
        .limit(1)
    )
    value: str | None = (await session.execute(stmt)).scalar_one_or_none()
    return value


async def was_sent_as(
    session: AsyncSession, *, channel: str, chat_id: str, dedupe_prefix: str, message_id: str
) -> bool:
    """Whether the platform message ``message_id`` in this chat is one we delivered from a
    row whose dedupe key starts with ``dedupe_prefix`` (a button pressed on that very post)."""
    stmt = (
        select(col(OutboxMessage.id))
        .where(
            col(OutboxMessage.channel) == channel,
            col(OutboxMessage.chat_id) == chat_id,
            col(OutboxMessage.sent_message_id) == message_id,
            col(OutboxMessage.dedupe_key).startswith(dedupe_prefix, autoescape=True),
        )
        .limit(1)
    )
    return (await session.execute(stmt)).first() is not None


# What a message about an erased person turns into: delivered rows stay (their ids let
# later changes edit the post), but say nothing any more.
ERASED_PAYLOAD = {"text": ""}


async def erase_about(session: AsyncSession, dedupe_prefixes: Collection[str]) -> None:
    """/forget: messages about someone (found by their dedupe keys) lose their content;
    those not sent yet are not sent at all."""
    for prefix in dedupe_prefixes:
        about = col(OutboxMessage.dedupe_key).startswith(prefix, autoescape=True)
        await session.execute(delete(OutboxMessage).where(about, col(OutboxMessage.status) == "pending"))
        await session.execute(
            update(OutboxMessage).where(about).values(payload=json.dumps(ERASED_PAYLOAD), error=None)
        )


async def erase_to(session: AsyncSession, *, user_id: int, channel: str, chat_id: str) -> None:
    """/forget: every message to the person, sent or not, goes (text and chat id)."""
    await session.execute(
        delete(OutboxMessage).where(
            (col(OutboxMessage.user_id) == user_id)
            | ((col(OutboxMessage.channel) == channel) & (col(OutboxMessage.chat_id) == chat_id))
        )
    )


async def prune_finished(session: AsyncSession, older_than: datetime) -> int:
    """Delivered, failed and blocked rows created before ``older_than`` go: the outbox is a
    queue with a short memory, not an archive of what people were told."""
    return await changed_count(
        session,
        delete(OutboxMessage).where(
            col(OutboxMessage.status) != "pending", col(OutboxMessage.created_at) < older_than
        ),
    )


async def give_up_pending(session: AsyncSession, older_than: datetime) -> int:
    """Rows still pending since before ``older_than`` will not be delivered: mark them failed."""
    return await changed_count(
        session,
        update(OutboxMessage)
        .where(col(OutboxMessage.status) == "pending", col(OutboxMessage.created_at) < older_than)
        .values(status="failed", error="undeliverable: gave up waiting for a channel"),
    )


async def move_chat(session: AsyncSession, *, channel: str, old_chat_id: str, new_chat_id: str) -> int:
    """Messages still waiting for a chat that got a new id go to the new id."""
    return await changed_count(
        session,
        update(OutboxMessage)
        .where(
            col(OutboxMessage.channel) == channel,
            col(OutboxMessage.chat_id) == old_chat_id,
            col(OutboxMessage.status) == "pending",
        )
        .values(chat_id=new_chat_id),
    )


@dataclass(frozen=True, slots=True)
class Backlog:
    pending: int  # rows waiting, due or not
    oldest_due: datetime | None  # the earliest ``not_before`` among pending rows already due


async def backlog(
    session: AsyncSession, *, now: datetime, channels: Collection[str] | None = None
) -> Backlog:
    """How much the sender has still to do, for health checks and metrics.

    ``channels``: only rows for these channels (those this deployment can deliver;
    rows for a channel nobody runs would otherwise look like a stuck sender).
    """
    where = [col(OutboxMessage.status) == "pending"]
    if channels is not None:
        where.append(col(OutboxMessage.channel).in_(list(channels)))
    due = func.min(col(OutboxMessage.not_before)).filter(col(OutboxMessage.not_before) <= now)
    row = (await session.execute(select(func.count(), due).where(*where))).one()
    oldest = row[1]
    if oldest is not None and oldest.tzinfo is None:  # SQLite hands back naive UTC
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return Backlog(pending=int(row[0]), oldest_due=oldest)
