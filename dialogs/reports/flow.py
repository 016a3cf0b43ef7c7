"""/report (and free text such as "井盖坏了"): category, photos, place, summary.

Built for a rider on the road: /report → category → photo → location → confirm is the
whole thing (a test counts the presses). A description is never a separate question:
the words that started the report, a photo's caption, or anything typed along the way
become it. Duplicates are offered on the summary, where following one is one tap.
Answers live in ``ctx.data`` (persisted), so a restart resumes the report.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dialogs.core import Context, Done, Flow, Next, Result, Retry, Step
from dialogs.feature import NotAllowed
from dialogs.messages import Ask, Kind, Outgoing
from dialogs.reports import cards, categories
from dialogs.validate import clean_text, mainland_mobile, mask_phone
from scheduler.jobs import JobSpec
from storage import communities, geo, reports
from storage.data import Role
from storage.reports import NewReport, ReportData

NAME = "report"
MAX_PHOTOS = 3
MAX_DESCRIPTION = 500
DUPLICATE_WINDOW = timedelta(days=14)


def _offered(ctx: Context) -> tuple[categories.Category, ...]:
    return categories.offered(ctx.env.config.report_categories)


def _add_description(ctx: Context, text: str) -> bool:
    """Keep what was typed as (part of) the description; False when it is too long."""
    cleaned = clean_text(text, max_len=MAX_DESCRIPTION)
    if cleaned is None:
        return False
    old = ctx.data.get("description") or ""
    joined = f"{old}\n{cleaned}" if old and cleaned not in old else cleaned
    if len(joined) > MAX_DESCRIPTION:
        return False
    ctx.data["description"] = joined
    return True


def _add_photo(ctx: Context) -> Result | None:
    """A photo sent at any step: kept (up to three) with its caption; None if not a photo."""
    incoming = ctx.incoming
    if incoming.kind is not Kind.PHOTO or not incoming.photo_ref:
        return None
    # A new list, never the stored one changed in place: the conversation is saved
    # only when its data differs from what was loaded.
    photos: list[str] = list(ctx.data.get("photos") or [])
    if len(photos) >= MAX_PHOTOS:
        return Retry("reports.too_many_photos", {"max": MAX_PHOTOS})
    if incoming.photo_ref not in photos:
        photos.append(incoming.photo_ref)
    ctx.data["photos"] = photos
    if incoming.text:
        _add_description(ctx, incoming.text)
    return Retry("reports.photo_added", {"count": len(photos), "left": MAX_PHOTOS - len(photos)})


async def begin(ctx: Context) -> bool:
    """Started from words ("井盖坏了"): guess the category, keep the words."""
    ctx.data.setdefault("photos", [])
    text = ctx.incoming.text if ctx.incoming.kind in (Kind.TEXT, Kind.COMMAND) else ""
    if text.strip():
        guessed = categories.guess(text, _offered(ctx))
        if guessed is not None:
            ctx.data["guess"] = guessed.key
        _add_description(ctx, text)
    if ctx.data.get("mode") == "phoned":
        _staff_only(ctx, "phoned")
        ctx.step = "caller"
    return True


def _staff_only(ctx: Context, what: str) -> None:
    if not ctx.user.has(Role.STAFF):
        raise NotAllowed(f"report:{what}", detail="needs role staff", end_flow=True)


# -- staff: who phoned --------------------------------------------------------------------


async def ask_caller(ctx: Context) -> None:
    ctx.say(ctx.t("reports.ask_caller"))


async def on_caller(ctx: Context) -> Result:
    _staff_only(ctx, "caller")
    name = (
        clean_text(ctx.incoming.text, max_len=30)
        if ctx.incoming.kind is Kind.TEXT and not ctx.value
        else None
    )
    if name is None:
        return Retry("reports.bad_caller")
    ctx.data["caller_name"] = name
    return Next("caller_phone")


async def ask_caller_phone(ctx: Context) -> None:
    ctx.say(ctx.t("reports.ask_caller_phone", name=ctx.data.get("caller_name", "")))


async def on_caller_phone(ctx: Context) -> Result:
    _staff_only(ctx, "caller_phone")
    phone = mainland_mobile(ctx.incoming.text) if ctx.incoming.kind is Kind.TEXT else None
    if phone is None:
        return Retry("reports.bad_phone")
    ctx.data["caller_phone"] = phone
    return Next("category")


# -- category ---------------------------------------------------------------------------


async def ask_category(ctx: Context) -> None:
    offered = _offered(ctx)
    guess = ctx.data.get("guess")
    rows = []
    if guess:
        rows.append([ctx.button("reports.guess_yes", guess, category=cards.category_label(guess, ctx.tr))])
    others = [c for c in offered if c.key != guess]
    labels = [ctx.raw_button(cards.category_label(c.key, ctx.tr), c.key) for c in others]
    rows += [labels[i : i + 2] for i in range(0, len(labels), 2)]
    key = "reports.confirm_guess" if guess else "reports.ask_category"
    ctx.say(ctx.t(key, category=cards.category_label(guess or "other", ctx.tr)), choices=rows)


async def on_category(ctx: Context) -> Result:
    photo = _add_photo(ctx)
    if photo is not None:
        return photo
    keys = {c.key for c in _offered(ctx)}
    if ctx.value in keys:
        ctx.data["category"] = ctx.value
        return Next("photo" if not ctx.data.get("photos") else "location")
    if ctx.incoming.kind is Kind.TEXT and not ctx.value:
        guessed = categories.guess(ctx.incoming.text, _offered(ctx))
        if not _add_description(ctx, ctx.incoming.text):
            return Retry("reports.too_long", {"max": MAX_DESCRIPTION})
        if guessed is not None:
            ctx.data["guess"] = guessed.key
            return Retry()
        return Retry("reports.pick_category")
    return Retry("common.use_buttons")


# -- photos -------------------------------------------------------------------------------


async def ask_photo(ctx: Context) -> None:
    ctx.say(
        ctx.t("reports.ask_photo", max=MAX_PHOTOS),
        choices=[[ctx.button("reports.no_photo", "skip")]],
        ask=None,
    )


async def on_photo(ctx: Context) -> Result:
    if ctx.value == "skip":
        return Next("location")
    if ctx.incoming.kind is Kind.TEXT and not ctx.value:
        if not _add_description(ctx, ctx.incoming.text):
            return Retry("reports.too_long", {"max": MAX_DESCRIPTION})
        return Retry("reports.description_saved")
    return Retry("reports.send_photo")


async def on_photo_step(ctx: Context) -> Result:
    """A photo moves on to the place at once (more photos are taken there too)."""
    if ctx.incoming.kind is Kind.PHOTO and ctx.incoming.photo_ref:
        result = _add_photo(ctx)
        if isinstance(result, Retry) and result.error_key == "reports.too_many_photos":
            return result
        return Next("location")
    return await on_photo(ctx)


# -- place --------------------------------------------------------------------------------


async def _home(ctx: Context) -> tuple[int, str] | None:
    if ctx.data.get("mode") == "phoned" or ctx.user.community_id is None:
        return None
    community = await communities.get_community(ctx.session, ctx.user.community_id)
    return None if community is None else (community.id, community.name)


async def ask_location(ctx: Context) -> None:
    count = len(ctx.data.get("photos") or [])
    lead = ctx.t("reports.photos_so_far", count=count, left=MAX_PHOTOS - count) if count else ""
    ctx.replies.append(
        Outgoing(
            "\n".join(p for p in (lead, ctx.t("reports.ask_location")) if p),
            ask=Ask.LOCATION,
            ask_label=ctx.t("reports.share_location"),
        )
    )
    home = await _home(ctx)
    rows = [[ctx.button("reports.use_community", "home", community=home[1])]] if home else []
    ctx.say(ctx.t("reports.location_or_type"), choices=rows)


async def on_location(ctx: Context) -> Result:
    photo = _add_photo(ctx)
    if photo is not None:
        return photo
    incoming = ctx.incoming
    if ctx.value == "home":
        home = await _home(ctx)
        if home is None:
            return Retry("common.use_buttons")
        ctx.data["place"] = {"lat": None, "lon": None, "address": home[1], "community_id": home[0]}
        return Next("summary")
    if incoming.kind is Kind.LOCATION and incoming.location is not None:
        lat, lon = incoming.location.latitude, incoming.location.longitude
        if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
            return Retry("reports.bad_location")
        ctx.data["place"] = {"lat": lat, "lon": lon, "address": "", "community_id": None}
        return Next("summary")
    if incoming.kind is Kind.TEXT and not ctx.value:
        address = clean_text(incoming.text, max_len=100)
        if address is None or len(address) < 2:
            return Retry("reports.bad_address")
        found = await communities.search_communities(ctx.session, address, limit=1, cutoff=80)
        home = await _home(ctx)
        community_id = found[0].id if found else (home[0] if home else None)
        ctx.data["place"] = {"lat": None, "lon": None, "address": address, "community_id": community_id}
        return Next("summary")
    return Retry("reports.bad_address")


# -- routing ------------------------------------------------------------------------------


async def route(ctx: Context, place: dict[str, Any]) -> int | None:
    """The community covering the place: a polygon around the point, else the nearest
    centre within the radius; a typed address keeps the community it named (or the
    reporter's). None: nobody covers it, the city-wide group takes it."""
    lat, lon = place.get("lat"), place.get("lon")
    if lat is None or lon is None:
        community_id: int | None = place.get("community_id")
        return community_id
    for community_id, polygon in (await reports.areas(ctx.session)).items():
        if reports.inside(lat, lon, polygon):
            return community_id
    best: tuple[float, int] | None = None
    for community in await communities.list_communities(ctx.session):
        if community.latitude is None or community.longitude is None:
            continue
        d = geo.distance_km(lat, lon, community.latitude, community.longitude)
        if best is None or d < best[0]:
            best = (d, community.id)
    if best is not None and best[0] <= ctx.env.config.report_centre_radius_km:
        return best[1]
    return None


# -- summary ------------------------------------------------------------------------------


async def _duplicates(ctx: Context) -> list[reports.Nearby]:
    place = ctx.data.get("place") or {}
    if place.get("lat") is None:
        return []
    category = categories.get(ctx.data.get("category"))
    return await reports.nearby_open(
        ctx.session,
        category=category.key,
        latitude=place["lat"],
        longitude=place["lon"],
        metres=category.radius_m,
        since=ctx.now() - DUPLICATE_WINDOW,
    )


async def ask_summary(ctx: Context) -> None:
    place = ctx.data.get("place") or {}
    community = await communities.get_community(ctx.session, place.get("community_id") or 0)
    where = [p for p in (place.get("address"), community.name if community else "") if p]
    if place.get("lat") is not None:
        where.append(f"{place['lat']:.5f}, {place['lon']:.5f}")
    hidden = bool(ctx.data.get("hidden"))
    lines = [
        ctx.t(
            "reports.summary",
            category=cards.category_label(ctx.data.get("category", "other"), ctx.tr),
            description=ctx.data.get("description") or "—",
            photos=len(ctx.data.get("photos") or []),
            place=" · ".join(dict.fromkeys(where)) or ctx.t("reports.no_place"),
            identity=ctx.t("reports.identity_hidden" if hidden else "reports.identity_shown"),
        )
    ]
    if ctx.data.get("mode") == "phoned":
        phone = mask_phone(ctx.data.get("caller_phone"))
        lines.append(ctx.t("reports.summary_caller", name=ctx.data.get("caller_name", ""), phone=phone))
    rows = []
    same = await _duplicates(ctx)
    if same:
        lines.append(ctx.t("reports.same_problem"))
        for near in same:
            label = ctx.t(
                "reports.same_button",
                number=near.report.number,
                metres=near.metres,
                status=cards.status_label(near.report.status, ctx.tr),
            )
            rows.append([ctx.raw_button(label, f"d{near.report.id}")])
    rows.append([ctx.button("reports.submit_new" if same else "reports.submit", "yes")])
    if ctx.data.get("mode") != "phoned":
        rows.append(
            [ctx.button("reports.show_me" if hidden else "reports.hide_me", "show" if hidden else "hide")]
        )
    ctx.say("\n".join(lines), choices=rows)


async def on_summary(ctx: Context) -> Result:
    photo = _add_photo(ctx)
    if photo is not None:
        return photo
    if ctx.value in ("hide", "show"):
        ctx.data["hidden"] = ctx.value == "hide"
        return Retry()
    if ctx.value and ctx.value.startswith("d"):
        return await _follow(ctx, ctx.value_id("d"))
    if ctx.value == "yes":
        if ctx.data.get("mode") == "phoned":
            _staff_only(ctx, "file")
        report = await submit(ctx)
        key = "reports.filed_for_caller" if ctx.data.get("mode") == "phoned" else "reports.submitted"
        ctx.say(ctx.t(key, number=report.number, due=cards.when(report.accept_due, ctx.tr)))
        ctx.show_menu = True
        return Done()
    if ctx.incoming.kind is Kind.TEXT and not ctx.value:
        if not _add_description(ctx, ctx.incoming.text):
            return Retry("reports.too_long", {"max": MAX_DESCRIPTION})
        return Retry("reports.description_saved")
    return Retry("common.use_buttons")


async def _follow(ctx: Context, report_id: int | None) -> Result:
    """ "Same problem": follow the report already filed instead of filing it again. Only a
    report the summary offered can be followed (button data is hostile)."""
    offered = {n.report.id for n in await _duplicates(ctx)}
    if report_id is None or report_id not in offered:
        return Retry("reports.same_gone")
    report = await reports.get(ctx.session, report_id)
    assert report is not None
    if ctx.data.get("mode") == "phoned":
        ctx.say(ctx.t("reports.caller_same", number=report.number))
        ctx.show_menu = True
        return Done()
    await reports.follow(ctx.session, report.id, ctx.user.id)
    ctx.say(
        ctx.t(
            "reports.following",
            number=report.number,
            status=cards.status_label(report.status, ctx.tr),
        )
    )
    ctx.show_menu = True
    return Done()


async def submit(ctx: Context) -> ReportData:
    data = ctx.data
    category = categories.get(data.get("category"))
    place = data.get("place") or {}
    community_id = await route(ctx, place)
    group = await reports.group_for(ctx.session, community_id)
    phoned = data.get("mode") == "phoned"
    report = await reports.create(
        ctx.session,
        NewReport(
            category=category.key,
            description=data.get("description") or "",
            latitude=place.get("lat"),
            longitude=place.get("lon"),
            address=place.get("address") or "",
            community_id=community_id,
            group_id=group.id if group else None,
            reporter_user_id=None if phoned else ctx.user.id,
            reporter_hidden=bool(data.get("hidden")),
            reporter_gig=not phoned and ctx.user.has(Role.GIG_WORKER),
            accept_within=category.accept_within,
            resolve_within=category.resolve_within,
            filed_by_user_id=ctx.user.id if phoned else None,
            caller_name=data.get("caller_name") or "",
            caller_phone=data.get("caller_phone"),
        ),
        now=ctx.now(),
    )
    for ref in data.get("photos") or []:
        photo_id = await reports.add_photo(
            ctx.session,
            report.id,
            channel=ctx.incoming.channel,
            ref=ref,
            kind="problem",
            uploader=None if phoned else ctx.user.id,
        )
        # Fetched and stored once this transaction commits (no download inside it).
        ctx.jobs.append(JobSpec(f"report-photo:{photo_id}", ctx.now(), "report-photo", str(photo_id)))
    await cards.tell_group(ctx.session, report, dedupe="new")
    return report


FLOW = Flow(
    name=NAME,
    command="report",
    menu_key="menu.report",
    menu_rank=20,
    begin=begin,
    steps=(
        Step("category", ask_category, on_category),
        Step("photo", ask_photo, on_photo_step, goes_to=("location",)),
        Step("location", ask_location, on_location, asks_for=Ask.LOCATION),
        Step("summary", ask_summary, on_summary),
        Step("caller", ask_caller, on_caller, can_go_back=False),
        Step("caller_phone", ask_caller_phone, on_caller_phone),
    ),
)
