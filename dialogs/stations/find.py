"""/stations: the nearest rest stations to a shared location or a typed place.

where   → share a location, or type a place / district / street / station name
results → the nearest five: distance, riding minutes, open now, amenities, phone;
          a numbered button per station sends its map pin and navigation links;
          filters (kind, amenities, open now) and pages; typing or sharing a new
          place here searches again
kinds, amenities → filter toggles

The search point, filters and page live in ``ctx.data`` (persisted), so a restart
resumes the list. The last place and filters are kept for the person (see /mydata)
to offer "near … again" next time; /forget deletes them.
"""

from __future__ import annotations

import math
from datetime import timedelta

from dialogs.core import Context, Flow, Next, Result, Retry, Step
from dialogs.messages import Ask, Choice, Kind, Outgoing
from dialogs.stations import buttons, cards, places
from dialogs.validate import clean_text
from storage import communities
from storage import stations as store
from storage.stations import AMENITIES, StationKind
from storage.stations_index import Query, known_stations, search

NAME = "stations"
PAGE = 5
# Farther than this is no rest stop for someone at work: say "nothing near".
MAX_KM = 30.0
# The last search is offered again for this long.
REMEMBER = timedelta(days=7)

# Words in a request that say what the person needs ("附近有充电的地方吗").
_NEED_WORDS: dict[str, str] = {
    "充电": "phone_charge",
    "charge": "phone_charge",
    "换电": "ebike_charge",
    "电瓶": "ebike_charge",
    "battery": "ebike_charge",
    "微波炉": "microwave",
    "热饭": "microwave",
    "microwave": "microwave",
    "喝水": "water",
    "water": "water",
    "热水": "hot_water",
    "厕所": "toilet",
    "卫生间": "toilet",
    "toilet": "toilet",
    "洗澡": "shower",
    "shower": "shower",
    "空调": "aircon",
}
_KIND_WORDS: dict[str, StationKind] = {
    "食堂": StationKind.CANTEEN,
    "吃饭": StationKind.CANTEEN,
    "canteen": StationKind.CANTEEN,
    "货车": StationKind.TRUCK,
    "truck": StationKind.TRUCK,
    "司机之家": StationKind.DRIVER,
    "driver home": StationKind.DRIVER,
}


def _filters_from_words(text: str) -> tuple[list[str], list[str]]:
    lowered = text.lower()
    amenities = [a for word, a in _NEED_WORDS.items() if word in lowered]
    kinds = [k.value for word, k in _KIND_WORDS.items() if word in lowered]
    if "货车司机之家" in text:
        kinds = [StationKind.TRUCK.value]
    return list(dict.fromkeys(amenities)), list(dict.fromkeys(kinds))


async def begin(ctx: Context) -> bool:
    """Started by free text, the request may already say what is needed."""
    if ctx.incoming.kind is Kind.TEXT:
        amenities, kinds = _filters_from_words(ctx.incoming.text[:200])
        ctx.data.update(amen=amenities, kinds=kinds)
    return True


# -- where --------------------------------------------------------------------------


async def _recent(ctx: Context) -> store.SearchData | None:
    last = await store.last_search(ctx.session, ctx.user.id)
    if last is None or ctx.now() - last.searched_at > REMEMBER:
        return None
    return last


async def ask_where(ctx: Context) -> None:
    offered = ctx.data.get("offered") or []
    if not offered:  # choosing between matches, the question was just read (its keyboard stays)
        question = ctx.t("stations.ask_where")
        ctx.replies.append(Outgoing(question, ask=Ask.LOCATION, ask_label=ctx.t("stations.share_location")))
    rows = [[ctx.raw_button(f"📍 {label}", f"p{i}")] for i, (label, _lat, _lon) in enumerate(offered)]
    last = await _recent(ctx)
    if last is not None and not offered:
        label = last.place or ctx.t("stations.my_location")
        rows.append([ctx.button("stations.again", "last", place=label)])
    key = "stations.pick_place" if offered else "stations.or_type"
    ctx.say(ctx.t(key), choices=rows)


async def on_where(ctx: Context) -> Result:
    if ctx.value == "last":
        last = await _recent(ctx)
        if last is None:
            return Retry("stations.last_gone")
        ctx.data.setdefault("kinds", list(last.kinds))
        ctx.data.setdefault("amen", list(last.amenities))
        return _go(ctx, last.place, last.latitude, last.longitude)
    if ctx.value and ctx.value.startswith("p"):
        offered = ctx.data.get("offered") or []
        i = ctx.value_id("p")
        if i is None or i >= len(offered):
            return Retry("stations.last_gone")
        label, lat, lon = offered[i]
        return _go(ctx, label, lat, lon)
    if ctx.value is not None:
        return Retry("common.use_buttons")
    return await _place_from_message(ctx) or Retry("stations.where_hint")


