"""How a station reads: a line in the results, its details with navigation links,
its map pin. Times in Wuhan time; links convert WGS-84 to GCJ-02 for Amap here, at
the edge (storage/geo.py), and give OpenStreetMap the WGS-84 point as stored."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from urllib.parse import quote

from dialogs.i18n import Tr
from dialogs.messages import Place
from storage import geo
from storage.stations import StationData
from storage.stations_hours import SHANGHAI

# Riding an e-bike through streets: ~15 km/h door to door, streets ~1.3× the straight line.
RIDE_KMH = 15.0
DETOUR = 1.3


def ride_minutes(km: float) -> int:
    return max(1, math.ceil(km * DETOUR / RIDE_KMH * 60))


def distance_text(km: float, tr: Tr) -> str:
    if km < 1:
        return tr("stations.metres", m=max(10, round(km * 1000, -1)))
    return tr("stations.km", km=f"{km:.1f}")


def amap_link(station: StationData) -> str:
    """Amap navigation by e-bike (ride mode); ``callnative=1`` opens the app on a phone."""
    lat, lon = geo.wgs84_to_gcj02(station.latitude, station.longitude)
    name = quote(station.name)
    return (
        f"https://uri.amap.com/navigation?to={lon:.6f},{lat:.6f},{name}"
        "&mode=ride&coordinate=gaode&src=linli&callnative=1"
    )


def osm_link(station: StationData) -> str:
    lat, lon = station.latitude, station.longitude
    return f"https://www.openstreetmap.org/?mlat={lat:.6f}&mlon={lon:.6f}#map=17/{lat:.6f}/{lon:.6f}"


def _day_word(when: datetime, now: datetime, tr: Tr) -> str:
    days = (when.date() - now.date()).days
    if days == 0:
        return tr("stations.today")
    if days == 1:
        return tr("stations.tomorrow")
    return tr(f"stations.weekday_{when.weekday()}")


def status_text(station: StationData, now: datetime, tr: Tr) -> str:
    """🟢 open until … / 🔴 closed, opens … / ⛔ temporarily closed."""
    local = now.astimezone(SHANGHAI)
    if station.closed_at(now):
        reason = tr("stations.reason", reason=station.closed_reason) if station.closed_reason else ""
        if station.closed_until is None:
            return tr("stations.status_suspended", reason=reason)
        until = station.closed_until.astimezone(SHANGHAI)
        return tr(
            "stations.status_suspended_until",
            reason=reason,
            day=_day_word(until, local, tr),
            date=tr("stations.date", month=until.month, day=until.day),
            time=until.strftime("%H:%M"),
        )
    hours = station.hours
    if hours.always:
        return tr("stations.status_always")
    if hours.is_open(local):
        closes = hours.closes_at(local)
        if closes is None:
            return tr("stations.status_open")
        day = (
            ""
            if closes.date() == local.date() or closes - local < timedelta(hours=12)
            else _day_word(closes, local, tr)
        )
        # " ".join drops the gap an empty day word would leave ("closes  21:00").
        when = " ".join(p for p in (day, closes.strftime("%H:%M")) if p)
        return tr("stations.status_open_until", when=when)
    opens = hours.next_open(local)
    if opens is None:
        return tr("stations.status_closed")
    return tr("stations.status_opens", day=_day_word(opens, local, tr), time=opens.strftime("%H:%M"))


def amenities_text(station: StationData, tr: Tr) -> str:
    return tr("stations.list_sep").join(tr(f"stations.amenity_{a}") for a in station.amenities)


def kind_text(station: StationData, tr: Tr) -> str:
    return tr(f"stations.kind_{station.kind.value}")


def result_line(number: int, station: StationData, km: float, now: datetime, tr: Tr) -> str:
    lines = [
        tr("stations.line_title", n=number, name=station.name, kind=kind_text(station, tr)),
        tr(
            "stations.line_way",
            distance=distance_text(km, tr),
            minutes=ride_minutes(km),
            status=status_text(station, now, tr),
        ),
    ]
    if station.amenities:
        lines.append(tr("stations.line_amenities", amenities=amenities_text(station, tr)))
    if station.phone:
        lines.append(tr("stations.line_phone", phone=station.phone))
    if station.sample:
        lines.append(tr("stations.line_sample"))
    return "\n".join(lines)


def hours_lines(station: StationData, tr: Tr) -> str:
    if station.hours.always:
        return tr("stations.hours_always")
    rows = []
    for weekday, ranges in station.hours.week_lines():
        rows.append(
            tr(
                "stations.hours_day",
                day=tr(f"stations.weekday_{weekday}"),
                ranges=ranges.replace(",", ", ") if ranges else tr("stations.hours_closed_day"),
            )
        )
    return "\n".join(rows)


def details(station: StationData, now: datetime, tr: Tr, km: float | None = None) -> str:
    parts = [tr("stations.detail_title", name=station.name, kind=kind_text(station, tr))]
    if station.address:
        parts.append(tr("stations.detail_address", address=station.address))
    if km is not None:
        parts.append(tr("stations.detail_way", distance=distance_text(km, tr), minutes=ride_minutes(km)))
    parts.append(status_text(station, now, tr))
    parts.append(tr("stations.detail_hours", hours=hours_lines(station, tr)))
    if station.amenities:
        parts.append(tr("stations.detail_amenities", amenities=amenities_text(station, tr)))
    if station.phone:
        parts.append(tr("stations.line_phone", phone=station.phone))
    if station.sample:
        parts.append(tr("stations.line_sample"))
    parts.append(tr("stations.detail_links", amap=amap_link(station), osm=osm_link(station)))
    return "\n".join(parts)


def pin(station: StationData, tr: Tr) -> Place:
    """The map pin (a venue on Telegram): WGS-84, as Telegram's maps expect."""
    address = station.address or station.district or kind_text(station, tr)
    return Place(latitude=station.latitude, longitude=station.longitude, title=station.name, address=address)
