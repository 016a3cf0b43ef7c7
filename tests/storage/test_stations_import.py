"""Station files: good CSV and GeoJSON import (and update by ref), every bad row
reported with its line and reason, nothing half-imported; export re-imports as is;
the index follows changes made through another connection (another process)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from bot.cli import main
from storage import stations as store
from storage import stations_io
from storage.engine import Database
from storage.stations_hours import SHANGHAI
from storage.stations_index import Query, search

NOON = datetime(2026, 12, 2, 12, 0, tzinfo=SHANGHAI)  # a Wednesday

GOOD_CSV = """ref,kind,name,address,district,latitude,longitude,amenities,hours,phone,note
a1,outdoor,光谷驿站,珞喻路1号,洪山区,30.5058,114.3987,water;microwave;phone_charge,24h,027-12345,
a2,小哥食堂,申新食堂,宝丰路,硚口区,30.587,114.249,meals、seats,daily 10:30-13:30,,
a3,truck,阳逻货车之家,港城大道,新洲区,30.684,114.558,truck_parking|shower,mon-fri 22:00-06:00,,"夜开, 日关"
"""

BAD_CSV = """ref,kind,name,latitude,longitude,amenities,hours
ok1,outdoor,好驿站,30.5,114.3,water,24h
b1,outdoor,没坐标,,,water,24h
b2,outdoor,纬度九十一,91,114.3,water,24h
b3,outdoor,怪设施,30.5,114.3,water;sauna,24h
b4,outdoor,坏时间,30.5,114.3,water,daily 25:00-26:00
ok2,driver,另一个,30.6,114.2,,daily 07:00-23:00
b5,spaceport,未知类型,30.5,114.3,,24h
ok1,outdoor,重复,30.5,114.3,,24h
"""


def _geojson(features: list[dict]) -> str:
    body = ",\n".join(json.dumps(f, ensure_ascii=False) for f in features)
    return '{"type": "FeatureCollection",\n "features": [\n' + body + "\n]}\n"


def _feature(lon: object, lat: object, **props: object) -> dict:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": props}


def test_bad_csv_rows_are_each_reported_with_line_and_reason() -> None:
    result = stations_io.read(BAD_CSV, name="x.csv")
    errors = {e.line: e.reason for e in result.errors}
    assert sorted(errors) == [3, 4, 5, 6, 8, 9]
    assert "missing latitude" in errors[3] and "missing longitude" in errors[3]
    assert "latitude 91 is out of range" in errors[4]
    assert "unknown amenity 'sauna'" in errors[5]
    assert "bad hours" in errors[6]
    assert "unknown kind 'spaceport'" in errors[8]
    assert "already used on line 2" in errors[9]


def test_geojson_rows_report_the_line_their_feature_starts_on() -> None:
    text = _geojson(
        [
            _feature(114.3, 30.5, ref="g1", kind="outdoor", name="好", hours="24h", amenities=["water"]),
            _feature(114.3, 91, ref="g2", kind="outdoor", name="坏", hours="24h"),
            {
                "type": "Feature",
                "geometry": None,
                "properties": {"kind": "outdoor", "name": "无点", "hours": "24h"},
            },
        ]
    )
    result = stations_io.read(text, name="x.geojson")
    assert [(e.line, "latitude 91" in e.reason or "missing latitude" in e.reason) for e in result.errors] == [
        (4, True),
        (5, True),
    ]
    assert [s.ref for s in result.stations] == ["g1"]


async def test_import_update_and_export_round_trip(db: Database) -> None:
    result = stations_io.read(GOOD_CSV, name="good.csv")
    assert result.ok, result.errors
    async with db.transaction() as session:
        assert await store.upsert_many(session, result.stations) == store.ImportResult(created=3, updated=0)
    changed = GOOD_CSV.replace("光谷驿站", "光谷广场驿站")
    async with db.transaction() as session:
        again = await store.upsert_many(session, stations_io.read(changed, name="c.csv").stations)
        assert again == store.ImportResult(created=0, updated=3)
        found = {s.ref: s for s in await store.all_stations(session)}
    assert found["a1"].name == "光谷广场驿站" and found["a2"].kind.value == "canteen"
    assert found["a2"].amenities == ("seats", "meals") and found["a3"].note == "夜开, 日关"
    assert found["a3"].hours.text() == "mon-fri 22:00-06:00"

    for write, name in ((stations_io.write_csv, "out.csv"), (stations_io.write_geojson, "out.geojson")):
        back = stations_io.read(write(found.values()), name=name)
        assert back.ok, back.errors
        assert {s.ref: (s.name, s.kind, s.amenities, s.hours, s.note) for s in back.stations} == {
            s.ref: (s.name, s.kind, s.amenities, s.hours, s.note) for s in found.values()
        }


async def test_index_follows_changes_made_through_another_connection(db: Database) -> None:
    """Two Database objects on one database stand for two processes."""
    other = Database(db.url)
    try:
        async with db.transaction() as session:
            await store.upsert_many(session, stations_io.read(GOOD_CSV, name="g.csv").stations)
        q = Query(30.5058, 114.3987, k=1)
        async with db.transaction() as session:
            ((first, _),) = await search(session, q)
        assert first.name == "光谷驿站"
        async with other.transaction() as session:  # "another process" closes it
            await store.close(session, first.id, until=None, reason="维修", by=None)
        async with db.transaction() as session:
            ((seen, _),) = await search(session, q)
            assert seen.closed and seen.closed_reason == "维修"
            assert (await search(session, Query(30.5058, 114.3987, k=1, open_now=True, at=NOON)))[0][
                0
            ].id != first.id
        moved = stations_io.read(GOOD_CSV.replace("30.5058,114.3987", "30.0,114.0"), name="m.csv").stations
        async with other.transaction() as session:
            await store.upsert_many(session, moved)
        async with db.transaction() as session:
            ((nearest, _),) = await search(session, q)
            assert nearest.ref != "a1"
    finally:
        await other.dispose()


@pytest.fixture
def db_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("LINLI_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    return url


def test_cli_import_refuses_a_file_with_bad_rows_then_imports_and_exports(
    db_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD_CSV, encoding="utf-8")
    assert main(["stations", "import", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:4: latitude 91 is out of range" in err and "nothing imported" in err
    assert main(["stations", "export"]) == 0
    assert capsys.readouterr().out.strip().count("\n") == 0  # the header alone: nothing half-imported

    good = tmp_path / "good.csv"
    good.write_text(GOOD_CSV, encoding="utf-8")
    assert main(["stations", "import", str(good), "--dry-run"]) == 0
    assert main(["stations", "import", str(good)]) == 0
    assert "3 stations added, 0 updated" in capsys.readouterr().out
    out = tmp_path / "all.geojson"
    assert main(["stations", "export", "--format", "geojson", "-o", str(out)]) == 0
    exported = json.loads(out.read_text(encoding="utf-8"))
    assert len(exported["features"]) == 3
    assert main(["stations", "import", str(out)]) == 0
    assert "0 stations added, 3 updated" in capsys.readouterr().out