def _go(ctx: Context, label: str, lat: float, lon: float) -> Result:
    ctx.data.pop("offered", None)
    ctx.data["place"] = {"label": label, "lat": lat, "lon": lon}
    ctx.data["page"] = 0
    ctx.data["fresh"] = True
    return Next("results")


async def _place_from_message(ctx: Context) -> Result | None:
    """A shared location or a typed place → the results; a kind word when it is neither."""
    incoming = ctx.incoming
    if incoming.kind is Kind.LOCATION and incoming.location is not None:
        lat, lon = incoming.location.latitude, incoming.location.longitude
        if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
            return Retry("stations.bad_location")
        return _go(ctx, "", lat, lon)
    if incoming.kind is not Kind.TEXT:
        return None
    text = clean_text(incoming.text, max_len=60)
    if text is None:
        return Retry("stations.where_too_long")
    extra = [
        places.Found(c.name, c.latitude, c.longitude, 86.0, False)
        for c in await communities.search_communities(ctx.session, text, limit=3, cutoff=90.0)
        if c.latitude is not None and c.longitude is not None
    ]
    found = places.find(text, await known_stations(ctx.session), extra)
    winner = places.clear_winner(found)
    if winner is not None:
        return _go(ctx, winner.label, winner.latitude, winner.longitude)
    if not found:
        ctx.data.pop("offered", None)
        return Retry("stations.place_unknown", {"text": text})
    ctx.data["offered"] = [[f.label, f.latitude, f.longitude] for f in found]
    return Retry()


# -- results ------------------------------------------------------------------------


def _query(ctx: Context, *, k: int, offset: int) -> Query:
    place = ctx.data["place"]
    return Query(
        latitude=place["lat"],
        longitude=place["lon"],
        k=k,
        offset=offset,
        kinds=frozenset(StationKind(k) for k in ctx.data.get("kinds") or []),
        amenities=tuple(ctx.data.get("amen") or []),
        open_now=bool(ctx.data.get("open")),
        at=ctx.now(),
        max_km=MAX_KM,
    )


def _place_label(ctx: Context) -> str:
    return ctx.data["place"]["label"] or ctx.t("stations.your_location")


def _filters_text(ctx: Context) -> str:
    parts = [ctx.t(f"stations.kind_{k}") for k in ctx.data.get("kinds") or []]
    parts += [ctx.t(f"stations.amenity_{a}") for a in ctx.data.get("amen") or []]
    if ctx.data.get("open"):
        parts.append(ctx.t("stations.open_only"))
    return ctx.t("stations.list_sep").join(parts)


def _filter_row(ctx: Context) -> list[Choice]:
    kinds, amen = ctx.data.get("kinds") or [], ctx.data.get("amen") or []
    return [
        ctx.button("stations.filter_kinds", "kinds", n=f" ({len(kinds)})" if kinds else ""),
        ctx.button("stations.filter_amen", "amen", n=f" ({len(amen)})" if amen else ""),
        ctx.button("stations.filter_open_on" if ctx.data.get("open") else "stations.filter_open_off", "open"),
    ]


async def ask_results(ctx: Context) -> None:
    page = int(ctx.data.get("page") or 0)
    # One more than a page: is there a next one?
    found = await search(ctx.session, _query(ctx, k=PAGE + 1, offset=page * PAGE))
    shown, more = found[:PAGE], len(found) > PAGE
    if ctx.data.pop("fresh", False):
        await _remember(ctx)
    edit = ctx.incoming.message_ref if ctx.pressed and ctx.data.pop("edit", False) else None
    filters = _filters_text(ctx)
    if not shown:
        key = "stations.none_filtered" if filters else "stations.none_near"
        text = ctx.t(key, place=_place_label(ctx), km=int(MAX_KM), filters=filters)
        if page:
            text = ctx.t("stations.no_more", place=_place_label(ctx))
        rows = [_filter_row(ctx)]
        if filters:
            rows.append([ctx.button("stations.clear_filters", "clear")])
        if page:
            rows.append([ctx.button("stations.prev", "prev")])
        rows.append([ctx.button("stations.other_place", "where")])
        ctx.say(text, choices=rows, edit_ref=edit)
        return
    now = ctx.now()
    head = ctx.t("stations.results_head", place=_place_label(ctx), page=page + 1)
    if filters:
        head += "\n" + ctx.t("stations.results_filters", filters=filters)
    lines = [head]
    for i, (station, km) in enumerate(shown, start=page * PAGE + 1):
        lines.append(cards.result_line(i, station, km, now, ctx.tr))
    lines.append(ctx.t("stations.results_foot"))
    ctx.data["shown"] = [s.id for s, _ in shown]
    pins = [
        Choice(f"📍{i}", buttons.Show(station=s.id).pack())
        for i, (s, _km) in enumerate(shown, start=page * PAGE + 1)
    ]
    rows = [pins, _filter_row(ctx)]
    paging = []
    if page:
        paging.append(ctx.button("stations.prev", "prev"))
    if more:
        paging.append(ctx.button("stations.more", "more"))
    if paging:
        rows.append(paging)
    last_row = [ctx.button("stations.other_place", "where")]
    if filters:
        last_row.append(ctx.button("stations.clear_filters", "clear"))
    rows.append(last_row)
    ctx.say("\n\n".join(lines), choices=rows, edit_ref=edit)


