"""Ride jobs under a controllable clock: reminders, escalation, expiry, recurring rides.

Each scenario plans jobs from rows, moves the clock, runs what is due, and "restarts"
(a new Jobs on the same database) to show nothing is lost or repeated.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

import pytest

from dialogs import rides as rides_feature
from dialogs.feature import Config, Env
from dialogs.messages import Outgoing
from dialogs.rides import jobs as ride_jobs
from dialogs.rides.jobs import LOCAL
from handlers.registry import Registry
from scheduler.jobs import Jobs
from storage import ride_series, rides, users
from storage.data import UserData
from storage.rides import DriverGroupData, NewRide, RideData, RideStatus
from tests.kit import Kit

GROUP_CHAT = "drivers-group"


@pytest.fixture(autouse=True)
def _no_failed_jobs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Jobs log their failures and carry on; here a failure fails the test."""
    yield
    failed = [r for r in caplog.records if r.name == "linli.scheduler" and r.levelno >= logging.ERROR]
    assert not failed, [r.getMessage() for r in failed]


class Clock:
    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    resident: UserData
    family: UserData
    driver: UserData
    driver2: UserData
    staff: UserData
    group: DriverGroupData | None


async def _world(kit: Kit, *, group: bool = True) -> World:
    async with kit.db.transaction() as session:
        people = {}
        for name in ("resident", "family", "driver", "driver2", "staff"):
            person = await users.find_by_external(session, channel="terminal", external_id=name)
            assert person is not None
            people[name] = person
        bound = None
        if group:
            bound = await rides.bind_group(
                session,
                channel="terminal",
                chat_id=GROUP_CHAT,
                title="司机群",
                community_ids=[],
                bound_by=people["staff"].id,
            )
    return World(**people, group=bound)


def _jobs(kit: Kit, clock: Clock, config: Config | None = None) -> Jobs:
    jobs = Jobs(kit.db, now=clock)
    Registry.build([rides_feature.FEATURE]).install_jobs(jobs, Env(config=config or Config(), clock=clock))
    return jobs


async def _restart(kit: Kit, clock: Clock, config: Config | None = None) -> Jobs:
    jobs = _jobs(kit, clock, config)
    await jobs.rebuild()
    return jobs


