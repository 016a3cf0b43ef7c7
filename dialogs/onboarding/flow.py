"""/start: consent, language, how to address the person, community, building, optional phone.

Nothing personal is written before the person agrees: until then the user row
holds only the platform id (needed to hold this conversation) and the client's
language hint.
"""

from __future__ import annotations

from dataclasses import replace

from dialogs.core import Context, Done, Flow, Next, Result, Retry, Step
from dialogs.i18n import LANGUAGES
from dialogs.messages import Ask, Kind
from dialogs.phone import ask_for_phone, own_phone
from dialogs.validate import clean_text, looks_like_phone, mask_phone
from storage import communities, geo, users
from storage.data import UserData

NAME = "onboarding"


# -- consent -----------------------------------------------------------------


async def ask_consent(ctx: Context) -> None:
    other = "en" if ctx.lang == "zh" else "zh"
    ctx.say(
        ctx.t("onboarding.consent"),
        choices=[
            [ctx.button("onboarding.agree", "yes")],
            [ctx.button("onboarding.decline", "no")],
            [ctx.raw_button(ctx.t(f"language.name_{other}"), f"lang_{other}")],
        ],
    )


async def on_consent(ctx: Context) -> Result:
    if ctx.value in ("lang_zh", "lang_en"):
        # Switching the language of the consent text itself stores only a preference.
        await users.set_language(ctx.session, ctx.user.id, ctx.value[5:])
        ctx.user = _with_language(ctx, ctx.value[5:])
        return Retry()
    if ctx.value == "no":
        ctx.say(ctx.t("onboarding.declined"))
        return Done()
    if ctx.value != "yes":
        return Retry("common.use_buttons")
    s = ctx.incoming.sender
    await users.record_consent(ctx.session, ctx.user.id, display_name=s.display_name, username=s.username)
    # Chose a language on this very screen: asking again would cost an elderly person a tap.
    return Next("name" if ctx.user.language_chosen else "language")


def _with_language(ctx: Context, language: str) -> UserData:
    return replace(ctx.user, language=language, language_chosen=True)


# -- language ----------------------------------------------------------------


async def ask_language(ctx: Context) -> None:
    ctx.say(
        ctx.t("onboarding.ask_language"),
        choices=[[ctx.raw_button(ctx.t(f"language.name_{lang}"), lang) for lang in LANGUAGES]],
    )


async def on_language(ctx: Context) -> Result:
    choice = ctx.value or _language_from_text(ctx.incoming.text)
    if choice not in LANGUAGES:
        return Retry("common.use_buttons")
    await users.set_language(ctx.session, ctx.user.id, choice)
    ctx.user = _with_language(ctx, choice)
    return Next("name")


def _language_from_text(text: str) -> str | None:
    lowered = text.strip().lower()
    if lowered in ("中文", "汉语", "chinese", "zh", "普通话"):
        return "zh"
    if lowered in ("english", "英文", "英语", "en"):
        return "en"
    return None


# -- how to address them ---------------------------------------------------------

MAX_NAME = 20


async def ask_name(ctx: Context) -> None:
    rows = []
    nickname = clean_text(ctx.incoming.sender.display_name, max_len=MAX_NAME)
    if nickname:
        rows.append([ctx.button("onboarding.name_keep", "keep", name=nickname)])
    ctx.say(ctx.t("onboarding.ask_name"), choices=rows)


async def on_name(ctx: Context) -> Result:
    if ctx.value == "keep":
        name = clean_text(ctx.incoming.sender.display_name, max_len=MAX_NAME)
        if not name:
            return Retry("onboarding.bad_name")
    else:
        typed = clean_text(ctx.incoming.text, max_len=MAX_NAME) if ctx.incoming.kind is Kind.TEXT else None
        # A phone number or a bare number is no name (people type them by mistake).
        if typed is None or typed.isdigit() or looks_like_phone(typed):
            return Retry("onboarding.bad_name")
        name = typed
    await users.set_display_name(ctx.session, ctx.user.id, name)
    ctx.user = replace(ctx.user, display_name=name)
    return Next("community")


# -- community ---------------------------------------------------------------


async def ask_community(ctx: Context) -> None:
    candidates = ctx.data.get("candidates") or []
    rows = [[ctx.raw_button(name, f"c{cid}")] for cid, name in candidates]
    rows.append([ctx.button("onboarding.no_community", "none")])
    ctx.say(
        ctx.t("onboarding.pick_community" if candidates else "onboarding.ask_community"),
        choices=rows,
    )


async def on_community(ctx: Context) -> Result:
    if ctx.value == "none":
        await users.set_home(ctx.session, ctx.user.id, community_id=None, building_id=None)
        ctx.data.pop("candidates", None)
        return Next("phone")
    if ctx.value and ctx.value.startswith("c"):
        community_id = ctx.value_id("c")
        community = await communities.get_community(ctx.session, community_id) if community_id else None
        if community is None:
            return Retry("onboarding.community_gone")
        return await _chose_community(ctx, community.id)
    if ctx.incoming.kind is Kind.LOCATION and ctx.incoming.location:
        nearest = await _nearest_community(ctx)
        if nearest is None:
            return Retry("onboarding.community_not_found")
        ctx.data["candidates"] = [nearest]
        return Retry()
    if ctx.incoming.kind is not Kind.TEXT or not ctx.incoming.text.strip():
        return Retry("onboarding.type_community")
    found = await communities.search_communities(ctx.session, ctx.incoming.text[:100])
    if not found:
        ctx.data.pop("candidates", None)
        return Retry("onboarding.community_not_found")
    if len(found) == 1:  # one clear match: no "which one?" (Back undoes it)
        ctx.say(ctx.t("onboarding.community_picked", name=found[0].name))
        return await _chose_community(ctx, found[0].id)
    ctx.data["candidates"] = [[c.id, c.name] for c in found]
    return Retry()