async def _remember(ctx: Context) -> None:
    place = ctx.data["place"]
    await store.remember_search(
        ctx.session,
        ctx.user.id,
        place=place["label"],
        latitude=place["lat"],
        longitude=place["lon"],
        kinds=ctx.data.get("kinds") or [],
        amenities=ctx.data.get("amen") or [],
        now=ctx.now(),
    )


async def on_results(ctx: Context) -> Result:
    value = ctx.value
    page = int(ctx.data.get("page") or 0)
    if value in ("more", "prev", "open", "clear"):
        ctx.data["edit"] = True
        if value == "more":
            ctx.data["page"] = page + 1
        elif value == "prev":
            ctx.data["page"] = max(0, page - 1)
        elif value == "open":
            ctx.data["open"] = not ctx.data.get("open")
            ctx.data["page"] = 0
        else:
            ctx.data.update(kinds=[], amen=[], open=False, page=0)
        return Retry()
    if value == "list":
        return Retry()
    if value == "kinds":
        return Next("kinds")
    if value == "amen":
        return Next("amenities")
    if value == "where":
        ctx.data.pop("offered", None)
        return Next("where")
    if value is not None:
        return Retry("common.use_buttons")
    # A new place typed or shared here searches again.
    result = await _place_from_message(ctx)
    if isinstance(result, Next):
        return Retry()
    if result is not None and ctx.data.get("offered"):
        return Next("where")  # several places match: let them pick
    return result or Retry("stations.where_hint")


# -- filters ------------------------------------------------------------------------


def _toggle(ctx: Context, key: str, value: str) -> None:
    chosen = list(ctx.data.get(key) or [])
    if value in chosen:
        chosen.remove(value)
    else:
        chosen.append(value)
    ctx.data[key] = chosen
    ctx.data["page"] = 0


def _ticked(ctx: Context, label: str, on: bool) -> str:
    return f"✓ {label}" if on else label


async def ask_kinds(ctx: Context) -> None:
    chosen = set(ctx.data.get("kinds") or [])
    rows = [
        [ctx.raw_button(_ticked(ctx, ctx.t(f"stations.kind_{k.value}"), k.value in chosen), k.value)]
        for k in StationKind
    ]
    rows.append([ctx.button("stations.any_kind", "any"), ctx.button("stations.show", "done")])
    edit = ctx.incoming.message_ref if ctx.pressed and ctx.data.pop("edit", False) else None
    ctx.say(ctx.t("stations.ask_kinds"), choices=rows, edit_ref=edit)


async def on_kinds(ctx: Context) -> Result:
    if ctx.value == "done":
        return Next("results")
    if ctx.value == "any":
        ctx.data["kinds"] = []
        return Next("results")
    if ctx.value in {k.value for k in StationKind}:
        _toggle(ctx, "kinds", ctx.value)
        ctx.data["edit"] = True
        return Retry()
    return Retry("common.use_buttons")


async def ask_amenities(ctx: Context) -> None:
    chosen = set(ctx.data.get("amen") or [])
    labels = [ctx.raw_button(_ticked(ctx, ctx.t(f"stations.amenity_{a}"), a in chosen), a) for a in AMENITIES]
    rows = [labels[i : i + 2] for i in range(0, len(labels), 2)]
    rows.append([ctx.button("stations.any_amenity", "any"), ctx.button("stations.show", "done")])
    edit = ctx.incoming.message_ref if ctx.pressed and ctx.data.pop("edit", False) else None
    ctx.say(ctx.t("stations.ask_amenities"), choices=rows, edit_ref=edit)


async def on_amenities(ctx: Context) -> Result:
    if ctx.value == "done":
        return Next("results")
    if ctx.value == "any":
        ctx.data["amen"] = []
        return Next("results")
    if ctx.value in AMENITIES:
        _toggle(ctx, "amen", ctx.value)
        ctx.data["edit"] = True
        return Retry()
    return Retry("common.use_buttons")


FLOW = Flow(
    name=NAME,
    command="stations",
    menu_key="stations.menu",
    menu_rank=30,
    begin=begin,
    steps=(
        Step("where", ask_where, on_where, asks_for=Ask.LOCATION),
        Step("results", ask_results, on_results),
        Step("kinds", ask_kinds, on_kinds),
        Step("amenities", ask_amenities, on_amenities),
    ),
)
