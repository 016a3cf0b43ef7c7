"""Housekeeping: prune old idempotency keys and the answers kept with them, delivered
outbox rows past their retention, and give up on rows that can never be delivered."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from scheduler.jobs import Jobs, Periodic, Runner
from storage import outbox, updates
from storage.engine import Database
from storage.models import utcnow

# Telegram redelivers within minutes; a week of keys is a wide margin.
KEEP_UPDATE_KEYS = timedelta(days=7)
# Answers are kept only to repeat them after a crash, which is noticed within minutes;
# they may hold personal data, so they go much sooner than the keys.
KEEP_REPLIES = timedelta(hours=1)
# Delivered (or failed) outbox rows are kept this long for staff and delivery reports.
KEEP_SENT = timedelta(days=30)
# A message still undelivered after this long (its recipient has no channel this
# deployment runs, say) is given up: marked failed rather than kept pending for ever.
GIVE_UP_AFTER = timedelta(days=3)
EVERY = timedelta(minutes=15)


def prune(
    keep_sent: timedelta = KEEP_SENT,
    give_up_after: timedelta = GIVE_UP_AFTER,
    now: Callable[[], datetime] = utcnow,
) -> Runner:
    async def run(db: Database, _arg: str) -> None:
        moment = now()
        async with db.transaction() as session:
            await updates.prune(session, moment - KEEP_UPDATE_KEYS)
            await updates.expire_replies(session, moment - KEEP_REPLIES)
            await outbox.prune_finished(session, moment - keep_sent)
            await outbox.give_up_pending(session, moment - give_up_after)

    return run


def register(
    jobs: Jobs, *, keep_sent: timedelta = KEEP_SENT, give_up_after: timedelta = GIVE_UP_AFTER
) -> None:
    jobs.add_runner("housekeeping", prune(keep_sent, give_up_after, jobs.now))
    jobs.add_periodic(Periodic("housekeeping", EVERY, "housekeeping"))
