"""WGS-84 → GCJ-02 against published reference values (Amap links), and opening
hours in Asia/Shanghai: overnight intervals across midnight, 24 h, next opening."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest

from dialogs.stations import cards
from storage.geo import wgs84_to_gcj02
from storage.stations import StationData, StationKind
from storage.stations_hours import SHANGHAI, HoursError, parse_hours


def test_gcj02_matches_the_published_reference_point() -> None:
    # wandergis/coordtransform README: wgs84togcj02(116.404, 39.915) →
    # [116.41024449916938, 39.91640428150164]; gcj02towgs84(116.404, 39.915) →
    # [116.39775550083061, 39.91359571849836] (the same offset, subtracted).
    lat, lon = wgs84_to_gcj02(39.915, 116.404)
    assert lat == pytest.approx(39.91640428150164, abs=1e-9)
    assert lon == pytest.approx(116.41024449916938, abs=1e-9)
    assert 39.915 - (lat - 39.915) == pytest.approx(39.91359571849836, abs=1e-9)
    assert 116.404 - (lon - 116.404) == pytest.approx(116.39775550083061, abs=1e-9)


@pytest.mark.parametrize(
    ("lat", "lon"), [(35.6812, 139.7671), (48.8566, 2.3522), (-33.86, 151.21), (22.28, 70.0)]
)
def test_points_outside_china_are_unchanged(lat: float, lon: float) -> None:
    assert wgs84_to_gcj02(lat, lon) == (lat, lon)


def _station(lat: float, lon: float) -> StationData:
    return StationData(
        id=1, ref="r", kind=StationKind.OUTDOOR, name="光谷广场驿站", address="", district="",
        latitude=lat, longitude=lon, amenities=(), hours=parse_hours("24h"), phone="", note="",
        closed=False, closed_until=None, closed_reason="", sample=False, version=1,
    )  # fmt: skip


def test_amap_link_carries_gcj02_and_opens_the_app_osm_link_wgs84() -> None:
    station = _station(39.915, 116.404)
    query = parse_qs(urlparse(cards.amap_link(station)).query)
    lon, lat, name = query["to"][0].split(",")
    assert (float(lat), float(lon)) == (
        pytest.approx(39.916404, abs=1e-6),
        pytest.approx(116.410244, abs=1e-6),
    )
    assert name == "光谷广场驿站" and query["callnative"] == ["1"] and query["coordinate"] == ["gaode"]
    assert "mlat=39.915000&mlon=116.404000" in cards.osm_link(station)
    # Abroad: no shift.
    assert "to=2.352200,48.856600" in cards.amap_link(_station(48.8566, 2.3522))


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """2026-11-30 is a Monday; ``day`` counts from it, in Wuhan time."""
    return datetime(2026, 11, 30, hour, minute, tzinfo=SHANGHAI) + timedelta(days=day)


def test_overnight_hours_cross_midnight() -> None:
    hours = parse_hours("mon-fri 22:00-06:00")
    assert hours.text() == "mon-fri 22:00-06:00"
    assert not hours.is_open(at(0, 21, 59))
    assert hours.is_open(at(0, 22, 0)) and hours.is_open(at(0, 23, 59))
    assert hours.is_open(at(1, 0, 0)) and hours.is_open(at(1, 5, 59))  # Tuesday morning, from Monday
    assert not hours.is_open(at(1, 6, 0))
    # Friday night runs into Saturday; Saturday night is closed; Monday 00:30 is not (Sunday is closed).
    assert hours.is_open(at(5, 3, 0)) and not hours.is_open(at(5, 23, 0)) and not hours.is_open(at(7, 0, 30))
    assert hours.closes_at(at(0, 23, 0)) == at(1, 6, 0)
    assert hours.next_open(at(5, 7, 0)) == at(7, 22, 0)  # Saturday morning → Monday night


def test_24h_is_open_at_every_minute_and_never_closes() -> None:
    hours = parse_hours("24小时")
    assert hours.always and hours.text() == "24h"
    for minute in range(0, 7 * 24 * 60, 7):
        assert hours.is_open(at(0, 0) + timedelta(minutes=minute))
    assert hours.closes_at(at(3, 23, 59)) is None


def test_hours_in_utc_are_read_in_wuhan_time() -> None:
    hours = parse_hours("daily 08:00-20:00")
    assert hours.is_open(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))  # 09:00 in Wuhan
    assert not hours.is_open(datetime(2026, 12, 1, 13, 0, tzinfo=UTC))  # 21:00 in Wuhan


def test_back_to_back_days_close_at_the_real_end() -> None:
    hours = parse_hours("mon 18:00-24:00; tue 00:00-02:00")
    assert hours.closes_at(at(0, 23, 0)) == at(1, 2, 0)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("每天 07:00-22:00", "daily 07:00-22:00"),
        ("周一至周五 08:00-20:00；周末 09:00-17:00", "mon-fri 08:00-20:00; sat-sun 09:00-17:00"),
        ("Mon-Fri 07:00-09:00, 11:00-14:00", "mon-fri 07:00-09:00,11:00-14:00"),
        ("08:00-20:00", "daily 08:00-20:00"),
        ("fri-mon 10:00-16:00", "mon 10:00-16:00; fri-sun 10:00-16:00"),
    ],
)
def test_hours_text_round_trips(text: str, canonical: str) -> None:
    assert parse_hours(text).text() == canonical
    assert parse_hours(canonical) == parse_hours(text)


BAD_HOURS = ["", "sometimes", "25:00-08:00", "08:00-08:00", "mon-fri", "funday 08:00-09:00",
             "daily 08:00-12:00,11:00-13:00", "08:60-09:00"]  # fmt: skip


@pytest.mark.parametrize("bad", BAD_HOURS)
def test_bad_hours_say_why(bad: str) -> None:
    with pytest.raises(HoursError):
        parse_hours(bad)
