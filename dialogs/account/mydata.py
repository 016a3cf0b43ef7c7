"""/mydata: everything Linli stores about the person, in their language.

The profile comes first and the conversation in progress last; in between, each
feature's own section (its ``Feature.mydata``), so /mydata stays complete as Linli grows.
"""

from __future__ import annotations

from dialogs.core import Context
from dialogs.i18n import catalog
from storage import communities, conversations
from storage.data import UserData

# Telegram's limit; longer texts are split by the channel, but keep sections whole.
MAX_TEXT = 4000


async def profile(ctx: Context) -> list[str]:
    user: UserData = ctx.user
    community = await communities.get_community(ctx.session, user.community_id) if user.community_id else None
    building = await communities.get_building(ctx.session, user.building_id) if user.building_id else None
    roles = "、".join(ctx.t(f"roles.{r.value}") for r in sorted(user.roles)) or ctx.t("roles.resident")
    return [
        ctx.t(
            "mydata.profile",
            id=user.id,
            channel=_channel_name(ctx, user.channel),
            external_id=user.external_id,
            name=user.display_name or "—",
            username=user.username or "—",
            language=ctx.t(f"language.name_{user.language}"),
            chosen=ctx.t("mydata.yes" if user.language_chosen else "mydata.guessed"),
            consent=ctx.t("mydata.yes" if user.consented else "mydata.no"),
            community=community.name if community else "—",
            building=building.name if building else "—",
            phone=user.phone or "—",
            roles=roles,
        )
    ]


async def _conversation(ctx: Context) -> list[str]:
    state = await conversations.load(ctx.session, ctx.incoming.conversation_key)
    if state.flow is None:
        return []
    # Say what the person was doing in their words, never the flow's internal name.
    key = f"services.{state.flow}"
    what = ctx.t(key) if _has(ctx, key) else ctx.t("mydata.something")
    return [ctx.t("mydata.in_progress", what=what)]


def _has(ctx: Context, key: str) -> bool:
    return key in catalog(ctx.lang)


def _channel_name(ctx: Context, channel: str) -> str:
    key = f"mydata.channel_{channel}"
    return ctx.t(key) if _has(ctx, key) else channel


async def render(ctx: Context) -> list[str]:
    parts = [ctx.t("mydata.title")]
    for feature in ctx.nav.features:
        for section in feature.mydata:
            parts.extend(await section(ctx))
    parts.extend(await _conversation(ctx))
    parts.append(ctx.t("mydata.footer"))
    return parts


async def mydata_command(ctx: Context) -> None:
    # Pack sections into as few messages as fit, never splitting a section.
    chunk = ""
    for part in await render(ctx):
        if chunk and len(chunk) + len(part) + 2 > MAX_TEXT:
            ctx.say(chunk)
            chunk = ""
        chunk = f"{chunk}\n\n{part}" if chunk else part
    if chunk:
        ctx.say(chunk)
    await ctx.nav.reask(ctx)
