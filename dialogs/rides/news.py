"""Who hears what about a ride, through the outbox: the group post, milestones for
rider and booker, alerts for staff. Steps, button actions and jobs all use these,
so a ride's news reads the same whoever caused it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dialogs import notify
from dialogs.i18n import Tr
from dialogs.messages import Choice, Outgoing
from dialogs.rides import cards
from dialogs.validate import show_phone
from storage import communities, rides, users
from storage.data import Role, UserData
from storage.rides import DriverGroupData, RideData


async def parties(session: AsyncSession, ride: RideData) -> list[UserData]:
    """Rider and booker (once each): the people told about every milestone."""
    found: list[UserData] = []
    for user_id in (ride.rider_user_id, ride.booker_user_id):
        if user_id is not None and all(u.id != user_id for u in found):
            user = await users.get_user(session, user_id)
            if user is not None:
                found.append(user)
    return found


async def staff_contact(session: AsyncSession, ride: RideData) -> Callable[[Tr], str]:
    """The "contact community staff" line: the community office's phone, where known."""
    community = await communities.get_community(session, ride.community_id) if ride.community_id else None
    phone = show_phone(community.phone) if community is not None and community.phone else ""

    def line(tr: Tr) -> str:
        if not phone or community is None:
            return tr("rides.staff_contact_unknown")
        return tr("rides.staff_contact", community=community.label(tr.lang), phone=phone)

    return line


async def tell_parties(
    session: AsyncSession,
    ride: RideData,
    key: str,
    *,
    dedupe: str,
    extra: Callable[[Tr], str] | None = None,
    choices: Callable[[Tr], list[list[Choice]]] | None = None,
    **fields: Any,
) -> int:
    """One milestone message (catalog ``key``) to rider and booker, at most once each."""

    def build(tr: Tr) -> Outgoing:
        text = tr(key, id=ride.id, when=cards.when_text(ride, tr), **fields)
        if extra is not None:
            text = f"{text}\n{extra(tr)}"
        return Outgoing(text, choices=choices(tr) if choices else [])

    return await notify.to_users(
        session, await parties(session, ride), build, kind="ride", dedupe=f"ride:{ride.id}:{dedupe}"
    )


async def tell_booker(
    session: AsyncSession,
    ride: RideData,
    key: str,
    *,
    dedupe: str,
    extra: Callable[[Tr], str] | None = None,
) -> None:
    booker = await users.get_user(session, ride.booker_user_id)
    if booker is not None:

        def build(tr: Tr) -> Outgoing:
            text = tr(key, id=ride.id, when=cards.when_text(ride, tr))
            return Outgoing(f"{text}\n{extra(tr)}" if extra is not None else text)

        await notify.to_user(
            session,
            booker,
            build,
            kind="ride",
            dedupe_key=f"ride:{ride.id}:{dedupe}:{booker.id}",
        )


async def tell_staff(
    session: AsyncSession,
    ride: RideData,
    key: str,
    *,
    dedupe: str,
    choices: Callable[[Tr], list[list[Choice]]] | None = None,
    **fields: Any,
) -> int:
    booker = await users.get_user(session, ride.booker_user_id)
    booker_name = cards.person_name(booker, ride.booker_user_id)
    booker_phone = show_phone(booker.phone) if booker is not None and booker.phone else "—"

    def build(tr: Tr) -> Outgoing:
        body = cards.ride_lines(ride, tr, phone=show_phone(ride.rider_phone))
        # Staff phone back whoever booked: name them, and how they relate to the rider.
        relation = tr(f"rides.relation_{ride.relation}")
        by = tr("rides.booked_by", name=booker_name, phone=booker_phone, relation=relation)
        text = f"{tr(key, id=ride.id, **fields)}\n{body}\n{by}"
        return Outgoing(text, choices=choices(tr) if choices else [])

    staff = await users.users_with_role(session, Role.STAFF)
    return await notify.to_users(session, staff, build, kind="ride", dedupe=f"ride:{ride.id}:{dedupe}")


async def group_of(session: AsyncSession, ride: RideData) -> DriverGroupData | None:
    """The ride's driver group: the one it was posted in, else the one serving its community."""
    group = await rides.get_group(session, ride.group_id) if ride.group_id is not None else None
    return group or await rides.group_for(session, ride.community_id)


async def announce(session: AsyncSession, ride: RideData, *, again: bool = False, round_no: int = 0) -> None:
    """Post the ride in its driver group; with no group, staff must find a driver."""
    group = await group_of(session, ride)
    if group is None:
        await tell_staff(
            session,
            ride,
            "rides.staff_no_group",
            dedupe=f"nogroup:{round_no}",
            choices=lambda tr: cards.staff_ride_buttons(ride, tr),
        )
        return
    await notify.to_group(
        session,
        channel=group.channel,
        chat_id=group.chat_id,
        message=cards.group_post(ride, cards.group_tr(), again=again),
        kind="ride-post",
        dedupe_key=f"ride:{ride.id}:post:{round_no}",
    )
