"""Reading and writing station files: CSV and GeoJSON, for `linli stations import/export`
and the sample data.

Reading validates every row and collects every problem with its line number; a file
with any problem imports nothing (the caller decides, see ``read``). Coordinates are
WGS-84 (what GPS and OpenStreetMap use), latitude and longitude in degrees.

CSV columns (a header row is required; the order is free; only the first five and
``hours`` are required)::

    ref, kind, name, latitude, longitude, hours, address, district, amenities,
    phone, note, closed, closed_until, closed_reason, sample

GeoJSON: a FeatureCollection of Point features (``[longitude, latitude]``) whose
properties carry the same names as the CSV columns.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import stations as store
from storage.stations import (
    AMENITIES,
    AMENITY_NAMES_ZH,
    KIND_NAMES_ZH,
    NewStation,
    StationData,
    StationKind,
    auto_ref,
)
from storage.stations_hours import SHANGHAI, HoursError, parse_hours

COLUMNS = (
    "ref",
    "kind",
    "name",
    "address",
    "district",
    "latitude",
    "longitude",
    "amenities",
    "hours",
    "phone",
    "note",
    "closed",
    "closed_until",
    "closed_reason",
    "sample",
)
REQUIRED = ("kind", "name", "latitude", "longitude", "hours")
_REF = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
_PHONE = re.compile(r"[0-9+\-() ]{3,40}")
_LIST_SPLIT = re.compile(r"[;|、,，/\s]+")
_TRUE = {"1", "true", "yes", "y", "是", "closed", "暂停"}
_FALSE = {"", "0", "false", "no", "n", "否", "open"}
_ROW_ERROR = "__row_error__"
LIMITS = {"name": 100, "address": 200, "district": 50, "note": 1000, "closed_reason": 200}


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(slots=True)
class ReadResult:
    stations: list[NewStation] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class FileError(ValueError):
    """The file as a whole cannot be read (not CSV/GeoJSON, no header, bad JSON)."""


def _kind_of(raw: str) -> StationKind | None:
    text = raw.strip().lower()
    for kind in StationKind:
        if text == kind.value or text in KIND_NAMES_ZH[kind]:
            return kind
    return None


def _amenity_of(raw: str) -> str | None:
    text = raw.strip().lower()
    if text in AMENITIES:
        return text
    for name, words in AMENITY_NAMES_ZH.items():
        if raw.strip() in words:
            return name
    return None


def _float(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        value = float(raw)
    else:
        text = str(raw or "").strip()
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            return None
    return value if math.isfinite(value) else None


def _closed_until(raw: str) -> datetime:
    """An end date (closed through that day: reopens the next midnight in Wuhan) or a
    date-time (reopens then; Wuhan time unless it says otherwise)."""
    text = raw.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        when = datetime.fromisoformat(text)
        return when if when.tzinfo is not None else when.replace(tzinfo=SHANGHAI)
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=SHANGHAI)


def validate(
    values: dict[str, Any], line: int, *, sample: bool = False
) -> tuple[NewStation | None, list[str]]:
    """One row's values (column → text) → a station, or the reasons it is not one."""
    if _ROW_ERROR in values:
        return None, [str(values[_ROW_ERROR])]
    reasons: list[str] = []

    def text(name: str) -> str:
        raw = values.get(name)
        value = "" if raw is None else str(raw).strip()
        limit = LIMITS.get(name)
        if limit is not None and len(value) > limit:
            reasons.append(f"{name} is longer than {limit} characters")
        return value

    for name in REQUIRED:
        if values.get(name) is None or str(values.get(name)).strip() == "":
            reasons.append(f"missing {name}")
    kind_raw = text("kind")
    kind = _kind_of(kind_raw) if kind_raw else None
    if kind_raw and kind is None:
        reasons.append(f"unknown kind {kind_raw!r} (one of: {', '.join(k.value for k in StationKind)})")
    name = text("name")
    lat, lon = _float(values.get("latitude")), _float(values.get("longitude"))
    if values.get("latitude") not in (None, "") and lat is None:
        reasons.append(f"latitude {values.get('latitude')!r} is not a number")
    if values.get("longitude") not in (None, "") and lon is None:
        reasons.append(f"longitude {values.get('longitude')!r} is not a number")
    if lat is not None and not -90 <= lat <= 90:
        reasons.append(f"latitude {lat:g} is out of range (-90…90)")
    if lon is not None and not -180 <= lon <= 180:
        reasons.append(f"longitude {lon:g} is out of range (-180…180)")
    hours = None
    hours_raw = text("hours")
    if hours_raw:
        try:
            hours = parse_hours(hours_raw)
        except HoursError as e:
            reasons.append(f"bad hours {hours_raw!r}: {e}")
    amenities: list[str] = []
    for word in (w for w in _LIST_SPLIT.split(text("amenities")) if w):
        amenity = _amenity_of(word)
        if amenity is None:
            reasons.append(f"unknown amenity {word!r} (known: {', '.join(AMENITIES)})")
        elif amenity not in amenities:
            amenities.append(amenity)
    phone = text("phone")
    if phone and not _PHONE.fullmatch(phone):
        reasons.append(f"phone {phone!r} is not a phone number")
    ref = text("ref")
    if ref and not _REF.fullmatch(ref):
        reasons.append(f"ref {ref!r} may hold only letters, digits and . _ : - (at most 64)")
    closed_raw = text("closed").lower()
    if closed_raw not in _TRUE | _FALSE:
        reasons.append(f"closed {closed_raw!r} is not yes/no")
    until = None
    until_raw = text("closed_until")
    if until_raw:
        try:
            until = _closed_until(until_raw)
        except ValueError:
            reasons.append(f"closed_until {until_raw!r} is not a date (2026-12-31) or date-time")
    reason = text("closed_reason")
    note, address, district = text("note"), text("address"), text("district")
    is_sample = sample or text("sample").lower() in _TRUE
    if reasons or kind is None or lat is None or lon is None or hours is None:
        return None, reasons or ["incomplete row"]
    closed = closed_raw in _TRUE or bool(until_raw) or bool(reason)
    return (
        NewStation(
            ref=ref or auto_ref(kind.value, name, lat, lon),
            kind=kind,
            name=name,
            latitude=lat,
            longitude=lon,
            hours=hours,
            address=address,
            district=district,
            amenities=tuple(a for a in AMENITIES if a in amenities),
            phone=phone,
            note=note,
            closed=closed,
            closed_until=until if closed else None,
            closed_reason=reason,
            sample=is_sample,
        ),
        [],
    )


