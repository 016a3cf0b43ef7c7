"""Legal jobs under a controllable clock: reminders 24 h and 1 h before to both sides,
surviving a restart without repeats; waitlist offers that expire and pass to the next
in line; an offer taken with its button."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest

from dialogs import legal as legal_feature
from dialogs.feature import Env
from dialogs.legal import buttons, cards, service
from handlers.registry import Registry
from scheduler.jobs import Jobs
from storage import legal
from storage.data import Role
from storage.engine import Database
from storage.legal import BookingStatus, WaitStatus
from tests.conftest import STAFF_ID
from tests.kit import Kit
from tests.legal_world import Clock, monday_morning, person, request, slot


@pytest.fixture(autouse=True)
def _no_failed_jobs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    yield
    failed = [r for r in caplog.records if r.name == "linli.scheduler" and r.levelno >= logging.ERROR]
    assert not failed, [r.getMessage() for r in failed]


def _jobs(db: Database, clock: Clock) -> Jobs:
    jobs = Jobs(db, now=clock)
    Registry.build([legal_feature.FEATURE]).install_jobs(jobs, Env(clock=clock))
    return jobs


async def test_reminders_both_sides_survive_restart_once(db: Database) -> None:
    clock = Clock(monday_morning())
    kit = await Kit.create(db, staff_ids=[STAFF_ID], clock=clock)
    lawyer = await person(db, "7101", "李律师", role=Role.LAWYER)
    resident = await person(db, "7102", "王奶奶")
    starts = clock.now + timedelta(days=2)
    target = await slot(db, lawyer, starts)
    async with db.transaction() as session:
        booked = await legal.book(session, slot_id=target.id, request=request(resident), now=clock.now)
    assert booked.booking is not None

    jobs = _jobs(db, clock)
    await jobs.rebuild()
    assert await jobs.run_due() == 0
    clock.now = starts - timedelta(hours=24)
    assert await jobs.run_due() == 1
    # A restart: a new scheduler from the same rows runs nothing twice.
    jobs = _jobs(db, clock)
    await jobs.rebuild()
    assert await jobs.run_due() == 0
    clock.now = starts - timedelta(minutes=59)
    jobs = _jobs(db, clock)  # and another restart before the 1-hour reminder
    await jobs.rebuild()
    assert await jobs.run_due() == 1
    sent = await kit.outbox()
    to_resident = [m.text for chat, m in sent if chat == "7102" and "提醒" in m.text]
    to_lawyer = [m.text for chat, m in sent if chat == "7101" and "提醒" in m.text]
    assert len(to_resident) == 2 and "24" in to_resident[0] and "1 小时" in to_resident[1]
    assert len(to_lawyer) == 2 and "王奶奶" in to_lawyer[0]


async def test_no_reminder_after_cancel(db: Database) -> None:
    clock = Clock(monday_morning())
    kit = await Kit.create(db, clock=clock)
    lawyer = await person(db, "7201", "李律师", role=Role.LAWYER)
    resident = await person(db, "7202", "王奶奶")
    starts = clock.now + timedelta(days=2)
    target = await slot(db, lawyer, starts)
    async with db.transaction() as session:
        booked = await legal.book(session, slot_id=target.id, request=request(resident), now=clock.now)
        assert booked.booking is not None
        await legal.cancel_booking(session, booking_id=booked.booking.id)
    jobs = _jobs(db, clock)
    clock.now = starts - timedelta(minutes=30)
    assert await jobs.run_due() == 0
    assert not [m for _, m in await kit.outbox() if "提醒" in m.text]


async def test_waitlist_offer_expires_then_next_in_line_accepts(db: Database) -> None:
    clock = Clock(monday_morning())
    kit = await Kit.create(db, clock=clock)
    lawyer = await person(db, "7301", "李律师", role=Role.LAWYER)
    first, second, third = [await person(db, str(7302 + n), f"居民{n}") for n in range(3)]
    target = await slot(db, lawyer, clock.now + timedelta(days=1), seats=1)
    async with db.transaction() as session:
        held = await legal.book(session, slot_id=target.id, request=request(first), now=clock.now)
        assert held.booking is not None
        assert (
            await legal.book(session, slot_id=target.id, request=request(second), now=clock.now)
        ).booking is None
        wait_b, _ = await legal.join_waitlist(session, slot_id=target.id, request=request(second))
        wait_c, place = await legal.join_waitlist(session, slot_id=target.id, request=request(third))
        assert place == 2
    # The first resident cancels: the seat is held for the first in line.
    async with db.transaction() as session:
        await legal.cancel_booking(session, booking_id=held.booking.id)
        offer = await service.free_seat(session, slot_id=target.id, now=clock.now)
        assert offer is not None and offer.id == wait_b.id
        still = await legal.get_slot(session, target.id)
        assert still is not None and still.taken == 1  # held, not free for anyone else
        assert (
            await legal.book(session, slot_id=target.id, request=request(first), now=clock.now)
        ).booking is None
    assert any("有空位了" in m.text for chat, m in await kit.outbox() if chat == second.external_id)

    # Nobody answers: the offer expires with the clock and passes to the next.
    jobs = _jobs(db, clock)
    await jobs.rebuild()
    assert await jobs.run_due() == 0
    clock.now += cards.OFFER_HOLD + timedelta(seconds=1)
    assert await jobs.run_due() == 1
    async with db.transaction() as session:
        b = await legal.get_wait(session, wait_b.id)
        c = await legal.get_wait(session, wait_c.id)
    assert b is not None and b.status is WaitStatus.EXPIRED
    assert c is not None and c.status is WaitStatus.OFFERED
    assert any("已过期" in m.text for chat, m in await kit.outbox() if chat == second.external_id)

    # The second resident's late press is refused kindly; the third takes the seat.
    late = kit.person(second.external_id, second.display_name)
    await late.press(buttons.AcceptOffer(wait=wait_b.id).pack())
    assert "过期" in late.text()
    taker = kit.person(third.external_id, third.display_name)
    await taker.press(buttons.AcceptOffer(wait=wait_c.id).pack())
    assert "预约成功" in taker.text()
    async with db.transaction() as session:
        (booking,) = await legal.for_resident(session, third.id)
        final = await legal.get_slot(session, target.id)
    assert booking.status is BookingStatus.BOOKED
    assert final is not None and final.taken == 1
    # Someone else's offer button is refused (and audited by the entry).
    await late.press(buttons.DeclineOffer(wait=wait_c.id).pack())
    assert "不是您的预约" in late.text()
