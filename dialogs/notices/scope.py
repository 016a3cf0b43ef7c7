"""Which communities a staff member may send notices to.

Responsibility is stored in ``staff_communities`` (granted with
``linli admin scope <person> <community>``; ``all`` for city-wide), and the people in
LINLI_ADMINS are city-wide. Every screen and every button re-checks it on the server:
button data and step values can be forged.
"""

from __future__ import annotations

from dialogs.core import Context
from storage import notices
from storage.data import Role

# None: every community.
Scope = frozenset[int] | None


async def staff_scope(ctx: Context) -> Scope:
    if not ctx.user.has(Role.STAFF):
        return frozenset()
    if ctx.user.external_id in ctx.env.config.city_wide_staff:
        return None
    granted = await notices.scopes(ctx.session, ctx.user.id)
    if None in granted:
        return None
    return frozenset(c for c in granted if c is not None)


def may_target(scope: Scope, community_id: int | None) -> bool:
    """``community_id`` None means every community: city-wide staff only."""
    if scope is None:
        return True
    return community_id is not None and community_id in scope
