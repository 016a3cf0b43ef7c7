"""Scheduled jobs come from database rows: rebuilt after a restart, fired once, on time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dialogs.applications import FEATURE
from dialogs.feature import Env
from handlers.registry import Registry
from scheduler.jobs import Jobs
from storage import applications
from storage.data import Role
from tests.conftest import STAFF_ID
from tests.kit import Kit


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def _jobs(kit: Kit, clock: Clock) -> Jobs:
    jobs = Jobs(kit.db, now=clock)
    Registry.build([FEATURE]).install_jobs(jobs, Env(clock=clock))
    return jobs


async def test_application_reminder_survives_restart_and_fires_once(kit: Kit) -> None:
    staff = kit.person(STAFF_ID, "Staff")
    await kit.onboard(staff)
    driver = kit.person("601", "Driver")
    await kit.onboard(driver, phone="13800005555")
    await driver.send("/driver")
    await driver.send("鄂A12345")
    await driver.send("白色朗逸")
    await driver.click("提交")
    async with kit.db.transaction() as session:
        (app,) = await applications.pending(session)

    clock = Clock()
    first = _jobs(kit, clock)
    assert await first.rebuild() == 1
    job = first.scheduler.get_job(f"application-reminder:{app.id}")
    assert job is not None
    assert job.trigger.run_date == app.created_at + timedelta(hours=24)
    assert await first.run_due() == 0  # not yet

    # "Restart": a brand-new scheduler finds the same job in the database.
    clock.now += timedelta(hours=25)
    second = _jobs(kit, clock)
    assert await second.rebuild() == 1
    assert await second.run_due() == 1
    reminders = [m for m in await staff.inbox() if "24 小时" in m.text]
    assert len(reminders) == 1
    # A job that ran is recorded: neither running again nor a restart repeats it.
    assert await second.run_due() == 0
    assert await _jobs(kit, clock).rebuild() == 0
    assert len([m for m in await staff.inbox() if "24 小时" in m.text]) == 1

    approve = reminders[0].all_choices()[0].data
    await staff.press(approve)
    assert (await driver.data()).has(Role.DRIVER)


async def test_resync_follows_the_rows(kit: Kit) -> None:
    """Rows written after start-up get their jobs, and jobs whose rows went away are dropped."""
    clock = Clock()
    jobs = _jobs(kit, clock)
    assert await jobs.rebuild() == 0
    driver = kit.person("602", "Driver")
    await kit.onboard(driver, phone="13800005556")
    await driver.send("/driver")
    await driver.send("鄂A12345")
    await driver.send("白色朗逸")
    await driver.click("提交")
    assert await jobs.resync() == 1
    async with kit.db.transaction() as session:
        (app,) = await applications.pending(session)
    assert jobs.scheduler.get_job(f"application-reminder:{app.id}") is not None
    async with kit.db.transaction() as session:
        await applications.decide(session, application_id=app.id, approve=False, staff_user_id=app.user_id)
    assert await jobs.resync() == 0
    assert jobs.scheduler.get_job(f"application-reminder:{app.id}") is None
