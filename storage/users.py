"""Operations on people: find or create, consent, profile, roles, forget."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import outbox, updates
from storage.data import LANGUAGES, Role, UserData, guess_language
from storage.dialect import is_postgres
from storage.models import AuditEntry, Conversation, User, utcnow


def _roles(raw: str) -> frozenset[Role]:
    return frozenset(Role(r) for r in raw.split(",") if r)


def to_data(row: Any) -> UserData:
    """A user row (ORM object or Core row: same attribute names) as plain data."""
    return UserData(
        id=row.id,
        channel=row.channel,
        external_id=row.external_id,
        chat_id=row.chat_id,
        display_name=row.display_name,
        username=row.username,
        language=row.language or guess_language(row.client_language),
        language_chosen=row.language is not None,
        consented=row.consent_at is not None,
        onboarded=row.onboarded_at is not None,
        roles=_roles(row.roles),
        community_id=row.community_id,
        building_id=row.building_id,
        phone=row.phone,
        blocked=row.blocked_at is not None,
        forgotten=row.forgotten_at is not None,
    )


# Prebuilt Core statements for the per-message lookup (see storage/updates.py).
_T = cast(Table, User.__table__)  # type: ignore[attr-defined]
_FIND = select(_T).where(_T.c.channel == bindparam("channel"), _T.c.external_id == bindparam("external_id"))
_INSERT = {
    "sqlite": sqlite_insert(_T).on_conflict_do_nothing(index_elements=["channel", "external_id"]),
    "postgresql": pg_insert(_T).on_conflict_do_nothing(index_elements=["channel", "external_id"]),
}


async def ensure_user(
    session: AsyncSession,
    *,
    channel: str,
    external_id: str,
    chat_id: str,
    client_language: str | None,
    display_name: str = "",
    username: str | None = None,
    staff_ids: Iterable[str] = (),
) -> UserData:
    """Find the person or create a minimal record (ids only: nothing personal before consent).

    Names are refreshed only for people who have consented. People listed in
    LINLI_ADMINS are staff, unless staff was revoked from them with `linli admin revoke`:
    the revocation is recorded and wins, until `linli admin grant` gives it back.
    """
    key = {"channel": channel, "external_id": external_id}
    row = (await session.execute(_FIND, key)).one_or_none()
    if row is None:
        now = utcnow()
        values = {
            **key,
            "chat_id": chat_id,
            "client_language": (client_language or "")[:20] or None,
            "display_name": "",
            "roles": "",
            "created_at": now,
            "updated_at": now,
        }
        await session.execute(_INSERT["postgresql" if is_postgres(session) else "sqlite"], values)
        row = (await session.execute(_FIND, key)).one()
    changes: dict[str, Any] = {}
    if row.consent_at is not None and row.forgotten_at is None:
        # Until onboarding asked how to address them, the chat name stands in; after
        # that, the name they gave is theirs and the platform's nickname no longer counts.
        if display_name and row.onboarded_at is None and row.display_name != display_name[:200]:
            changes["display_name"] = display_name[:200]
        if username != row.username:
            changes["username"] = username
    if (
        external_id in set(staff_ids)
        and Role.STAFF not in _roles(row.roles)
        and not await _staff_revoked(session, row.id)
    ):
        changes["roles"] = ",".join(sorted({*row.roles.split(","), Role.STAFF} - {""}))
    if changes:
        await _update(session, row.id, **changes)
        row = (await session.execute(_FIND, key)).one()
    return to_data(row)


# Audit actions of `linli admin grant|revoke USER staff`; the newest one decides.
GRANT_STAFF = "admin_grant:staff"
REVOKE_STAFF = "admin_revoke:staff"


async def _staff_revoked(session: AsyncSession, user_id: int) -> bool:
    """Whether an operator revoked this person's staff role (and did not grant it back)."""
    stmt = (
        select(col(AuditEntry.action))
        .where(
            col(AuditEntry.target) == f"user:{user_id}",
            col(AuditEntry.action).in_([GRANT_STAFF, REVOKE_STAFF]),
        )
        .order_by(col(AuditEntry.id).desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none() == REVOKE_STAFF


async def find_by_external(session: AsyncSession, *, channel: str, external_id: str) -> UserData | None:
    """Look a person up by platform id without creating them."""
    row = (await session.execute(_FIND, {"channel": channel, "external_id": external_id})).one_or_none()
    return None if row is None else to_data(row)


async def get_user(session: AsyncSession, user_id: int) -> UserData | None:
    row = await session.get(User, user_id)
    return None if row is None else to_data(row)


async def _update(session: AsyncSession, user_id: int, **values: object) -> None:
    await session.execute(update(User).where(col(User.id) == user_id).values(**values, updated_at=utcnow()))


async def set_language(session: AsyncSession, user_id: int, language: str) -> None:
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}")
    await _update(session, user_id, language=language)


async def record_consent(
    session: AsyncSession, user_id: int, *, display_name: str, username: str | None
) -> None:
    await _update(
        session,
        user_id,
        consent_at=utcnow(),
        forgotten_at=None,
        display_name=display_name[:200],
        username=username,
    )


async def set_display_name(session: AsyncSession, user_id: int, name: str) -> None:
    """How the person wants to be addressed (drivers and staff see it)."""
    await _update(session, user_id, display_name=name[:200])


async def set_home(
    session: AsyncSession, user_id: int, *, community_id: int | None, building_id: int | None
) -> None:
    await _update(session, user_id, community_id=community_id, building_id=building_id)


async def set_phone(session: AsyncSession, user_id: int, phone: str | None) -> None:
    await _update(session, user_id, phone=phone)


async def mark_onboarded(session: AsyncSession, user_id: int) -> None:
    await _update(session, user_id, onboarded_at=utcnow())


async def mark_blocked(session: AsyncSession, user_id: int, blocked: bool = True) -> None:
    await _update(session, user_id, blocked_at=utcnow() if blocked else None)


async def grant_role(session: AsyncSession, user_id: int, role: Role) -> bool:
    """Add a role; returns False when the person already had it."""
    row = await session.get(User, user_id, with_for_update=True)
    if row is None:
        raise LookupError(user_id)
    roles = _roles(row.roles)
    if role in roles:
        return False
    row.roles = ",".join(sorted(roles | {role}))
    row.updated_at = utcnow()
    await session.flush()
    return True


async def revoke_role(session: AsyncSession, user_id: int, role: Role) -> bool:
    row = await session.get(User, user_id, with_for_update=True)
    if row is None:
        raise LookupError(user_id)
    roles = _roles(row.roles)
    if role not in roles:
        return False
    row.roles = ",".join(sorted(roles - {role}))
    row.updated_at = utcnow()
    await session.flush()
    return True


async def users_with_role(session: AsyncSession, role: Role) -> list[UserData]:
    # Roles are few and short; a LIKE pre-filter then an exact check in Python.
    rows = (
        await session.execute(
            select(User).where(col(User.roles).contains(role.value), col(User.forgotten_at).is_(None))
        )
    ).scalars()
    return [u for u in map(to_data, rows) if u.has(role)]


async def find_users(session: AsyncSession, query: str, *, limit: int = 20) -> list[UserData]:
    """Staff look-up by name, username, phone, platform id or Linli id."""
    like = f"%{query}%"
    cond = (
        col(User.display_name).ilike(like)
        | col(User.username).ilike(like)
        | col(User.phone).contains(query)
        | (col(User.external_id) == query)
    )
    if query.isascii() and query.isdigit() and len(query) <= 9:  # a phone number is not an id
        cond = cond | (col(User.id) == int(query))
    rows = (await session.execute(select(User).where(cond).order_by(col(User.id)).limit(limit))).scalars()
    return [to_data(r) for r in rows]


async def list_users(session: AsyncSession, *, limit: int = 100) -> list[UserData]:
    rows = (await session.execute(select(User).order_by(col(User.id)).limit(limit))).scalars()
    return [to_data(r) for r in rows]


async def forget_user(session: AsyncSession, user_id: int) -> None:
    """Erase the person's own record; the row stays (anonymised) for records others depend on.

    Each feature erases its own rows (its Feature's erasers); this is the core part:
    the user row, conversations, stored answers and pending messages to them.

    The platform id is replaced too, so the record can no longer be tied to the
    person; if they write again they start as someone new.
    """
    row = await session.get(User, user_id, with_for_update=True)
    if row is None:
        return
    await outbox.erase_to(session, user_id=user_id, channel=row.channel, chat_id=row.chat_id)
    local_phone = row.phone[3:] if row.phone and row.phone.startswith("+86") else None
    await updates.forget_replies_mentioning(
        session, [row.display_name, row.phone or "", local_phone or "", row.username or ""]
    )
    row.external_id = f"forgotten:{user_id}"
    row.chat_id = f"forgotten:{user_id}"
    row.display_name = ""
    row.username = None
    row.client_language = None
    row.phone = None
    row.community_id = None
    row.building_id = None
    row.consent_at = None
    row.onboarded_at = None
    row.roles = ""
    row.forgotten_at = utcnow()
    row.updated_at = utcnow()
    await session.execute(delete(Conversation).where(col(Conversation.user_id) == user_id))
    await updates.forget_replies(session, user_id)
    await session.flush()
