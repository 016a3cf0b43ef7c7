"""What the ride service keeps about a person (/mydata) and how it lets go (/forget)."""

from __future__ import annotations

from dialogs import notify
from dialogs.core import Context
from dialogs.i18n import Tr
from dialogs.messages import Outgoing
from dialogs.rides import cards
from storage import outbox, ride_series, rides, updates, users
from storage.rides import RideData


async def mydata(ctx: Context) -> list[str]:
    """Rides booked by or for the person, and rides they drove."""
    booked = await rides.for_person(ctx.session, ctx.user.id, limit=20)
    driven = await rides.for_driver(ctx.session, ctx.user.id, limit=20)
    if not booked and not driven:
        return []
    lines = [ctx.t("mydata.rides_title", booked=len(booked), driven=len(driven))]
    for ride in booked + driven:
        lines.append(
            ctx.t(
                "mydata.ride_line",
                id=ride.id,
                when=cards.when_text(ride, ctx.tr),
                dest=ride.dest_text or "—",
                status=ctx.t(f"rides.status_{ride.status.value}"),
            )
        )
    return ["\n".join(lines)]


async def erase(ctx: Context, user_id: int) -> None:
    """/forget: the person's weekly rides stop; their open rides are cancelled and the
    drivers told; every ride, post and message about them keeps nothing that says who
    they are or what they wrote. Rides they booked for someone else go on (the rider
    depends on them)."""
    session = ctx.session
    await ride_series.erase_person(session, user_id)
    # Messages about their rides first (group posts, drivers' details, staff alerts)…
    ridden = await rides.ids_ridden_by(session, user_id)
    await outbox.erase_about(session, [f"ride:{ride_id}:" for ride_id in ridden])
    words: list[str] = []
    for ride_id in ridden:
        ride = await rides.get(session, ride_id)
        if ride is not None:
            words += [ride.rider_name, ride.rider_phone or "", ride.pickup_text, ride.dest_text, ride.note]
    await updates.forget_replies_mentioning(session, words)
    # …then the open rides end, with a note to their drivers that names nobody.
    for ride in await rides.active_for_rider(session, user_id):
        cancelled = await rides.cancel(session, ride_id=ride.id, by_user_id=user_id, reason="rider left")
        if cancelled is not None and cancelled.driver_user_id is not None:
            await _tell_driver(ctx, cancelled)
    await rides.erase_person(session, user_id)


async def _tell_driver(ctx: Context, ride: RideData) -> None:
    assert ride.driver_user_id is not None
    driver = await users.get_user(ctx.session, ride.driver_user_id)
    if driver is None:
        return

    def build(tr: Tr) -> Outgoing:
        return Outgoing(tr("ride_request.cancelled_driver", id=ride.id, when=cards.when_text(ride, tr)))

    await notify.to_user(
        ctx.session, driver, build, kind="ride", dedupe_key=f"ride:{ride.id}:erased:{driver.id}"
    )
