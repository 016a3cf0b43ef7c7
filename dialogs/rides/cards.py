"""How a ride reads, for each party: the card, the group post, the driver's details
and buttons, map links.

Who sees what: the driver group sees the rider's phone masked; the claiming driver
sees it in full; the rider and booker see the driver's name, car, plate and phone.
Everything takes a translator (``Tr``) in the reader's language.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.i18n import Tr
from dialogs.messages import Choice, Outgoing
from dialogs.rides import buttons, places
from dialogs.timeparse import describe
from dialogs.validate import mask_phone, mask_phones_in, show_phone
from storage import applications, geo
from storage.data import Role, UserData
from storage.models import utcnow
from storage.rides import RideData, RideStatus

# Driver groups read Chinese (the volunteer groups in Wuhan are Chinese-speaking).
GROUP_LANG = "zh"


def group_tr() -> Tr:
    return Tr(GROUP_LANG)


def nav_link(text: str, lat: float | None, lon: float | None) -> str:
    """An Amap link that opens navigation on a phone (a search when only an address is known)."""
    if lat is not None and lon is not None:
        glat, glon = geo.wgs84_to_gcj02(lat, lon)
        return f"https://uri.amap.com/marker?position={glon:.6f},{glat:.6f}&name={quote(text or '📍')}"
    return f"https://uri.amap.com/search?keyword={quote(text)}&city=武汉"


def when_text(ride: RideData, tr: Tr, *, now: datetime | None = None) -> str:
    if ride.is_now:
        return tr("rides.when_now")
    return describe(ride.pickup_at, now=now or utcnow(), lang=tr.lang)


def needs_text(ride: RideData, tr: Tr) -> str:
    return tr("rides.list_sep").join(tr(f"rides.need_{n}") for n in ride.needs) or tr("rides.no_needs")


def place_text(text: str, tr: Tr) -> str:
    return places.label_for(text, tr.lang) if text else tr("rides.shared_location")


def person_name(user: UserData | None, user_id: int | None = None) -> str:
    if user is None:
        return f"#{user_id}" if user_id is not None else "—"
    return user.display_name or user.username or f"#{user.id}"


def ride_lines(ride: RideData, tr: Tr, *, phone: str, public: bool = False) -> str:
    """The ride card; ``public`` (the driver group) masks any phone number typed into
    the free-text fields as the phone field itself is masked."""
    shown = mask_phones_in if public else str
    return tr(
        "rides.card",
        id=ride.id,
        when=when_text(ride, tr),
        pickup=shown(place_text(ride.pickup_text, tr)),
        dest=shown(place_text(ride.dest_text, tr)),
        passengers=ride.passengers,
        needs=needs_text(ride, tr),
        rider=shown(ride.rider_name or "—"),
        phone=phone or "—",
        note=shown(ride.note or "—"),
    )


def group_post(ride: RideData, tr: Tr, *, again: bool = False) -> Outgoing:
    """The request as the driver group sees it: phone masked, one claim button."""
    head = tr("rides.group_again" if again else "rides.group_new")
    body = ride_lines(ride, tr, phone=mask_phone(ride.rider_phone), public=True)
    return Outgoing(
        f"{head}\n{body}", choices=[[Choice(tr("rides.claim"), buttons.Claim(ride=ride.id).pack())]]
    )


def taken_post(ride: RideData, tr: Tr, driver_name: str) -> str:
    body = ride_lines(ride, tr, phone=mask_phone(ride.rider_phone), public=True)
    return f"{tr('rides.group_taken', driver=driver_name)}\n{body}"


def closed_post(ride: RideData, tr: Tr) -> str:
    status = tr(f"rides.status_{ride.status.value}")
    return f"{tr('ride_driver.group_closed', status=status)}\n{ride_lines(ride, tr, phone='', public=True)}"


def driver_buttons(ride: RideData, tr: Tr) -> list[list[Choice]]:
    """What the assigned driver can do next, by the ride's state."""
    rid = ride.id
    on_way = [Choice(tr("rides.btn_on_way"), buttons.OnWay(ride=rid).pack())]
    arrived = [Choice(tr("rides.btn_arrived"), buttons.Arrived(ride=rid).pack())]
    picked_up = [Choice(tr("rides.btn_picked_up"), buttons.PickedUp(ride=rid).pack())]
    release = [Choice(tr("rides.btn_release"), buttons.Release(ride=rid).pack())]
    if ride.status is RideStatus.CLAIMED:
        return [on_way, arrived, picked_up, release]
    if ride.status is RideStatus.ON_THE_WAY:
        return [arrived, picked_up, release]
    if ride.status is RideStatus.ARRIVED:  # "rider not there" only from here, after a wait
        return [picked_up, [Choice(tr("rides.btn_no_show"), buttons.NoShow(ride=rid).pack())]]
    if ride.status is RideStatus.PICKED_UP:
        return [[Choice(tr("rides.btn_completed"), buttons.Completed(ride=rid).pack())]]
    return []


def driver_details(ride: RideData, tr: Tr) -> Outgoing:
    """Everything the driver needs: full phone and navigation links, plus status buttons."""
    body = ride_lines(ride, tr, phone=show_phone(ride.rider_phone))
    links = tr(
        "rides.nav_links",
        pickup=nav_link(ride.pickup_text, ride.pickup_lat, ride.pickup_lon),
        dest=nav_link(ride.dest_text, ride.dest_lat, ride.dest_lon),
    )
    status = tr(f"rides.status_{ride.status.value}")
    text = f"{tr('rides.driver_details')}\n{body}\n{links}\n{tr('rides.status_line', status=status)}"
    return Outgoing(text, choices=driver_buttons(ride, tr))


async def driver_card(session: AsyncSession, driver: UserData) -> Callable[[Tr], str]:
    """The driver's card (name, car, plate, phone), readable in any language; the car
    details are read once."""
    car = await applications.approved_details(session, user_id=driver.id, role=Role.DRIVER)

    def card(tr: Tr) -> str:
        return tr(
            "rides.driver_card",
            name=person_name(driver),
            car=car.get("car_model", "—"),
            plate=car.get("plate", "—"),
            phone=show_phone(driver.phone) or "—",
        )

    return card


def staff_ride_buttons(ride: RideData, tr: Tr) -> list[list[Choice]]:
    return [[Choice(tr("rides.btn_assign"), buttons.Assign(ride=ride.id).pack())]]


def rating_buttons(ride_id: int, tr: Tr) -> list[list[Choice]]:
    return [
        [
            Choice(tr("ride_driver.rate_star", n=n), buttons.Rate(ride=ride_id, stars=n).pack())
            for n in range(1, 6)
        ]
    ]
