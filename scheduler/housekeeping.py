"""Housekeeping jobs: prune old idempotency keys and the answers kept with them."""

from __future__ import annotations

from datetime import timedelta

from scheduler.jobs import Jobs, Periodic
from storage import updates
from storage.engine import Database
from storage.models import utcnow

# Telegram redelivers within minutes; a week of keys is a wide margin.
KEEP_UPDATE_KEYS = timedelta(days=7)
# Answers are kept only to repeat them after a crash, which is noticed within minutes;
# they may hold personal data, so they go much sooner than the keys.
KEEP_REPLIES = timedelta(hours=1)


async def prune_update_keys(db: Database, arg: str) -> None:
    async with db.transaction() as session:
        await updates.prune(session, utcnow() - KEEP_UPDATE_KEYS)
        await updates.expire_replies(session, utcnow() - KEEP_REPLIES)


def register(jobs: Jobs) -> None:
    jobs.add_runner("prune-update-keys", prune_update_keys)
    jobs.add_periodic(Periodic("prune-update-keys", timedelta(minutes=15), "prune-update-keys"))
