"""Scheduled jobs, derived from database rows and rebuilt at every start.

APScheduler keeps jobs in memory only; the database is the truth. Each feature
registers a *source*: a function that reads its rows and returns ``JobSpec``s
(a deterministic id, when to run, which runner, and only ids as arguments). At
start-up ``rebuild`` turns every spec into an APScheduler job, so a restart
loses nothing: a job whose time passed while Linli was down runs at once.
Runners must be idempotent (they may run again after a crash), which is why
what they send carries an outbox ``dedupe_key``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.ext.asyncio import AsyncSession

from storage.engine import Database
from storage.models import utcnow

log = logging.getLogger("linli.scheduler")


@dataclass(frozen=True, slots=True)
class JobSpec:
    id: str  # deterministic: "<runner>:<row id>", so rebuilding replaces, never duplicates
    run_at: datetime
    runner: str
    arg: str


Source = Callable[[AsyncSession, datetime], Awaitable[list[JobSpec]]]
# A runner returns how many outbox messages it queued, so the sender can be woken.
Runner = Callable[[Database, str], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class Periodic:
    id: str
    every: timedelta
    runner: str


class Jobs:
    def __init__(
        self,
        db: Database,
        *,
        now: Callable[[], datetime] = utcnow,
        on_enqueued: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.now = now
        self.on_enqueued = on_enqueued
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.sources: list[Source] = []
        self.runners: dict[str, Runner] = {}
        self.periodic: list[Periodic] = []

    def add_source(self, source: Source) -> None:
        self.sources.append(source)

    def add_runner(self, name: str, runner: Runner) -> None:
        self.runners[name] = runner

    def add_periodic(self, job: Periodic) -> None:
        self.periodic.append(job)

    async def specs(self) -> list[JobSpec]:
        """Every one-off job the database implies right now."""
        async with self.db.transaction() as session:
            now = self.now()
            out: list[JobSpec] = []
            for source in self.sources:
                out.extend(await source(session, now))
            return out

    async def rebuild(self) -> int:
        specs = await self.specs()
        for spec in specs:
            self.schedule(spec)
        for job in self.periodic:
            self.scheduler.add_job(
                self.run,
                IntervalTrigger(seconds=job.every.total_seconds()),
                args=[job.runner, ""],
                id=job.id,
                replace_existing=True,
                coalesce=True,
            )
        log.info("scheduler rebuilt %d jobs from the database", len(specs))
        return len(specs)

    def schedule(self, spec: JobSpec) -> None:
        """Add or move a job; the same id replaces the earlier one."""
        self.scheduler.add_job(
            self.run,
            DateTrigger(run_date=spec.run_at),
            args=[spec.runner, spec.arg],
            id=spec.id,
            replace_existing=True,
            # Late is better than never: run jobs missed while Linli was down.
            misfire_grace_time=None,
            coalesce=True,
        )

    def unschedule(self, job_id: str) -> None:
        if self.scheduler.get_job(job_id) is not None:
            self.scheduler.remove_job(job_id)

    async def run(self, runner: str, arg: str) -> None:
        try:
            queued = await self.runners[runner](self.db, arg)
        except Exception:
            # A failing job must not kill the scheduler; it is rebuilt next start.
            log.exception("job %s(%s) failed", runner, arg)
            return
        if queued and self.on_enqueued is not None:
            self.on_enqueued()

    async def run_due(self) -> int:
        """Run every job whose time has come, by the injected clock (tests, catch-up)."""
        now = self.now()
        due = [s for s in await self.specs() if s.run_at <= now]
        for spec in due:
            await self.run(spec.runner, spec.arg)
        return len(due)

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
