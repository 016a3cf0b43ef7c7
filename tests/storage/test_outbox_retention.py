"""Delivered outbox rows do not stay for ever, and rows nobody can deliver are given up."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlmodel import col

from dialogs.messages import Outgoing
from scheduler import housekeeping
from storage import outbox
from storage.engine import Database
from storage.models import OutboxMessage, utcnow


async def _row(db: Database, chat: str, *, status: str, age: timedelta) -> None:
    async with db.transaction() as session:
        await outbox.enqueue(session, channel="telegram", chat_id=chat, payload=Outgoing(chat).to_dict())
        await session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.chat_id) == chat)
            .values(status=status, created_at=utcnow() - age)
        )


async def test_old_delivered_rows_are_pruned_and_stuck_ones_given_up(db: Database) -> None:
    await _row(db, "old-sent", status="sent", age=timedelta(days=31))
    await _row(db, "old-blocked", status="blocked", age=timedelta(days=40))
    await _row(db, "new-sent", status="sent", age=timedelta(days=2))
    await _row(db, "stuck", status="pending", age=timedelta(days=4))
    await _row(db, "waiting", status="pending", age=timedelta(hours=1))

    await housekeeping.prune(keep_sent=timedelta(days=30))(db, "")

    async with db.transaction() as session:
        rows = {
            chat: status
            for chat, status in (
                await session.execute(select(col(OutboxMessage.chat_id), col(OutboxMessage.status)))
            ).all()
        }
    assert rows == {"new-sent": "sent", "stuck": "failed", "waiting": "pending"}
