"""/mydata: everything Linli stores about the person, in their language.

Later features add their own sections with ``register_section`` so /mydata stays
complete as Linli grows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from dialogs import ride_common
from dialogs.core import Context
from dialogs.role_applications import summary
from storage import applications, communities, conversations, rides
from storage.data import UserData

Section = Callable[[Context], Awaitable[list[str]]]
_SECTIONS: list[Section] = []


def register_section(section: Section) -> Section:
    _SECTIONS.append(section)
    return section


async def _profile(ctx: Context) -> list[str]:
    user: UserData = ctx.user
    community = await communities.get_community(ctx.session, user.community_id) if user.community_id else None
    building = await communities.get_building(ctx.session, user.building_id) if user.building_id else None
    roles = "、".join(ctx.t(f"roles.{r.value}") for r in sorted(user.roles)) or ctx.t("roles.resident")
    return [
        ctx.t(
            "mydata.profile",
            id=user.id,
            channel=user.channel,
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


async def _applications(ctx: Context) -> list[str]:
    rows = await applications.for_user(ctx.session, ctx.user.id)
    out = []
    for app in rows:
        out.append(
            summary(ctx.t, app, ctx.user.display_name or "—")
            + "\n"
            + ctx.t("mydata.application_status", status=ctx.t(f"apply.status_{app.status}"))
        )
    return out


async def _conversation(ctx: Context) -> list[str]:
    state = await conversations.load(ctx.session, ctx.incoming.conversation_key)
    if state.flow is None:
        return []
    return [ctx.t("mydata.in_progress", flow=state.flow, step=state.step or "")]


async def _rides(ctx: Context) -> list[str]:
    """Rides booked by or for the person, and rides they drove."""
    mine = await rides.for_person(ctx.session, ctx.user.id, limit=20)
    driven = await rides.for_driver(ctx.session, ctx.user.id, limit=20)
    if not mine and not driven:
        return []
    lines = [ctx.t("mydata.rides_title", booked=len(mine), driven=len(driven))]
    for ride in mine + driven:
        lines.append(
            ctx.t(
                "mydata.ride_line",
                id=ride.id,
                when=ride_common.when_text(ride, ctx.t, ctx.lang),
                dest=ride.dest_text or "—",
                status=ctx.t(f"rides.status_{ride.status.value}"),
            )
        )
    return ["\n".join(lines)]


register_section(_profile)
register_section(_applications)
register_section(_rides)
register_section(_conversation)


async def render(ctx: Context) -> list[str]:
    parts = [ctx.t("mydata.title")]
    for section in _SECTIONS:
        parts.extend(await section(ctx))
    parts.append(ctx.t("mydata.footer"))
    return parts
