"""Scheduled jobs that keep the ride promise: reminders, escalation, expiry, recurring rides.

Every job is derived from ride (or series) rows by a source, so a restart or another
worker's booking re-creates it; a one-off that ran is recorded and never repeated.
Runners re-read the row before acting (the ride may have been claimed, cancelled or
released since the job was planned) and send with dedupe keys, so running twice
after a crash queues nothing new.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dialogs import notify
from dialogs.feature import Env, Jobs, Periodic
from dialogs.i18n import Tr
from dialogs.messages import Outgoing
from dialogs.rides import cards, news
from scheduler.jobs import JobSpec
from storage import ride_series, rides, users
from storage.data import UserData
from storage.engine import Database
from storage.ride_series import SeriesData
from storage.rides import ACTIVE_RIDE, RideData, RideStatus

LOCAL = ZoneInfo("Asia/Shanghai")

# The evening before a ride, the rider hears who is coming (local time).
RIDER_REMINDER_AT = time(20, 0)
# Nobody claimed: "now" rides are escalated this long after posting…
ESCALATE_NOW_AFTER = timedelta(minutes=10)
# …later rides this long before pickup (or ESCALATE_NOW_AFTER after posting if that is past).
ESCALATE_BEFORE_PICKUP = timedelta(hours=2)
# An open ride this long past its pickup time is given up.
EXPIRE_AFTER = timedelta(hours=1)
# Recurring occurrences are posted this far ahead, by a periodic sweep and a per-date job.
SERIES_AHEAD = timedelta(hours=48)
SERIES_EVERY = timedelta(minutes=30)

# Driver reminders are for rides a driver holds and has not started yet.
_DRIVER_WAITING = (RideStatus.CLAIMED, RideStatus.ON_THE_WAY)
# The evening-before reminder is for rides not yet under way.
_RIDER_WAITING = (RideStatus.POSTED, RideStatus.CLAIMED, RideStatus.ON_THE_WAY, RideStatus.ARRIVED)


# -- local time -------------------------------------------------------------------


def local(moment: datetime) -> datetime:
    return moment.astimezone(LOCAL)


def at_local(day: date, clock: time) -> datetime:
    return datetime.combine(day, clock, tzinfo=LOCAL)


def moment_text(moment: datetime, tr: Tr) -> str:
    """Date and time as people in Wuhan read them ("5月3日 15:30")."""
    here = local(moment)
    return tr("ride_jobs.moment", month=here.month, day=here.day, time=f"{here:%H:%M}")


# -- 1. driver reminders ------------------------------------------------------------


def driver_reminder_specs(ride: RideData, now: datetime, minutes_before: tuple[int, ...]) -> list[JobSpec]:
    if ride.status not in _DRIVER_WAITING or ride.driver_user_id is None or now >= ride.pickup_at:
        return []
    specs = []
    for minutes in minutes_before:
        run_at = ride.pickup_at - timedelta(minutes=minutes)
        # A driver who claimed after that moment has just read the details: no reminder.
        if ride.claimed_at is not None and ride.claimed_at >= run_at:
            continue
        specs.append(
            JobSpec(
                id=f"ride-driver-reminder:{ride.id}:{minutes}",
                run_at=run_at,
                runner="ride-driver-reminder",
                arg=f"{ride.id}:{minutes}:{ride.driver_user_id}",
            )
        )
    return specs


def driver_reminder_message(ride: RideData, minutes: int, tr: Tr) -> Outgoing:
    text = tr(
        "ride_jobs.driver_reminder",
        id=ride.id,
        minutes=minutes,
        when=moment_text(ride.pickup_at, tr),
        pickup=cards.place_text(ride.pickup_text, tr),
        dest=cards.place_text(ride.dest_text, tr),
        rider=ride.rider_name or "—",
        phone=ride.rider_phone or "—",
        nav=cards.nav_link(ride.pickup_text, ride.pickup_lat, ride.pickup_lon),
    )
    return Outgoing(text, choices=cards.driver_buttons(ride, tr))


async def remind_driver(db: Database, env: Env, arg: str) -> None:
    ride_id, minutes, driver_id = (int(part) for part in arg.split(":"))
    async with db.transaction() as session:
        ride = await rides.get(session, ride_id)
        # Released, reassigned, cancelled or already picked up: nothing to remind of.
        if ride is None or ride.status not in _DRIVER_WAITING or ride.driver_user_id != driver_id:
            return
        driver = await users.get_user(session, driver_id)
        if driver is None:
            return
        await notify.to_user(
            session,
            driver,
            lambda tr: driver_reminder_message(ride, minutes, tr),
            kind="ride",
            dedupe_key=f"ride:{ride.id}:driver-reminder:{minutes}:{driver.id}",
        )


# -- 2. the evening before, for the rider -------------------------------------------


def evening_before(ride: RideData) -> datetime:
    return at_local(local(ride.pickup_at).date() - timedelta(days=1), RIDER_REMINDER_AT)


def rider_reminder_specs(ride: RideData, now: datetime) -> list[JobSpec]:
    run_at = evening_before(ride)
    # Booked after that evening, the booking itself was the reminder.
    if ride.status not in _RIDER_WAITING or ride.is_now or ride.created_at >= run_at:
        return []
    if now >= ride.pickup_at:
        return []
    return [JobSpec(f"ride-rider-reminder:{ride.id}", run_at, "ride-rider-reminder", str(ride.id))]


async def rider_or_booker(session: AsyncSession, ride: RideData) -> UserData | None:
    """The rider when they have an account, else whoever booked for them."""
    for user_id in (ride.rider_user_id, ride.booker_user_id):
        if user_id is not None:
            person = await users.get_user(session, user_id)
            if person is not None:
                return person
    return None


async def rider_reminder_text(session: AsyncSession, ride: RideData, tr: Tr) -> str:
    when = moment_text(ride.pickup_at, tr)
    clock = f"{local(ride.pickup_at):%H:%M}"
    dest = cards.place_text(ride.dest_text, tr)
    if ride.status is RideStatus.POSTED or ride.driver_user_id is None:
        return tr("ride_jobs.rider_reminder_open", id=ride.id, when=when, time=clock, dest=dest)
    driver = await users.get_user(session, ride.driver_user_id)
    card = (await cards.driver_card(session, driver))(tr) if driver is not None else ""
    head = tr("ride_jobs.rider_reminder_claimed", id=ride.id, when=when, time=clock, dest=dest)
    return f"{head}\n{card}".rstrip()


async def remind_rider(db: Database, env: Env, arg: str) -> None:
    async with db.transaction() as session:
        ride = await rides.get(session, int(arg))
        if ride is None or ride.status not in _RIDER_WAITING:
            return
        person = await rider_or_booker(session, ride)
        if person is None:
            return
        # The text needs the session (driver card), so build it before queueing.
        text = await rider_reminder_text(session, ride, Tr(person.language))
        await notify.to_user(
            session,
            person,
            lambda _tr: Outgoing(text),
            kind="ride",
            dedupe_key=f"ride:{ride.id}:evening-reminder:{person.id}",
        )


# -- 3. escalation ------------------------------------------------------------------


def first_escalation_at(ride: RideData) -> datetime:
    posted = ride.announced_at or ride.created_at
    if ride.is_now:
        return posted + ESCALATE_NOW_AFTER
    before = ride.pickup_at - ESCALATE_BEFORE_PICKUP
    # Posted (or released back) less than two hours ahead: give the group ten minutes first.
    return before if before > posted else posted + ESCALATE_NOW_AFTER


def escalation_specs(ride: RideData, now: datetime) -> list[JobSpec]:
    if ride.status is not RideStatus.POSTED or now >= ride.pickup_at + EXPIRE_AFTER:
        return []
    first = first_escalation_at(ride)
    # Round 1 belongs to one posting: a ride released back to the group is a new
    # posting (new announced_at, escalated_at cleared) and may need help again.
    epoch = _posting(ride)
    specs = []
    if ride.escalated_at is None:
        specs.append(
            JobSpec(f"ride-escalate:{ride.id}:1:{epoch}", first, "ride-escalate", f"{ride.id}:1:{epoch}")
        )
    # Pickup time and still nobody: staff are the last resort (not for "now" rides,
    # whose pickup time is when they were booked).
    if not ride.is_now and ride.pickup_at > first:
        specs.append(JobSpec(f"ride-escalate:{ride.id}:2", ride.pickup_at, "ride-escalate", f"{ride.id}:2"))
    return specs


def _posting(ride: RideData) -> int:
    """Which posting of the ride this is: the microsecond it was (re-)announced."""
    return int((ride.announced_at or ride.created_at).timestamp() * 1_000_000)


async def escalate(db: Database, env: Env, arg: str) -> None:
    parts = [int(part) for part in arg.split(":")]
    ride_id, round_no = parts[0], parts[1]
    epoch = parts[2] if len(parts) > 2 else 0
    async with db.transaction() as session:
        ride = await rides.get(session, ride_id)
        if ride is None or ride.status is not RideStatus.POSTED:
            return
        if round_no == 1:
            if ride.escalated_at is not None or (epoch and epoch != _posting(ride)):
                return  # an earlier posting's escalation
            # With no group, announce() alerts staff itself; the alert below covers that.
            if await news.group_of(session, ride) is not None:
                await news.announce(session, ride, again=True, round_no=epoch or 1)
            await rides.mark_announced(session, ride.id, escalated=True)
            # The waiting person is not left wondering: still looking, staff are helping.
            await news.tell_parties(
                session,
                ride,
                "ride_jobs.parties_escalated",
                dedupe=f"escalated:{epoch}",
                extra=await news.staff_contact(session, ride),
            )
        key = "ride_jobs.staff_escalated" if round_no == 1 else "ride_jobs.staff_still_open"
        await news.tell_staff(
            session,
            ride,
            key,
            dedupe=f"escalate:{round_no}:{epoch}",
            choices=lambda tr: cards.staff_ride_buttons(ride, tr),
        )


# -- 4. expiry ----------------------------------------------------------------------


def expiry_specs(ride: RideData, now: datetime) -> list[JobSpec]:
    if ride.status is not RideStatus.POSTED:
        return []
    return [JobSpec(f"ride-expire:{ride.id}", ride.pickup_at + EXPIRE_AFTER, "ride-expire", str(ride.id))]


async def expire_ride(db: Database, env: Env, arg: str) -> None:
    async with db.transaction() as session:
        if not await rides.expire(session, int(arg)):
            return  # claimed, cancelled or already expired meanwhile
        ride = await rides.get(session, int(arg))
        assert ride is not None
        await news.tell_parties(
            session,
            ride,
            "ride_jobs.expired",
            dedupe="expired",
            extra=await news.staff_contact(session, ride),
        )


# -- the ride source ----------------------------------------------------------------


async def ride_jobs(session: AsyncSession, env: Env, now: datetime) -> list[JobSpec]:
    """Every reminder, escalation and expiry the active rides imply."""
    specs: list[JobSpec] = []
    for ride in await rides.with_status(session, ACTIVE_RIDE):
        specs += driver_reminder_specs(ride, now, env.config.driver_reminders)
        specs += rider_reminder_specs(ride, now)
        specs += escalation_specs(ride, now)
        specs += expiry_specs(ride, now)
    return specs


# -- 5. recurring rides -------------------------------------------------------------


def occurrence_at(series: SeriesData, day: date) -> datetime:
    hours, minutes = (int(part) for part in series.time_of_day.split(":"))
    return at_local(day, time(hours, minutes))


def occurrences(series: SeriesData, start: datetime, end: datetime) -> list[datetime]:
    """Pickup times of the series in [start, end], from its first ride up to ``until``."""
    first = max(start, series.template.pickup_at)
    last = min(end, series.until)
    found = []
    day = local(first).date()
    while day <= local(last).date():
        if day.weekday() in series.weekdays:
            pickup = occurrence_at(series, day)
            if first <= pickup <= last:
                found.append(pickup)
        day += timedelta(days=1)
    return found


def series_specs(series: SeriesData, now: datetime) -> list[JobSpec]:
    # One day beyond the window, so each occurrence's job is planned before it is due.
    return [
        JobSpec(
            id=f"ride-occurrence:{series.id}:{local(pickup).date().isoformat()}",
            run_at=pickup - SERIES_AHEAD,
            runner="ride-occurrence",
            arg=f"{series.id}:{local(pickup).date().isoformat()}",
        )
        for pickup in occurrences(series, now, now + SERIES_AHEAD + timedelta(days=1))
    ]


async def series_jobs(session: AsyncSession, env: Env, now: datetime) -> list[JobSpec]:
    specs: list[JobSpec] = []
    for series in await ride_series.active(session):
        specs += series_specs(series, now)
    return specs


async def post_occurrence(session: AsyncSession, series: SeriesData, pickup: datetime) -> bool:
    """Create and announce one occurrence; nothing (False) if it exists already."""
    if not series.active or pickup > series.until or pickup < series.template.pickup_at:
        return False
    new = replace(series.template, pickup_at=pickup, series_id=series.id, is_now=False)
    group = await rides.group_for(session, new.community_id)
    try:
        # The unique (series_id, pickup_at) is the guard: a savepoint keeps the
        # surrounding transaction usable when another run was first.
        async with session.begin_nested():
            ride = await rides.create(session, new, group_id=group.id if group else None)
    except IntegrityError:
        return False
    await news.announce(session, ride)
    booker = await users.get_user(session, ride.booker_user_id)
    if booker is not None:
        await notify.to_user(
            session,
            booker,
            lambda tr: Outgoing(
                tr("ride_jobs.series_posted", id=ride.id, when=moment_text(ride.pickup_at, tr))
            ),
            kind="ride",
            dedupe_key=f"ride:{ride.id}:series-posted:{booker.id}",
        )
    return True


async def post_series_occurrence(db: Database, env: Env, arg: str) -> None:
    series_id, day = arg.split(":")
    async with db.transaction() as session:
        series = await ride_series.get(session, int(series_id))
        if series is not None:
            await post_occurrence(session, series, occurrence_at(series, date.fromisoformat(day)))


async def post_due_occurrences(db: Database, now: datetime) -> int:
    """The sweep: every active series' occurrences in the next 48 hours."""
    posted = 0
    async with db.transaction() as session:
        for series in await ride_series.active(session):
            for pickup in occurrences(series, now, now + SERIES_AHEAD):
                posted += await post_occurrence(session, series, pickup)
    return posted


async def sweep_series(db: Database, env: Env, _arg: str) -> None:
    # Periodic runners get no time; the sweep reads the clock it was given.
    await post_due_occurrences(db, env.now())


JOBS = Jobs(
    sources=(ride_jobs, series_jobs),
    runners={
        "ride-driver-reminder": remind_driver,
        "ride-rider-reminder": remind_rider,
        "ride-escalate": escalate,
        "ride-expire": expire_ride,
        "ride-occurrence": post_series_occurrence,
    },
    periodic=(Periodic(id="ride-series-sweep", every=SERIES_EVERY, run=sweep_series),),
)
