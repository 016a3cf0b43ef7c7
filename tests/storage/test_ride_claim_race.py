"""The claim race: many drivers press "claim" on the same ride at the same moment, and
exactly one of them gets it, on SQLite and PostgreSQL.

First straight through storage (one transaction per press, 20 drivers × 30 rides; the
50 × 200 run lives in bench/claim.py), then a run through the whole handler path with
real button presses in the group.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from datetime import timedelta

from sqlalchemy import String, cast, func, select, update
from sqlmodel import col

from dialogs.features import FEATURES
from dialogs.messages import ChatKind, Incoming, Kind, Sender
from dialogs.rides import news
from handlers.entry import Handler
from handlers.registry import Registry
from storage import rides, users
from storage.data import Role
from storage.engine import Database
from storage.models import OutboxMessage, utcnow
from storage.rides import ClaimResult, NewRide, Ride, RideEvent

DRIVERS = 20
RIDES = 30
# Rides raced at once: every press of a ride starts together, and several rides overlap.
RIDES_AT_ONCE = 10
GROUP = "-100900"
_updates = itertools.count(1)


async def make_people(db: Database, drivers: int) -> tuple[int, list[int]]:
    """A booker and ``drivers`` approved drivers; returns their ids."""
    async with db.transaction() as session:
        booker = await users.ensure_user(
            session, channel="telegram", external_id="1", chat_id="1", client_language="zh"
        )
        ids = []
        for n in range(drivers):
            ext = str(5000 + n)
            driver = await users.ensure_user(
                session, channel="telegram", external_id=ext, chat_id=ext, client_language="zh"
            )
            await users.grant_role(session, driver.id, Role.DRIVER)
            ids.append(driver.id)
    return booker.id, ids


async def make_rides(db: Database, booker: int, count: int) -> list[int]:
    async with db.transaction() as session:
        group = await rides.bind_group(
            session, channel="telegram", chat_id=GROUP, title="司机群", community_ids=[], bound_by=booker
        )
        made = []
        for n in range(count):
            ride = await rides.create(
                session,
                NewRide(
                    booker_user_id=booker,
                    rider_user_id=booker,
                    rider_name="王奶奶",
                    rider_phone="+8613812345678",
                    pickup_text=f"春和社区{n % 12 + 1}栋",
                    dest_text="武汉市中心医院",
                    pickup_at=utcnow() + timedelta(hours=1),
                ),
                group_id=group.id,
            )
            made.append(ride.id)
    return made


async def assert_one_driver_each(db: Database, ride_ids: list[int], winners: dict[int, int]) -> None:
    async with db.transaction() as session:
        rows = (await session.execute(select(Ride).where(col(Ride.id).in_(ride_ids)))).scalars()
        stored = {r.id: (r.status, r.driver_user_id) for r in rows}
        claimed_events = Counter(
            (
                await session.execute(
                    select(col(RideEvent.ride_id)).where(
                        col(RideEvent.event) == "claimed", col(RideEvent.ride_id).in_(ride_ids)
                    )
                )
            ).scalars()
        )
    assert stored == {rid: ("claimed", winners[rid]) for rid in ride_ids}
    assert claimed_events == Counter(ride_ids)  # one "claimed" event per ride, never two


async def test_many_drivers_many_rides_one_winner_each(db: Database) -> None:
    booker, drivers = await make_people(db, DRIVERS)
    ride_ids = await make_rides(db, booker, RIDES)
    rng = random.Random(3)

    async def press(ride_id: int, driver: int) -> tuple[int, int, ClaimResult]:
        async with db.transaction() as session:  # one transaction per press
            return ride_id, driver, await rides.claim(session, ride_id=ride_id, driver_user_id=driver)

    results: list[tuple[int, int, ClaimResult]] = []
    for start in range(0, RIDES, RIDES_AT_ONCE):
        presses = [(rid, d) for rid in ride_ids[start : start + RIDES_AT_ONCE] for d in drivers]
        rng.shuffle(presses)
        results += await asyncio.gather(*(press(rid, d) for rid, d in presses))

    outcome = Counter((rid, result) for rid, _, result in results)
    for rid in ride_ids:
        assert outcome[(rid, ClaimResult.WON)] == 1, rid
        assert outcome[(rid, ClaimResult.TAKEN)] == DRIVERS - 1, rid
    winners = {rid: d for rid, d, result in results if result is ClaimResult.WON}
    await assert_one_driver_each(db, ride_ids, winners)


def press(driver_ext: str, ride_id: int, post: str) -> Incoming:
    return Incoming(
        channel="telegram",
        sender=Sender(external_id=driver_ext, display_name=f"司机{driver_ext}", language_code="zh-hans"),
        chat_id=GROUP,
        chat_kind=ChatKind.GROUP,
        kind=Kind.CHOICE,
        update_id=f"race-{next(_updates)}",
        choice=f"a:claim:{ride_id}",
        message_ref=post,
    )


async def announce_delivered(db: Database, ride_ids: list[int]) -> dict[int, str]:
    """Post each ride in the group and mark the posts delivered, as the sender would:
    a claim counts only when pressed on its ride's post. Returns the posts' message ids."""
    async with db.transaction() as session:
        for ride_id in ride_ids:
            ride = await rides.get(session, ride_id)
            assert ride is not None
            await news.announce(session, ride)
        await session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.status) == "pending")
            .values(status="sent", sent_message_id=cast(col(OutboxMessage.id), String))
        )
        rows = await session.execute(
            select(col(OutboxMessage.dedupe_key), col(OutboxMessage.sent_message_id)).where(
                col(OutboxMessage.dedupe_key).like("ride:%:post:%")
            )
        )
        return {int(str(key).split(":")[1]): str(message_id) for key, message_id in rows.all()}


async def test_claim_race_through_the_handler(db: Database) -> None:
    drivers, count = 20, 10
    booker, driver_ids = await make_people(db, drivers)
    ride_ids = await make_rides(db, booker, count)
    handler = Handler(db, Registry.build(FEATURES))
    externals = [str(5000 + n) for n in range(drivers)]

    posts = await announce_delivered(db, ride_ids)

    async def one(ext: str, ride_id: int) -> tuple[str, int, str]:
        replies = await handler.handle(press(ext, ride_id, posts[ride_id]))
        (toast,) = [r.text for r in replies if r.toast]
        edits = [r for r in replies if r.edit_ref == posts[ride_id]]
        assert len(edits) == 1 and not edits[0].choices  # the post loses its button either way
        return ext, ride_id, toast

    presses = [(ext, rid) for rid in ride_ids for ext in externals]
    random.Random(5).shuffle(presses)
    results = await asyncio.gather(*(one(ext, rid) for ext, rid in presses))

    won = [(ext, rid) for ext, rid, toast in results if "接单成功" in toast]
    taken = [rid for _, rid, toast in results if "已被其他司机接走" in toast]
    assert sorted(rid for _, rid in won) == sorted(ride_ids)
    assert Counter(taken) == Counter({rid: drivers - 1 for rid in ride_ids})
    by_ext = dict(zip(externals, driver_ids, strict=True))
    await assert_one_driver_each(db, ride_ids, {rid: by_ext[ext] for ext, rid in won})
    # Exactly one set of private details per ride, to the winner.
    async with db.transaction() as session:
        details = (
            await session.execute(
                select(col(OutboxMessage.chat_id), func.count())
                .where(col(OutboxMessage.dedupe_key).like("ride:%:driver:%"))
                .group_by(col(OutboxMessage.chat_id))
            )
        ).all()
    assert sum(n for _, n in details) == count
    assert {chat for chat, _ in details} == {ext for ext, _ in won}
