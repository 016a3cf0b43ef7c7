"""Scheduled jobs, derived from database rows and rebuilt at every start.

APScheduler keeps jobs in memory only; the database is the truth. Each feature
registers a *source*: a function that reads its rows and returns ``JobSpec``s
(a deterministic id, when to run, which runner, and only ids as arguments). At
start-up, and again every minute, ``rebuild`` turns every spec into an APScheduler
job, so a restart loses nothing (a job whose time passed while Linli was down runs
at once) and rows written by any worker get their jobs without a restart. A job
that ran is written to ``job_runs`` and not scheduled again. Runners must still be
idempotent (a crash between the work and that record repeats it), which is why
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
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.dialect import upsert_insert
from storage.engine import Database
from storage.models import JobRun, utcnow

log = logging.getLogger("linli.scheduler")

# How often the schedule is re-derived from the rows.
RESYNC_EVERY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class JobSpec:
    id: str  # deterministic: "<runner>:<row id>", so rebuilding replaces, never duplicates
    run_at: datetime
    runner: str
    arg: str


Source = Callable[[AsyncSession, datetime], Awaitable[list[JobSpec]]]
# A runner does its work in its own transactions; what it queues wakes the sender on commit.
Runner = Callable[[Database, str], Awaitable[None]]


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
    ) -> None:
        self.db = db
        self.now = now
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.sources: list[Source] = []
        self.runners: dict[str, Runner] = {}
        self.periodic: list[Periodic] = []
        self._scheduled: dict[str, JobSpec] = {}

    def add_source(self, source: Source) -> None:
        self.sources.append(source)

    def add_runner(self, name: str, runner: Runner) -> None:
        self.runners[name] = runner

    def add_periodic(self, job: Periodic) -> None:
        self.periodic.append(job)

    async def specs(self) -> list[JobSpec]:
        """Every one-off job the database implies right now and that has not run yet."""
        async with self.db.transaction() as session:
            now = self.now()
            out: list[JobSpec] = []
            for source in self.sources:
                out.extend(await source(session, now))
            done = await _ran(session, [s.id for s in out])
            return [s for s in out if s.id not in done]

    async def rebuild(self) -> int:
        count = await self.resync()
        self.scheduler.add_job(
            self._resync_quietly,
            IntervalTrigger(seconds=RESYNC_EVERY.total_seconds()),
            id="jobs-resync",
            replace_existing=True,
            coalesce=True,
        )
        for job in self.periodic:
            self.scheduler.add_job(
                self.run,
                IntervalTrigger(seconds=job.every.total_seconds()),
                args=[job.runner, ""],
                id=job.id,
                replace_existing=True,
                coalesce=True,
            )
        log.info("scheduler rebuilt %d jobs from the database", count)
        return count

    async def resync(self) -> int:
        """Schedule every job the rows imply (same ids replace, so this is idempotent)."""
        specs = await self.specs()
        wanted = {s.id for s in specs}
        for spec in specs:
            if self._scheduled.get(spec.id) != spec:
                self.schedule(spec)
        # Jobs whose rows no longer ask for them (a ride cancelled, an application decided).
        for job_id in set(self._scheduled) - wanted:
            self.unschedule(job_id)
        return len(specs)

    async def _resync_quietly(self) -> None:
        try:
            await self.resync()
        except Exception:
            log.exception("scheduler resync failed; trying again in a minute")

    def schedule(self, spec: JobSpec) -> None:
        """Add or move a job; the same id replaces the earlier one."""
        self._scheduled[spec.id] = spec
        self.scheduler.add_job(
            self.run,
            DateTrigger(run_date=spec.run_at),
            args=[spec.runner, spec.arg, spec.id],
            id=spec.id,
            replace_existing=True,
            # Late is better than never: run jobs missed while Linli was down.
            misfire_grace_time=None,
            coalesce=True,
        )

    def unschedule(self, job_id: str) -> None:
        self._scheduled.pop(job_id, None)
        if self.scheduler.get_job(job_id) is not None:
            self.scheduler.remove_job(job_id)

    async def run(self, runner: str, arg: str, job_id: str | None = None) -> None:
        try:
            await self.runners[runner](self.db, arg)
            if job_id is not None:
                async with self.db.transaction() as session:
                    await _record_run(session, job_id)
                self._scheduled.pop(job_id, None)
        except Exception:
            # A failing job must not kill the scheduler; the next resync tries it again.
            log.exception("job %s(%s) failed", runner, arg)
            return

    async def run_due(self) -> int:
        """Run every job whose time has come, by the injected clock (tests, catch-up)."""
        now = self.now()
        due = [s for s in await self.specs() if s.run_at <= now]
        for spec in due:
            await self.run(spec.runner, spec.arg, spec.id)
        return len(due)

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)


async def _ran(session: AsyncSession, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    rows = await session.execute(select(col(JobRun.id)).where(col(JobRun.id).in_(ids)))
    return set(rows.scalars())


async def _record_run(session: AsyncSession, job_id: str) -> None:
    await session.execute(
        upsert_insert(session, JobRun)
        .values(id=job_id, ran_at=utcnow())
        .on_conflict_do_nothing(index_elements=["id"])
    )
