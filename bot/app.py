"""The composition root: database, handler, outbox sender and scheduler, minus any channel.

A channel (Telegram, the terminal) builds a ``Linli``, calls ``prepare()`` and
``start(transports)``, feeds it ``Incoming`` messages through ``handler.handle``
and renders the replies; ``stop()`` shuts everything down in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from bot.metrics import Metrics, metered
from bot.settings import Settings
from dialogs import notify
from dialogs.feature import Config, Env
from dialogs.features import FEATURES
from dialogs.messages import Outgoing
from handlers.entry import Handler
from handlers.registry import Registry
from scheduler import housekeeping
from scheduler.delivery import Transport
from scheduler.jobs import Jobs
from scheduler.ratelimit import RateLimiter
from scheduler.sender import OutboxSender
from storage import demo, outbox, schema, stations_io, updates
from storage.engine import Database
from storage.leader import Leadership

log = logging.getLogger("linli")

# Seconds the health check waits for the database before calling it down.
HEALTH_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class Health:
    database: bool
    leading: bool
    backlog: int | None  # outbox rows pending
    oldest_pending: float | None  # seconds the oldest due pending row has waited

    @property
    def ok(self) -> bool:
        return self.database

    def to_dict(self) -> dict[str, object]:
        return {
            "status": "ok" if self.ok else "unavailable",
            "database": "ok" if self.database else "unreachable",
            "leader": self.leading,
            "outbox_pending": self.backlog,
            "outbox_oldest_pending_seconds": None
            if self.oldest_pending is None
            else round(self.oldest_pending, 1),
        }


class Linli:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        # Whatever a transaction queues in the outbox, the sender hears of it on commit.
        self.db.on_outbox_commit = self._outbox_committed
        # Also told of every commit that queued outbox messages (a channel's menus).
        self.outbox_listeners: list[Callable[[], None]] = []
        self.env = Env(
            config=Config(
                driver_reminders=settings.driver_reminder_minutes,
                media_dir=settings.media_dir,
                report_categories=settings.report_category_list,
                report_escalation=settings.report_escalation_list,
                report_centre_radius_km=settings.report_centre_radius_km,
                city_wide_staff=frozenset(settings.admin_ids),
            )
        )
        self.registry = Registry.build(FEATURES)
        self.jobs = Jobs(self.db, now=self.env.now)
        self.registry.install_jobs(self.jobs, self.env)
        housekeeping.register(self.jobs, keep_sent=timedelta(days=settings.outbox_retention_days))
        self.metrics = Metrics()
        self.metrics.wrap_runners(self.jobs.runners)
        self.handler = Handler(
            self.db,
            self.registry,
            env=self.env,
            staff_ids=settings.admin_ids,
            on_scheduled=self.jobs.schedule,
        )
        # One limiter for the outbox sender and a channel's direct replies, so that
        # together they stay within the platform's limits (in this process).
        self.limiter = RateLimiter(time.monotonic, global_per_second=settings.telegram_rate)
        self.sender: OutboxSender | None = None
        self._sender_task: asyncio.Task[None] | None = None
        self.leadership = Leadership(self.db)
        self._transports: dict[str, Transport] = {}
        # Channels served beside the one that calls start() (WeChat beside Telegram).
        self.extra_transports: dict[str, Transport] = {}
        self._follow_task: asyncio.Task[None] | None = None
        # Set once this process leads (runs the sender and the scheduler).
        self.leads = asyncio.Event()

    async def prepare(self) -> None:
        """Bring the schema up to date and, on an empty database, load the demo data."""
        await schema.upgrade(self.db)
        if self.settings.demo_data:
            async with self.db.transaction() as session:
                if await demo.is_empty(session):
                    await demo.load(session)
                    log.info("loaded demo data (communities, demo people, sample rest stations)")
                elif added := await stations_io.load_sample(session):
                    # A demo database from before rest stations existed.
                    log.info("loaded %d sample rest stations", added)

    async def start(self, transports: dict[str, Transport]) -> None:
        """Deliver the outbox through these channels and run the scheduler — in the one
        process that leads; the others keep trying, to take over if the leader goes."""
        self._transports = {**self.extra_transports, **transports}
        if not await self.try_lead():
            log.info("another process leads; this one handles messages and waits its turn")
            self._follow_task = asyncio.create_task(self._follow(), name="leader-follow")

    async def try_lead(self) -> bool:
        if self.sender is not None:
            return True
        if not await self.leadership.try_acquire():
            return False
        self.sender = OutboxSender(self.db, metered(self.metrics, self._transports), limiter=self.limiter)
        self._sender_task = asyncio.create_task(self.sender.run(), name="outbox-sender")
        await self.jobs.rebuild()
        self.jobs.start()
        self.leads.set()
        if self._follow_task is None:
            # Watch the lead: if it is lost, stop at once and wait for it again.
            self._follow_task = asyncio.create_task(self._follow(), name="leader-follow")
        return True

    async def _follow(self) -> None:
        while True:
            if self.sender is None:
                await self.leadership.wait_to_lead()
                try:
                    await self.try_lead()
                except Exception:
                    # E.g. the database went while the scheduler was rebuilt: let the
                    # lead go rather than hold it without sending, and queue up again.
                    log.exception("could not start leading; letting another process lead")
                    await self._step_down()
                    continue
            await self.leadership.wait_lost()
            await self._step_down()

    async def _step_down(self) -> None:
        """The lead is lost: another process may lead now, so stop sending and scheduling
        at once (deliveries in flight are abandoned; their rows stay pending), and only
        then let the next leader in."""
        self.leads.clear()
        self.jobs.shutdown()
        sender, task = self.sender, self._sender_task
        self.sender, self._sender_task = None, None
        if sender is not None:
            sender.stop()
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
            if not task.cancelled() and task.exception() is not None:
                log.error("the outbox sender failed while stepping down", exc_info=task.exception())
        await self.leadership.release()
        log.warning("this process stopped leading; it handles messages and waits its turn")

    async def defer_replies(
        self,
        channel: str,
        chat_id: str,
        replies: list[Outgoing],
        *,
        answered: str | None = None,
        is_group: bool = False,
    ) -> None:
        """Replies a channel could not send now: into the outbox, kept in order.

        ``answered``: the update these replies answer. Its stored copy is dropped in the
        same transaction, so a redelivery of the update cannot send them a second time.
        """
        async with self.db.transaction() as session:
            for reply in replies:
                await notify.to_chat(
                    session, channel=channel, chat_id=chat_id, message=reply, kind="reply", is_group=is_group
                )
            if answered is not None:
                await updates.forget_replies_for(session, [answered])

    async def health(self) -> Health:
        """For /healthz and /metrics: is the database there, do we lead, how far behind
        is the outbox (rows for the channels this process runs)."""
        now = self.env.now()
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT), self.db.transaction() as session:
                found = await outbox.backlog(session, now=now, channels=list(self._transports) or None)
        except Exception as e:  # the database is down, or too slow to count as up
            log.warning("health check: the database did not answer: %s", e or type(e).__name__)
            health = Health(database=False, leading=self.leads.is_set(), backlog=None, oldest_pending=None)
        else:
            age = None if found.oldest_due is None else max(0.0, (now - found.oldest_due).total_seconds())
            health = Health(
                database=True, leading=self.leads.is_set(), backlog=found.pending, oldest_pending=age
            )
        m = self.metrics
        m.database_up.set(1 if health.database else 0)
        m.leader.set(1 if health.leading else 0)
        if health.backlog is not None:
            m.backlog.set(health.backlog)
            m.oldest_pending.set(health.oldest_pending or 0.0)
        return health

    def _outbox_committed(self) -> None:
        self.wake_sender()
        for listener in self.outbox_listeners:
            listener()

    def wake_sender(self) -> None:
        if self.sender is not None:
            self.sender.wake()

    async def stop(self) -> None:
        if self._follow_task is not None:
            self._follow_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow_task
        self.jobs.shutdown()
        if self.sender is not None:
            self.sender.stop()
        if self._sender_task is not None:
            self._sender_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender_task
        self.leads.clear()
        await self.leadership.release()
        await self.db.dispose()
