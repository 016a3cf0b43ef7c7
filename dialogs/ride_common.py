"""What every part of the ride service shares: how a ride is shown to each party, map
links, and the messages that go out through the outbox (group post, driver details,
news for rider and booker, staff alerts).

Who sees what: the driver group sees the rider's phone masked; the claiming driver
sees it in full; the rider and booker see the driver's name, car, plate and phone.
Everything here works on a session, so dialogs, button actions and scheduled jobs
all send the same messages.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.i18n import t
from dialogs.messages import Choice, Outgoing
from dialogs.timeparse import describe
from dialogs.validate import mask_phone
from storage import applications, outbox, rides, users
from storage.data import DriverGroupData, RideData, RideStatus, Role, UserData
from storage.models import utcnow

Tr = Callable[..., str]


def translator(lang: str) -> Tr:
    def tr(key: str, **fields: Any) -> str:
        return t(lang, key, **fields)

    return tr


# -- maps ---------------------------------------------------------------------------

_A = 6378245.0  # Krasovsky 1940, the ellipsoid GCJ-02 is defined on
_EE = 0.00669342162296594323


def _outside_china(lat: float, lon: float) -> bool:
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _dlat(x: float, y: float) -> float:
    r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    r += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    r += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    r += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return r


def _dlon(x: float, y: float) -> float:
    r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    r += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    r += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    r += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return r


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """Stored coordinates are WGS-84; Chinese maps (Amap) expect GCJ-02 inside China."""
    if _outside_china(lat, lon):
        return lat, lon
    dlat, dlon = _dlat(lon - 105.0, lat - 35.0), _dlon(lon - 105.0, lat - 35.0)
    rad = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * math.cos(rad) * math.pi)
    return lat + dlat, lon + dlon


def nav_link(text: str, lat: float | None, lon: float | None) -> str:
    """An Amap link that opens navigation on a phone (a search when only an address is known)."""
    if lat is not None and lon is not None:
        glat, glon = wgs84_to_gcj02(lat, lon)
        return f"https://uri.amap.com/marker?position={glon:.6f},{glat:.6f}&name={quote(text or '📍')}"
    return f"https://uri.amap.com/search?keyword={quote(text)}&city=武汉"


# -- how a ride reads ---------------------------------------------------------------


def when_text(ride: RideData, tr: Tr, lang: str, *, now: datetime | None = None) -> str:
    if ride.is_now:
        return tr("rides.when_now")
    return describe(ride.pickup_at, now=now or utcnow(), lang=lang)


def needs_text(ride: RideData, tr: Tr) -> str:
    return "、".join(tr(f"rides.need_{n}") for n in ride.needs) or tr("rides.no_needs")


def place_text(text: str, lat: float | None, lon: float | None, tr: Tr) -> str:
    return text or tr("rides.shared_location")


def ride_lines(ride: RideData, tr: Tr, lang: str, *, phone: str) -> str:
    return tr(
        "rides.card",
        id=ride.id,
        when=when_text(ride, tr, lang),
        pickup=place_text(ride.pickup_text, ride.pickup_lat, ride.pickup_lon, tr),
        dest=place_text(ride.dest_text, ride.dest_lat, ride.dest_lon, tr),
        passengers=ride.passengers,
        needs=needs_text(ride, tr),
        rider=ride.rider_name or "—",
        phone=phone or "—",
        note=ride.note or "—",
    )


def group_post(ride: RideData, tr: Tr, lang: str, *, again: bool = False) -> Outgoing:
    """The request as the driver group sees it: phone masked, one claim button."""
    head = tr("rides.group_again" if again else "rides.group_new")
    body = ride_lines(ride, tr, lang, phone=mask_phone(ride.rider_phone))
    return Outgoing(f"{head}\n{body}", choices=[[Choice(tr("rides.claim"), f"a:claim:{ride.id}")]])


def taken_post(ride: RideData, tr: Tr, lang: str, driver_name: str) -> str:
    body = ride_lines(ride, tr, lang, phone=mask_phone(ride.rider_phone))
    return f"{tr('rides.group_taken', driver=driver_name)}\n{body}"


def driver_buttons(ride: RideData, tr: Tr) -> list[list[Choice]]:
    """What the assigned driver can do next, by the ride's state."""
    rid = ride.id
    if ride.status is RideStatus.CLAIMED:
        return [
            [Choice(tr("rides.btn_on_way"), f"a:ride_on_way:{rid}")],
            [Choice(tr("rides.btn_picked_up"), f"a:ride_picked_up:{rid}")],
            [Choice(tr("rides.btn_release"), f"a:ride_release:{rid}")],
        ]
    if ride.status is RideStatus.ON_THE_WAY:
        return [
            [Choice(tr("rides.btn_picked_up"), f"a:ride_picked_up:{rid}")],
            [Choice(tr("rides.btn_no_show"), f"a:ride_no_show:{rid}")],
            [Choice(tr("rides.btn_release"), f"a:ride_release:{rid}")],
        ]
    if ride.status is RideStatus.PICKED_UP:
        return [[Choice(tr("rides.btn_completed"), f"a:ride_completed:{rid}")]]
    return []