def _collect(rows: Iterable[tuple[int, dict[str, Any]]], *, sample: bool = False) -> ReadResult:
    result = ReadResult()
    seen: dict[str, int] = {}
    for line, values in rows:
        station, reasons = validate(values, line, sample=sample)
        if station is not None:
            first = seen.get(station.ref)
            if first is not None:
                reasons = [f"ref {station.ref!r} is already used on line {first}"]
                station = None
            else:
                seen[station.ref] = line
        if station is None:
            result.errors.append(RowError(line, "; ".join(reasons)))
        else:
            result.stations.append(station)
    return result


def read_csv(text: str, *, sample: bool = False) -> ReadResult:
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise FileError("the file is empty") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise FileError(f"the header (line 1) lacks the columns: {', '.join(missing)}")
    unknown = [h for h in header if h and h not in COLUMNS]
    if unknown:
        raise FileError(f"the header (line 1) has unknown columns: {', '.join(unknown)}")

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        line = reader.line_num
        for record in reader:
            start, line = line + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue  # blank lines
            if len(record) > len(header):
                yield start, {_ROW_ERROR: f"more cells than the header has columns ({len(header)})"}
                continue
            yield start, dict(zip(header, record, strict=False))

    return _collect(rows(), sample=sample)


def _feature_lines(text: str) -> list[int]:
    """The line each element of the top-level "features" array starts on."""
    decoder = json.JSONDecoder()
    m = re.search(r'"features"\s*:\s*\[', text)
    if m is None:
        return []
    lines: list[int] = []
    pos = m.end()
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            return lines
        lines.append(text.count("\n", 0, pos) + 1)
        try:
            _obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return lines


