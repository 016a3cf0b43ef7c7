"""The booking race: 100 residents book a 3-seat slot at the same moment. Exactly three
get a seat and 97 are offered the waitlist (and all 97 can join it, in order), on
SQLite and PostgreSQL. The seats counter is one conditional UPDATE and a CHECK keeps
it within the seats, whatever the code above does."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from storage import legal
from storage.data import Role
from storage.engine import Database
from storage.legal import BookResult, LegalBooking, LegalSlot
from storage.models import utcnow
from tests.legal_world import person, request, slot

RESIDENTS = 100
SEATS = 3


async def test_hundred_residents_three_seats(db: Database) -> None:
    lawyer = await person(db, "7001", "李律师", role=Role.LAWYER)
    residents = [await person(db, str(8000 + n), f"居民{n}") for n in range(RESIDENTS)]
    target = await slot(db, lawyer, utcnow() + timedelta(days=2), seats=SEATS)

    async def press(n: int) -> tuple[int, BookResult]:
        async with db.transaction() as session:  # one transaction per press
            outcome = await legal.book(
                session, slot_id=target.id, request=request(residents[n]), now=utcnow()
            )
            return n, outcome.result

    results = await asyncio.gather(*(press(n) for n in range(RESIDENTS)))
    assert Counter(r for _, r in results) == {BookResult.BOOKED: SEATS, BookResult.FULL: RESIDENTS - SEATS}

    # The 97 who were told "full" join the waitlist, all at once: 97 places, in order.
    losers = [n for n, r in results if r is BookResult.FULL]

    async def join(n: int) -> int:
        async with db.transaction() as session:
            _, place = await legal.join_waitlist(session, slot_id=target.id, request=request(residents[n]))
            return place

    await asyncio.gather(*(join(n) for n in losers))
    async with db.transaction() as session:
        booked = (
            await session.execute(select(func.count()).where(col(LegalBooking.slot_id) == target.id))
        ).scalar_one()
        stored = await legal.get_slot(session, target.id)
        assert await legal.waiting_count(session, target.id) == RESIDENTS - SEATS
        places = sorted([await legal.position(session, w) for w in await _waits(session, target.id)])
    assert booked == SEATS
    assert stored is not None and stored.taken == SEATS
    assert places == list(range(1, RESIDENTS - SEATS + 1))


async def _waits(session, slot_id: int) -> list[legal.WaitData]:  # type: ignore[no-untyped-def]
    rows = (
        await session.execute(select(legal.LegalWait).where(col(legal.LegalWait.slot_id) == slot_id))
    ).scalars()
    return [legal._wait(r) for r in rows]


async def test_the_database_refuses_overbooking(db: Database) -> None:
    """Even code that skips the conditional UPDATE cannot overbook: the CHECK stops it."""
    lawyer = await person(db, "7002", "王律师", role=Role.LAWYER)
    target = await slot(db, lawyer, utcnow() + timedelta(days=1), seats=1)
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            await session.execute(update(LegalSlot).where(col(LegalSlot.id) == target.id).values(taken=2))