async def _chose_community(ctx: Context, community_id: int) -> Result:
    ctx.data.pop("candidates", None)
    ctx.data["community_id"] = community_id
    await users.set_home(ctx.session, ctx.user.id, community_id=community_id, building_id=None)
    if not await communities.list_buildings(ctx.session, community_id):
        return Next("phone")
    return Next("building")


async def _nearest_community(ctx: Context) -> list[object] | None:
    loc = ctx.incoming.location
    assert loc is not None
    best: tuple[float, int, str] | None = None
    for c in await communities.list_communities(ctx.session):
        if c.latitude is None or c.longitude is None:
            continue
        d = geo.distance_km(loc.latitude, loc.longitude, c.latitude, c.longitude)
        if best is None or d < best[0]:
            best = (d, c.id, c.name)
    if best is None or best[0] > 5.0:  # farther than a walk: probably not theirs
        return None
    return [best[1], best[2]]


# -- building ----------------------------------------------------------------


async def ask_building(ctx: Context) -> None:
    buildings = await communities.list_buildings(ctx.session, ctx.data["community_id"])
    which = set(ctx.data.get("which") or [])
    shown = [b for b in buildings if b.id in which] if which else buildings[:12]  # typing is quicker
    rows = [[ctx.raw_button(b.name, f"b{b.id}") for b in shown[i : i + 3]] for i in range(0, len(shown), 3)]
    rows.append([ctx.button("onboarding.skip", "skip")])
    ctx.say(ctx.t("onboarding.ask_building"), choices=rows)


async def on_building(ctx: Context) -> Result:
    community_id = ctx.data["community_id"]
    if ctx.value == "skip":
        return Next("phone")
    buildings = await communities.list_buildings(ctx.session, community_id)
    chosen = None
    if ctx.value and ctx.value.startswith("b"):
        chosen = next((b for b in buildings if b.id == ctx.value_id("b")), None)
    elif ctx.incoming.kind is Kind.TEXT:
        found = communities.match_buildings(buildings, ctx.incoming.text)
        if len(found) > 1:  # "3栋" where there are 东区3栋 and 西区3栋: ask, never guess
            ctx.data["which"] = [b.id for b in found]
            return Retry("onboarding.building_which")
        chosen = found[0] if found else None
    if chosen is None:
        ctx.data.pop("which", None)
        return Retry("onboarding.building_not_found")
    ctx.data.pop("which", None)
    await users.set_home(ctx.session, ctx.user.id, community_id=community_id, building_id=chosen.id)
    return Next("phone")


# -- phone -------------------------------------------------------------------


async def ask_phone(ctx: Context) -> None:
    ask_for_phone(ctx, "onboarding.ask_phone")
    ctx.say(ctx.t("onboarding.phone_optional"), choices=[[ctx.button("onboarding.skip", "skip")]])


async def on_phone(ctx: Context) -> Result:
    if ctx.value == "skip":
        return await _finish(ctx)
    phone = own_phone(ctx)
    if isinstance(phone, Retry):
        return phone
    await users.set_phone(ctx.session, ctx.user.id, phone)
    ctx.say(ctx.t("onboarding.phone_saved", phone=mask_phone(phone)))
    return await _finish(ctx)


async def _finish(ctx: Context) -> Result:
    await users.mark_onboarded(ctx.session, ctx.user.id)
    ctx.say(ctx.t("onboarding.done"))
    ctx.show_menu = True
    return Done()


# A community poster's deep link, as the channel passes it on once verified.
POSTER_PREFIX = "community:"


async def begin(ctx: Context) -> bool:
    """Resume where a consented person stopped rather than asking consent twice.

    /start from a poster's QR code carries the poster's community (verified by the
    channel): it is offered first when the community is asked, one tap to confirm.
    """
    poster = ctx.incoming.text.strip() if ctx.incoming.command == "start" else ""
    if poster.startswith(POSTER_PREFIX) and poster[len(POSTER_PREFIX) :].isdigit():
        community = await communities.get_community(ctx.session, int(poster[len(POSTER_PREFIX) :]))
        if community is not None:
            ctx.data["candidates"] = [[community.id, community.name]]
    if ctx.user.consented:
        ctx.step = "language" if not ctx.user.language_chosen else "name"
    return True


FLOW = Flow(
    name=NAME,
    command="start",
    requires_onboarding=False,
    begin=begin,
    steps=(
        Step("consent", ask_consent, on_consent, can_go_back=False),
        Step("language", ask_language, on_language, can_go_back=False),
        Step("name", ask_name, on_name, can_go_back=False),
        Step("community", ask_community, on_community),
        Step("building", ask_building, on_building),
        Step("phone", ask_phone, on_phone, asks_for=Ask.CONTACT),
    ),
)