def _new_ride(world: World, pickup_at: datetime, **fields: object) -> NewRide:
    base = NewRide(
        booker_user_id=world.resident.id,
        rider_user_id=world.resident.id,
        rider_name="王奶奶",
        rider_phone="+8613800000001",
        pickup_text="春和社区3栋",
        dest_text="武汉协和医院",
        pickup_at=pickup_at,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


async def _ride(kit: Kit, world: World, pickup_at: datetime, **fields: object) -> RideData:
    async with kit.db.transaction() as session:
        group_id = world.group.id if world.group else None
        return await rides.create(session, _new_ride(world, pickup_at, **fields), group_id=group_id)


async def _claim(kit: Kit, ride: RideData, driver: UserData) -> None:
    async with kit.db.transaction() as session:
        assert await rides.claim(session, ride_id=ride.id, driver_user_id=driver.id) == rides.ClaimResult.WON


async def _get(kit: Kit, ride_id: int) -> RideData:
    async with kit.db.transaction() as session:
        ride = await rides.get(session, ride_id)
    assert ride is not None
    return ride


async def _sent(kit: Kit, chat: str, needle: str) -> list[Outgoing]:
    return [m for c, m in await kit.outbox() if c == chat and needle in m.text]


async def _sweep(jobs: Jobs) -> None:
    # Called directly (not through Jobs.run) so an exception fails the test.
    await jobs.runners["ride-series-sweep"](jobs.db, "")


def _run_date(jobs: Jobs, job_id: str) -> datetime | None:
    """When the job runs; an escalation's id also names its posting, so ids may go on."""
    job = jobs.scheduler.get_job(job_id) or next(
        (j for j in jobs.scheduler.get_jobs() if j.id.startswith(f"{job_id}:")), None
    )
    return None if job is None else job.trigger.run_date


# -- driver reminders ---------------------------------------------------------------


async def test_driver_reminders_fire_on_time_once_and_survive_restart(kit: Kit) -> None:
    world = await _world(kit)
    clock = Clock()
    pickup = clock.now + timedelta(hours=3)
    ride = await _ride(kit, world, pickup)
    await _claim(kit, ride, world.driver)

    jobs = await _restart(kit, clock)
    assert _run_date(jobs, f"ride-driver-reminder:{ride.id}:30") == pickup - timedelta(minutes=30)
    assert _run_date(jobs, f"ride-driver-reminder:{ride.id}:5") == pickup - timedelta(minutes=5)
    clock.now = pickup - timedelta(minutes=31)
    await jobs.run_due()
    assert await _sent(kit, "driver", "分钟接人") == []

    clock.now = pickup - timedelta(minutes=30)
    jobs = await _restart(kit, clock)
    await jobs.run_due()
    (reminder,) = await _sent(kit, "driver", "还有 30 分钟接人")
    assert "+8613800000001" in reminder.text  # the driver sees the full phone
    assert "uri.amap.com" in reminder.text
    assert f"a:ride_on_way:{ride.id}" in [c.data for c in reminder.all_choices()]

    # Ran once: neither running again nor a restart repeats it; the 5-minute one waits.
    await jobs.run_due()
    jobs = await _restart(kit, clock)
    assert _run_date(jobs, f"ride-driver-reminder:{ride.id}:30") is None
    assert _run_date(jobs, f"ride-driver-reminder:{ride.id}:5") == pickup - timedelta(minutes=5)
    await jobs.run_due()
    assert len(await _sent(kit, "driver", "分钟接人")) == 1

    clock.now = pickup - timedelta(minutes=5)
    await jobs.run_due()
    await (await _restart(kit, clock)).run_due()
    assert len(await _sent(kit, "driver", "还有 5 分钟接人")) == 1
    assert len(await _sent(kit, "driver", "分钟接人")) == 2


async def test_driver_reminder_follows_release_and_cancel(kit: Kit) -> None:
    world = await _world(kit)
    clock = Clock()
    pickup = clock.now + timedelta(hours=3)
    handed_over = await _ride(kit, world, pickup)
    cancelled = await _ride(kit, world, pickup + timedelta(minutes=1))
    await _claim(kit, handed_over, world.driver)
    await _claim(kit, cancelled, world.driver)
    async with kit.db.transaction() as session:
        await rides.release(session, ride_id=handed_over.id, driver_user_id=world.driver.id, reason="病了")
        await rides.cancel(session, ride_id=cancelled.id, by_user_id=world.resident.id)
    await _claim(kit, handed_over, world.driver2)

    clock.now = pickup - timedelta(minutes=30)
    await (await _restart(kit, clock)).run_due()
    assert await _sent(kit, "driver", "分钟接人") == []
    (reminder,) = await _sent(kit, "driver2", "分钟接人")
    assert f"#{handed_over.id}" in reminder.text


async def test_driver_reminder_minutes_are_configurable(kit: Kit) -> None:
    world = await _world(kit)
    clock = Clock()
    ride = await _ride(kit, world, clock.now + timedelta(hours=3))
    await _claim(kit, ride, world.driver)
    jobs = await _restart(kit, clock, Config(driver_reminders=(60,)))
    assert _run_date(jobs, f"ride-driver-reminder:{ride.id}:60") is not None
    assert _run_date(jobs, f"ride-driver-reminder:{ride.id}:30") is None


# -- escalation and expiry -------------------------------------------------------------


async def test_unclaimed_ride_escalates_once_then_expires(kit: Kit) -> None:
    world = await _world(kit)
    clock = Clock()
    pickup = clock.now + timedelta(hours=5)
    ride = await _ride(kit, world, pickup)
    jobs = await _restart(kit, clock)
    assert _run_date(jobs, f"ride-escalate:{ride.id}:1") == pickup - timedelta(hours=2)
    assert _run_date(jobs, f"ride-escalate:{ride.id}:2") == pickup
    assert _run_date(jobs, f"ride-expire:{ride.id}") == pickup + timedelta(hours=1)

    clock.now = pickup - timedelta(hours=2, minutes=1)
    await jobs.run_due()
    assert await _sent(kit, GROUP_CHAT, "还没有司机接单") == []

    clock.now = pickup - timedelta(hours=2)
    for _ in range(2):
        await jobs.run_due()
        await (jobs := await _restart(kit, clock)).run_due()
    (again,) = await _sent(kit, GROUP_CHAT, "还没有司机接单")
    assert f"a:claim:{ride.id}" in [c.data for c in again.all_choices()]
    (alert,) = await _sent(kit, "staff", "迟迟没有司机接单")
    assert f"a:ride_assign:{ride.id}" in [c.data for c in alert.all_choices()]
    assert (await _get(kit, ride.id)).escalated_at is not None
    # The waiting person hears it too: still looking, staff are helping (issue 8).
    (waiting,) = await _sent(kit, "resident", "还在找")
    assert "社区工作人员也在帮忙" in waiting.text and "社区工作人员" in waiting.text.split("\n")[-1]

    clock.now = pickup
    await jobs.run_due()
    await (await _restart(kit, clock)).run_due()
    assert len(await _sent(kit, "staff", "已到上车时间")) == 1
    assert len(await _sent(kit, GROUP_CHAT, "还没有司机接单")) == 1  # round 2 is staff only

    clock.now = pickup + timedelta(minutes=59)
    await jobs.run_due()
    assert (await _get(kit, ride.id)).status is RideStatus.POSTED
    clock.now = pickup + timedelta(hours=1)
    await jobs.run_due()
    await (await _restart(kit, clock)).run_due()
    assert (await _get(kit, ride.id)).status is RideStatus.EXPIRED
    (sorry,) = await _sent(kit, "resident", "没有找到司机")
    assert "联系社区" in sorry.text


async def test_claimed_and_cancelled_rides_neither_escalate_nor_expire(kit: Kit) -> None:
    world = await _world(kit)
    clock = Clock()
    pickup = clock.now + timedelta(hours=5)
    claimed = await _ride(kit, world, pickup)
    cancelled = await _ride(kit, world, pickup)
    await _claim(kit, claimed, world.driver)
    jobs = await _restart(kit, clock)
    async with kit.db.transaction() as session:
        await rides.cancel(session, ride_id=cancelled.id, by_user_id=world.resident.id)

    clock.now = pickup + timedelta(hours=2)
    await jobs.run_due()  # the cancelled ride's jobs were planned before it was cancelled
    await (await _restart(kit, clock)).run_due()
    assert await _sent(kit, GROUP_CHAT, "还没有司机接单") == []
    assert [m for c, m in await kit.outbox() if c == "staff"] == []
    assert (await _get(kit, claimed.id)).status is RideStatus.CLAIMED
    assert (await _get(kit, cancelled.id)).status is RideStatus.CANCELLED
    assert await _sent(kit, "resident", "没有找到司机") == []


async def test_now_ride_escalates_after_ten_minutes_without_group(kit: Kit) -> None:
    world = await _world(kit, group=False)
    clock = Clock()
    ride = await _ride(kit, world, clock.now, is_now=True)
    jobs = await _restart(kit, clock)
    assert _run_date(jobs, f"ride-escalate:{ride.id}:2") is None
    clock.now += timedelta(minutes=9)
    await jobs.run_due()
    assert [m for c, m in await kit.outbox() if c == "staff"] == []
    clock.now += timedelta(minutes=1, seconds=30)
    await jobs.run_due()
    await (await _restart(kit, clock)).run_due()
    # No group to re-post in: one staff alert (with the assign button), not two.
    (alert,) = [m for c, m in await kit.outbox() if c == "staff"]
    assert "迟迟没有司机接单" in alert.text


async def test_late_booking_escalates_ten_minutes_after_posting(kit: Kit) -> None:
    world = await _world(kit)
    clock = Clock()
    ride = await _ride(kit, world, clock.now + timedelta(hours=1))
    jobs = await _restart(kit, clock)
    planned = _run_date(jobs, f"ride-escalate:{ride.id}:1")
    assert ride.announced_at is not None and planned == ride.announced_at + timedelta(minutes=10)


# -- the evening before --------------------------------------------------------------


def _day_after_tomorrow(at: time) -> datetime:
    today = datetime.now(UTC).astimezone(LOCAL).date()
    return datetime.combine(today + timedelta(days=2), at, tzinfo=LOCAL)


async def test_evening_before_reminder(kit: Kit) -> None:
    world = await _world(kit)
    clock = Clock()
    pickup = _day_after_tomorrow(time(15, 0))
    open_ride = await _ride(kit, world, pickup)
    claimed = await _ride(kit, world, pickup + timedelta(minutes=30))
    await _claim(kit, claimed, world.driver)
    # Booked by family for someone without an account: the booker hears it.
    proxy = await _ride(
        kit, world, pickup, booker_user_id=world.family.id, rider_user_id=None, relation="family"
    )
    evening = datetime.combine(pickup.date() - timedelta(days=1), time(20, 0), tzinfo=LOCAL)
    jobs = await _restart(kit, clock)
    assert _run_date(jobs, f"ride-rider-reminder:{open_ride.id}") == evening

    clock.now = evening - timedelta(minutes=1)
    await jobs.run_due()
    assert await _sent(kit, "resident", "温馨提醒") == []

    clock.now = evening
    await jobs.run_due()
    await (await _restart(kit, clock)).run_due()
    (still_open,) = await _sent(kit, "resident", f"行程 #{open_ride.id}，")
    assert "还在为您找司机" in still_open.text and "15:00" in still_open.text
    (coming,) = await _sent(kit, "resident", f"行程 #{claimed.id}，")
    assert "有车来接您" in coming.text and "陈师傅" in coming.text
    (for_family,) = await _sent(kit, "family", "温馨提醒")
    assert f"#{proxy.id}" in for_family.text


async def test_no_evening_reminder_for_rides_booked_after_it(kit: Kit) -> None:
    world = await _world(kit)
    pickup = _day_after_tomorrow(time(9, 0))
    ride = await _ride(kit, world, pickup)
    evening = ride_jobs.evening_before(ride)
    assert evening == datetime.combine(pickup.date() - timedelta(days=1), time(20, 0), tzinfo=LOCAL)
    assert ride_jobs.rider_reminder_specs(ride, ride.created_at)
    late = replace(ride, created_at=evening + timedelta(minutes=1))
    assert ride_jobs.rider_reminder_specs(late, late.created_at) == []


# -- recurring rides -------------------------------------------------------------------


def _sunday_noon() -> datetime:
    """A Sunday at least a week ahead, 12:00 in Wuhan: far from real time, nothing else due."""
    day = datetime.now(UTC).astimezone(LOCAL).date() + timedelta(days=7)
    day += timedelta(days=(6 - day.weekday()) % 7)
    return datetime.combine(day, time(12, 0), tzinfo=LOCAL)


async def _series_rides(kit: Kit, booker: UserData, series_id: int) -> list[RideData]:
    async with kit.db.transaction() as session:
        found = await rides.for_person(session, booker.id, limit=100)
    return sorted((r for r in found if r.series_id == series_id), key=lambda r: r.pickup_at)


async def test_recurring_rides_posted_ahead_once_until_the_end(kit: Kit) -> None:
    world = await _world(kit)
    sunday = _sunday_noon()
    start: date = sunday.date()
    async with kit.db.transaction() as session:
        series = await ride_series.create(
            session,
            template=_new_ride(world, sunday, note="透析"),
            weekdays=(0, 2),  # Monday and Wednesday
            time_of_day="08:30",
            until=datetime.combine(start + timedelta(days=9), time(23, 0), tzinfo=LOCAL),
        )
    clock = Clock(sunday)
    jobs = await _restart(kit, clock)

    # Sunday noon: Monday 08:30 is within 48 hours, Wednesday not yet.
    await _sweep(jobs)
    await _sweep(jobs)
    await jobs.run_due()
    await (jobs := await _restart(kit, clock)).run_due()
    posted = await _series_rides(kit, world.resident, series.id)
    assert [r.pickup_at for r in posted] == [sunday + timedelta(hours=20, minutes=30)]

    # Monday noon: Wednesday's occurrence job is due (48 h ahead), no sweep needed.
    clock.now = sunday + timedelta(days=1)
    await jobs.run_due()
    await (jobs := await _restart(kit, clock)).run_due()
    clock.now = sunday + timedelta(days=7)
    await _sweep(jobs)
    await (jobs := await _restart(kit, clock)).run_due()
    # Tuesday of the second week: Wednesday is after `until`.
    clock.now = sunday + timedelta(days=9)
    await _sweep(jobs)
    await (await _restart(kit, clock)).run_due()

    posted = await _series_rides(kit, world.resident, series.id)
    local_times = [r.pickup_at.astimezone(LOCAL) for r in posted]
    assert [(t.date(), f"{t:%H:%M}") for t in local_times] == [
        (start + timedelta(days=1), "08:30"),
        (start + timedelta(days=3), "08:30"),
        (start + timedelta(days=8), "08:30"),
    ]
    assert all(r.note == "透析" and not r.is_now for r in posted)
    told = await _sent(kit, "resident", "每周的车已为您发布")
    assert sorted(m.text.split("#")[1].split("，")[0] for m in told) == sorted(str(r.id) for r in posted)
    new_posts = await _sent(kit, GROUP_CHAT, "新的用车请求")
    assert len(new_posts) == 3


async def test_stopped_and_ended_series_are_left_alone(kit: Kit) -> None:
    world = await _world(kit)
    sunday = _sunday_noon()
    async with kit.db.transaction() as session:
        stopped = await ride_series.create(
            session,
            template=_new_ride(world, sunday),
            weekdays=(0,),
            time_of_day="08:30",
            until=sunday + timedelta(days=30),
        )
        await ride_series.stop(session, series_id=stopped.id, booker_user_id=world.resident.id)
        ended = await ride_series.create(
            session,
            template=_new_ride(world, sunday - timedelta(days=14)),
            weekdays=(0, 1, 2, 3, 4, 5, 6),
            time_of_day="08:30",
            until=sunday - timedelta(days=1),
        )
    clock = Clock(sunday)
    jobs = await _restart(kit, clock)
    await _sweep(jobs)
    await jobs.run_due()
    assert await _series_rides(kit, world.resident, stopped.id) == []
    assert await _series_rides(kit, world.resident, ended.id) == []


async def test_a_released_ride_can_escalate_again(kit: Kit) -> None:
    """Escalated, claimed, then released: the new posting gets its own escalation."""
    world = await _world(kit)
    clock = Clock()
    ride = await _ride(kit, world, clock.now, is_now=True)
    jobs = await _restart(kit, clock)
    clock.now += timedelta(minutes=11)
    await jobs.run_due()

    async def alerts() -> int:
        return len([m for c, m in await kit.outbox() if c == "staff" and "迟迟没有司机接单" in m.text])

    assert await alerts() == 1
    await _claim(kit, ride, world.driver)
    async with kit.db.transaction() as session:
        assert await rides.release(session, ride_id=ride.id, driver_user_id=world.driver.id, reason="车坏了")
    # (Storage stamps the new posting with the real time, which this clock is past.)
    await jobs.resync()
    await jobs.run_due()
    assert await alerts() == 2
    await (await _restart(kit, clock)).run_due()
    assert await alerts() == 2
