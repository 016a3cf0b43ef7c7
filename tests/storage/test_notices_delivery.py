"""A notice to 5,000 people through the real sender and limiter (fake time): 2% have
blocked the bot, some sends meet 429s and transient errors; everyone else gets the
notice exactly once and the author's report counts match. On SQLite and PostgreSQL.

Also: a crash in the middle of expanding the audience (an exception between batches)
loses nobody and duplicates nobody when the job runs again.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from dialogs.feature import Env
from dialogs.notices import delivery
from scheduler.delivery import RecipientGone, RetryLater
from scheduler.sender import OutboxSender
from storage import communities, notices
from storage.engine import Database
from storage.models import OutboxMessage, User, utcnow
from storage.notices import Audience, NoticeDraft, Topic
from storage.outbox import OutboxItem
from tests.storage.test_sender import FakeTime

pytestmark = pytest.mark.slow

N = 5_000
AFTERNOON = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)  # 15:00 in Shanghai


class Telegramish:
    """Blocked chats answer 403; every 37th first try meets a 429, every 53rd a network error."""

    def __init__(self, blocked: set[str]) -> None:
        self.blocked = blocked
        self.delivered: Counter[str] = Counter()
        self.tries: Counter[str] = Counter()
        self.calls = 0
        self.rate_limited = 0

    async def deliver(self, item: OutboxItem) -> str | None:
        self.calls += 1
        self.tries[item.chat_id] += 1
        await asyncio.sleep(0)
        if item.chat_id in self.blocked:
            raise RecipientGone("Forbidden: bot was blocked by the user")
        if self.tries[item.chat_id] == 1 and self.calls % 37 == 0:
            self.rate_limited += 1
            raise RetryLater(3)
        if self.tries[item.chat_id] == 1 and self.calls % 53 == 0:
            raise ConnectionError("connection reset")
        self.delivered[item.chat_id] += 1
        return str(self.calls)


async def setup(db: Database) -> tuple[int, set[str]]:
    async with db.transaction() as session:
        community = await communities.add_community(session, name="测试社区", buildings=["1栋"])
        now = utcnow()
        rows = [
            {
                "channel": "telegram",
                "external_id": str(100_000 + i),
                "chat_id": str(100_000 + i),
                "display_name": "",
                "roles": "",
                "community_id": community.id,
                "onboarded_at": now,
                "consent_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(N)
        ]
        await session.execute(insert(User), rows)
        author = User(channel="telegram", external_id="1", chat_id="1", roles="staff", onboarded_at=now)
        session.add(author)
        await session.flush()
        assert author.id is not None
        notice = await notices.create(
            session,
            author_user_id=author.id,
            draft=NoticeDraft(
                text="明天停水",
                community_id=community.id,
                building_id=None,
                audience=Audience.EVERYONE,
                topic=Topic.UTILITIES,
                urgent=False,
                send_at=AFTERNOON,
            ),
        )
    blocked = {str(100_000 + i) for i in random.Random(3).sample(range(N), N // 50)}
    return notice.id, blocked


async def test_5000_recipients_blocked_429s_exactly_once_and_report(db: Database) -> None:
    notice_id, blocked = await setup(db)
    env = Env(clock=lambda: AFTERNOON)
    (spec,) = await delivery.notice_jobs_for_tests(db, env)
    # The job is interrupted after two batches (a crash), then runs again from the start.
    run_id = await _interrupted_start(db, env, spec.arg)
    await delivery.expand(db, env, str(run_id))
    await delivery.expand(db, env, str(run_id))  # a second run of the job adds nothing

    fake = FakeTime()
    transport = Telegramish(blocked)
    sender = OutboxSender(
        db, transport, clock=fake.clock, now=fake.now, sleep=fake.sleep, rng=random.Random(1)
    )
    while await sender.drain_once():
        fake.t += 600  # let retries with backoff come due
    wanted = {str(100_000 + i) for i in range(N)} - blocked
    assert set(transport.delivered) == wanted
    assert max(transport.delivered.values()) == 1  # exactly once
    assert transport.rate_limited > 0

    async with db.transaction() as session:
        run = await notices.get_run(session, run_id)
        assert run is not None
        p = await delivery.progress(session, run)
    assert (p.sent, p.blocked, p.failed, p.waiting, p.deferred) == (N - len(blocked), len(blocked), 0, 0, 0)

    await delivery.check_progress(db, env, "")
    async with db.transaction() as session:
        from sqlalchemy import select
        from sqlmodel import col

        reports = (
            await session.execute(select(OutboxMessage).where(col(OutboxMessage.kind) == "notice-report"))
        ).scalars()
        texts = [r.payload for r in reports]
        assert (await notices.get(session, notice_id)).status is notices.NoticeStatus.DONE  # type: ignore[union-attr]
    assert len(texts) == 1
    assert f"已送达 {N - len(blocked)} 人" in texts[0] and f"已屏蔽本机器人 {len(blocked)} 人" in texts[0]


async def _interrupted_start(db: Database, env: Env, arg: str) -> int:
    notice_id, micros = (int(p) for p in arg.split(":"))
    planned = datetime.fromtimestamp(micros / 1_000_000, tz=UTC)
    async with db.transaction() as session:
        run = await notices.start_run(session, notice_id, planned)
    assert await delivery.expand_batch(db, env, run.id)
    assert await delivery.expand_batch(db, env, run.id)
    return run.id