def driver_details(ride: RideData, tr: Tr, lang: str) -> Outgoing:
    """Everything the driver needs: full phone and navigation links, plus status buttons."""
    body = ride_lines(ride, tr, lang, phone=ride.rider_phone or "")
    links = tr(
        "rides.nav_links",
        pickup=nav_link(ride.pickup_text, ride.pickup_lat, ride.pickup_lon),
        dest=nav_link(ride.dest_text, ride.dest_lat, ride.dest_lon),
    )
    status = tr(f"rides.status_{ride.status.value}")
    text = f"{tr('rides.driver_details')}\n{body}\n{links}\n{tr('rides.status_line', status=status)}"
    return Outgoing(text, choices=driver_buttons(ride, tr))


async def driver_card(session: AsyncSession, driver: UserData, tr: Tr) -> str:
    car = await applications.approved_details(session, user_id=driver.id, role=Role.DRIVER)
    return tr(
        "rides.driver_card",
        name=driver.display_name or f"#{driver.id}",
        car=car.get("car_model", "—"),
        plate=car.get("plate", "—"),
        phone=driver.phone or "—",
    )


# -- sending ------------------------------------------------------------------------


async def send_to_user(
    session: AsyncSession,
    recipient: UserData,
    build: Callable[[Tr, str], Outgoing],
    *,
    kind: str,
    dedupe_key: str | None = None,
) -> bool:
    """Queue a message for someone, in their language; nothing for blocked or erased people."""
    if recipient.blocked or recipient.forgotten:
        return False
    return await outbox.enqueue(
        session,
        channel=recipient.channel,
        chat_id=recipient.chat_id,
        user_id=recipient.id,
        message=build(translator(recipient.language), recipient.language),
        kind=kind,
        dedupe_key=dedupe_key,
    )


async def parties(session: AsyncSession, ride: RideData) -> list[UserData]:
    """Rider and booker (once each): the people told about every milestone."""
    found: list[UserData] = []
    for user_id in (ride.rider_user_id, ride.booker_user_id):
        if user_id is not None and all(u.id != user_id for u in found):
            user = await users.get_user(session, user_id)
            if user is not None:
                found.append(user)
    return found


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
    sent = 0
    for person in await parties(session, ride):

        def build(tr: Tr, lang: str) -> Outgoing:
            text = tr(key, id=ride.id, when=when_text(ride, tr, lang), **fields)
            if extra is not None:
                text = f"{text}\n{extra(tr)}"
            return Outgoing(text, choices=choices(tr) if choices else [])

        sent += await send_to_user(
            session, person, build, kind="ride", dedupe_key=f"ride:{ride.id}:{dedupe}:{person.id}"
        )
    return sent


async def tell_staff(
    session: AsyncSession,
    ride: RideData,
    key: str,
    *,
    dedupe: str,
    choices: Callable[[Tr], list[list[Choice]]] | None = None,
    **fields: Any,
) -> int:
    sent = 0
    for staff in await users.users_with_role(session, Role.STAFF):

        def build(tr: Tr, lang: str) -> Outgoing:
            body = ride_lines(ride, tr, lang, phone=ride.rider_phone or "")
            text = f"{tr(key, id=ride.id, **fields)}\n{body}"
            return Outgoing(text, choices=choices(tr) if choices else [])

        sent += await send_to_user(
            session, staff, build, kind="ride", dedupe_key=f"ride:{ride.id}:{dedupe}:{staff.id}"
        )
    return sent


def staff_ride_buttons(ride: RideData, tr: Tr) -> list[list[Choice]]:
    return [[Choice(tr("rides.btn_assign"), f"a:ride_assign:{ride.id}")]]


async def announce(session: AsyncSession, ride: RideData, *, again: bool = False, round_no: int = 0) -> int:
    """Post the ride in its driver group; with no group, staff must find a driver."""
    group: DriverGroupData | None = None
    if ride.group_id is not None:
        group = await rides.get_group(session, ride.group_id)
    if group is None:
        group = await rides.group_for(session, ride.community_id)
    if group is None:
        return await tell_staff(
            session, ride, "rides.staff_no_group", dedupe=f"nogroup:{round_no}",
            choices=lambda tr: staff_ride_buttons(ride, tr),
        )  # fmt: skip
    # Groups read Chinese: the volunteer groups in Wuhan are Chinese-speaking.
    lang = "zh"
    queued = await outbox.enqueue(
        session,
        channel=group.channel,
        chat_id=group.chat_id,
        message=group_post(ride, translator(lang), lang, again=again),
        kind="ride-post",
        dedupe_key=f"ride:{ride.id}:post:{round_no}",
        is_group=True,
    )
    return int(queued)
