"""Rest stations for outdoor workers: outdoor-worker stations, ride-hailing driver
homes, truck-driver homes and rider canteens near a shared location or a typed
place, with open-now, amenities, a map pin and navigation links; staff close and
reopen stations and change their hours from chat.

Read in this order: find.py (the search), places.py (typed places), cards.py (how a
station reads), staff.py. The data and the nearest-K index are storage/stations*.py.
"""

from __future__ import annotations

from dialogs.core import Context
from dialogs.feature import Action, Feature, Intent
from dialogs.messages import Choice
from dialogs.stations import buttons, cards, find, staff
from storage import geo
from storage import stations as store
from storage.data import Role
from storage.stations_hours import SHANGHAI


async def show_action(ctx: Context, data: buttons.Show) -> None:
    """A station's details, navigation links and map pin. Stations are public, so
    anyone may look; the id is only checked to exist."""
    station = await store.get(ctx.session, data.station)
    if station is None:
        ctx.say(ctx.t("stations.gone"), toast=ctx.pressed)
        return
    km = None
    place = ctx.data.get("place") if ctx.flow == find.NAME else None
    if isinstance(place, dict) and "lat" in place:
        km = geo.distance_km(place["lat"], place["lon"], station.latitude, station.longitude)
    choices = []
    if ctx.flow == find.NAME and ctx.step == "results":
        # Channels take the buttons off a pressed list: the pin leads back to it.
        choices.append([ctx.button("stations.back_to_list", "list")])
    else:
        ctx.show_menu = True
    if ctx.user.has(Role.STAFF):
        choices.append([Choice(ctx.t("stations.staff_manage"), buttons.Manage(station=station.id).pack())])
    ctx.say(cards.details(station, ctx.now(), ctx.tr, km))
    ctx.say("", place=cards.pin(station, ctx.tr), choices=choices)


async def _mydata(ctx: Context) -> list[str]:
    """The last place and filters the person searched stations with, if kept."""
    last = await store.last_search(ctx.session, ctx.user.id)
    if last is None:
        return []
    filters = [ctx.t(f"stations.kind_{k}") for k in last.kinds] + [
        ctx.t(f"stations.amenity_{a}") for a in last.amenities
    ]
    return [
        ctx.t(
            "stations.mydata",
            place=last.place or ctx.t("stations.my_location"),
            lat=f"{last.latitude:.4f}",
            lon=f"{last.longitude:.4f}",
            filters=ctx.t("stations.list_sep").join(filters) or "—",
            when=last.searched_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"),
        )
    ]


async def _erase(ctx: Context, user_id: int) -> None:
    await store.forget_search(ctx.session, user_id)
    await store.erase_editor(ctx.session, user_id)


FEATURE = Feature(
    name="stations",
    flows=(find.FLOW, staff.FLOW),
    actions=(
        Action(buttons.Show, show_action),
        Action(buttons.Manage, staff.manage_action, requires_role=Role.STAFF),
    ),
    intents=(
        Intent(
            find.NAME,
            (
                "找驿站",
                "驿站",
                "附近驿站",
                "附近的驿站",
                "休息",
                "歇脚",
                "喝水",
                "充电",
                "换电",
                "热饭",
                "微波炉",
                "厕所",
                "户外劳动者驿站",
                "户外工作者驿站",
                "爱心驿站",
                "小哥食堂",
                "司机之家",
                "货车司机之家",
                "rest station",
                "find a station",
                "stations",
                "rest",
                "water",
                "charge my phone",
                "microwave",
                "toilet",
                "where can i rest",
                "canteen",
            ),
        ),
    ),
    mydata=(_mydata,),
    erasers=(_erase,),
)
