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

from bot.settings import Settings
from dialogs import ride_jobs
from dialogs.messages import Outgoing
from handlers.entry import Handler
from handlers.setup import build_registry, register_jobs
from scheduler.delivery import Transport
from scheduler.jobs import Jobs
from scheduler.ratelimit import RateLimiter
from scheduler.sender import OutboxSender
from storage import demo, outbox, schema, updates
from storage.engine import Database
from storage.leader import Leadership

log = logging.getLogger("linli")


class Linli:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        self.registry = build_registry()
        self.jobs = Jobs(self.db, on_enqueued=self.wake_sender)
        ride_jobs.configure(driver_reminders=settings.driver_reminder_minutes)
        register_jobs(self.jobs)
        self.handler = Handler(
            self.db,
            self.registry,
            staff_ids=settings.admin_ids,
            on_enqueued=self.wake_sender,
            on_scheduled=self.jobs.schedule,
        )
        # One limiter for the outbox sender and a channel's direct replies, so that
        # together they stay within the platform's limits (in this process).
        self.limiter = RateLimiter(time.monotonic)
        self.sender: OutboxSender | None = None
        self._sender_task: asyncio.Task[None] | None = None
        self.leadership = Leadership(self.db)
        self._transports: dict[str, Transport] = {}
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
                    log.info("loaded demo data (communities and demo people)")

    async def start(self, transports: dict[str, Transport]) -> None:
        """Deliver the outbox through these channels and run the scheduler — in the one
        process that leads; the others keep trying, to take over if the leader goes."""
        self._transports = transports
        if not await self.try_lead():
            log.info("another process leads; this one handles messages and waits its turn")
            self._follow_task = asyncio.create_task(self._follow(), name="leader-follow")

    async def try_lead(self) -> bool:
        if self.sender is not None:
            return True
        if not await self.leadership.try_acquire():
            return False
        self.sender = OutboxSender(self.db, self._transports, limiter=self.limiter)
        self._sender_task = asyncio.create_task(self.sender.run(), name="outbox-sender")
        await self.jobs.rebuild()
        self.jobs.start()
        self.leads.set()
        return True

    async def _follow(self) -> None:
        await self.leadership.wait_to_lead()
        await self.try_lead()

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
                await outbox.enqueue(
                    session, channel=channel, chat_id=chat_id, message=reply, kind="reply", is_group=is_group
                )
            if answered is not None:
                await updates.forget_replies_for(session, [answered])
        self.wake_sender()

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
        await self.leadership.release()
        await self.db.dispose()