def read_geojson(text: str, *, sample: bool = False) -> ReadResult:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise FileError(f"not valid JSON (line {e.lineno}: {e.msg})") from None
    if (
        not isinstance(doc, dict)
        or doc.get("type") != "FeatureCollection"
        or not isinstance(doc.get("features"), list)
    ):
        raise FileError("not a GeoJSON FeatureCollection")
    lines = _feature_lines(text)

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        for i, feature in enumerate(doc["features"]):
            line = lines[i] if i < len(lines) else 0
            values: dict[str, Any] = {}
            if not isinstance(feature, dict) or feature.get("type") != "Feature":
                values[_ROW_ERROR] = "not a GeoJSON Feature"
            else:
                props = feature.get("properties")
                values.update(props if isinstance(props, dict) else {})
                geometry = feature.get("geometry")
                coords = geometry.get("coordinates") if isinstance(geometry, dict) else None
                if (
                    isinstance(geometry, dict)
                    and geometry.get("type") == "Point"
                    and isinstance(coords, list)
                    and len(coords) >= 2
                ):
                    values["longitude"], values["latitude"] = coords[0], coords[1]
                else:
                    values.pop("latitude", None)
                    values.pop("longitude", None)
                if isinstance(values.get("amenities"), list):
                    values["amenities"] = ";".join(str(a) for a in values["amenities"])
            yield line, values

    return _collect(rows(), sample=sample)


def read(text: str, *, name: str = "", sample: bool = False) -> ReadResult:
    """CSV or GeoJSON, by the file name's ending or else by the content."""
    lowered = name.lower()
    looks_json = text.lstrip("\ufeff \t\r\n").startswith("{")
    if lowered.endswith((".geojson", ".json")) or (not lowered.endswith(".csv") and looks_json):
        return read_geojson(text, sample=sample)
    return read_csv(text, sample=sample)


# -- writing --------------------------------------------------------------------------


def _row(s: StationData) -> dict[str, Any]:
    until = s.closed_until.astimezone(SHANGHAI).isoformat(timespec="minutes") if s.closed_until else ""
    return {
        "ref": s.ref,
        "kind": s.kind.value,
        "name": s.name,
        "address": s.address,
        "district": s.district,
        "latitude": f"{s.latitude:.6f}",
        "longitude": f"{s.longitude:.6f}",
        "amenities": ";".join(s.amenities),
        "hours": s.hours.text(),
        "phone": s.phone,
        "note": s.note,
        "closed": "yes" if s.closed else "",
        "closed_until": until if s.closed else "",
        "closed_reason": s.closed_reason if s.closed else "",
        "sample": "yes" if s.sample else "",
    }


def write_csv(stations: Iterable[StationData]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for s in stations:
        writer.writerow(_row(s))
    return out.getvalue()


def write_geojson(stations: Iterable[StationData]) -> str:
    features = []
    for s in stations:
        props = {k: v for k, v in _row(s).items() if k not in ("latitude", "longitude")}
        props["amenities"] = list(s.amenities)
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [round(s.longitude, 6), round(s.latitude, 6)]},
                "properties": props,
            }
        )
    lines = ",\n".join(json.dumps(f, ensure_ascii=False) for f in features)
    return '{"type": "FeatureCollection", "features": [\n' + lines + "\n]}\n"


# -- the sample data ------------------------------------------------------------------

SAMPLE_FILE = "stations_sample.csv"


def sample_stations() -> list[NewStation]:
    """The sample stations shipped with Linli (plausible, not real: each is marked)."""
    text = resources.files("storage").joinpath(SAMPLE_FILE).read_text("utf-8")
    result = read_csv(text, sample=True)
    if result.errors:  # shipped data: a mistake in it is a bug
        raise ValueError(f"{SAMPLE_FILE}: {result.errors[0]}")
    return result.stations


async def load_sample(session: AsyncSession) -> int:
    """Add the sample stations that are not there yet (by ref); returns how many.
    Running it again changes nothing, and never undoes what staff changed since."""
    wanted = sample_stations()
    have = set((await session.execute(select(col(store.Station.ref)))).scalars())
    missing = [s for s in wanted if s.ref not in have]
    if missing:
        await store.upsert_many(session, missing)
    return len(missing)
