"""Applications to become a driver or a lawyer, and staff decisions on them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, Text, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from storage import users
from storage.data import ApplicationData, Role
from storage.dialect import changed_one
from storage.models import utcnow


class RoleApplication(SQLModel, table=True):
    """A resident's request to become a driver or lawyer, decided by staff."""

    __tablename__ = "role_applications"
    __table_args__ = (
        # At most one pending application per person and role, enforced by the database.
        Index(
            "uq_application_pending",
            "user_id",
            "role",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    role: str = Field(max_length=20)
    # JSON: {"plate": ..., "car_model": ...} or {"firm": ..., "licence": ..., "specialties": [...]}
    details: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=10)  # pending|approved|rejected
    decided_by: int | None = Field(default=None, foreign_key="users.id")
    decided_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


def _data(row: RoleApplication) -> ApplicationData:
    assert row.id is not None
    return ApplicationData(
        id=row.id,
        user_id=row.user_id,
        role=Role(row.role),
        details=json.loads(row.details),
        status=row.status,
        created_at=row.created_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
    )


async def submit(
    session: AsyncSession, *, user_id: int, role: Role, details: dict[str, Any]
) -> ApplicationData | None:
    """File an application; None when one for this role is already pending.

    The partial unique index decides, so two quick submissions cannot both land.
    """
    row = RoleApplication(
        user_id=user_id,
        role=role.value,
        details=json.dumps(details, ensure_ascii=False),
        created_at=utcnow(),
    )
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        return None
    return _data(row)


async def get(session: AsyncSession, application_id: int) -> ApplicationData | None:
    row = await session.get(RoleApplication, application_id)
    return None if row is None else _data(row)


async def pending(session: AsyncSession, *, role: Role | None = None) -> list[ApplicationData]:
    stmt = select(RoleApplication).where(col(RoleApplication.status) == "pending")
    if role is not None:
        stmt = stmt.where(col(RoleApplication.role) == role.value)
    rows = (await session.execute(stmt.order_by(col(RoleApplication.id)))).scalars()
    return [_data(r) for r in rows]


async def for_user(session: AsyncSession, user_id: int) -> list[ApplicationData]:
    stmt = select(RoleApplication).where(col(RoleApplication.user_id) == user_id)
    return [_data(r) for r in (await session.execute(stmt.order_by(col(RoleApplication.id)))).scalars()]


async def pending_for(session: AsyncSession, *, user_id: int, role: Role) -> ApplicationData | None:
    stmt = select(RoleApplication).where(
        col(RoleApplication.user_id) == user_id,
        col(RoleApplication.role) == role.value,
        col(RoleApplication.status) == "pending",
    )
    row = (await session.execute(stmt)).scalar_one_or_none()
    return None if row is None else _data(row)


async def decide(
    session: AsyncSession, *, application_id: int, approve: bool, staff_user_id: int
) -> ApplicationData | None:
    """Approve or reject a pending application; None if someone already decided it.

    A conditional UPDATE makes the first decision win when two staff press at once.
    """
    changed = await changed_one(
        session,
        update(RoleApplication)
        .where(col(RoleApplication.id) == application_id, col(RoleApplication.status) == "pending")
        .values(
            status="approved" if approve else "rejected",
            decided_by=staff_user_id,
            decided_at=utcnow(),
        ),
    )
    if not changed:
        return None
    row = await session.get(RoleApplication, application_id, populate_existing=True)
    assert row is not None
    if approve:
        await users.grant_role(session, row.user_id, Role(row.role))
    return _data(row)


async def older_than(session: AsyncSession, cutoff: datetime) -> list[ApplicationData]:
    stmt = select(RoleApplication).where(
        col(RoleApplication.status) == "pending", col(RoleApplication.created_at) < cutoff
    )
    return [_data(r) for r in (await session.execute(stmt)).scalars()]


async def approved_details(session: AsyncSession, *, user_id: int, role: Role) -> dict[str, Any]:
    """What the person's latest approved application said (a driver's plate and car)."""
    stmt = (
        select(RoleApplication)
        .where(
            col(RoleApplication.user_id) == user_id,
            col(RoleApplication.role) == role.value,
            col(RoleApplication.status) == "approved",
        )
        .order_by(col(RoleApplication.id).desc())
        .limit(1)
    )
    row = (await session.execute(stmt)).scalar_one_or_none()
    return {} if row is None else dict(json.loads(row.details))


async def erase_details(session: AsyncSession, user_id: int) -> None:
    """/forget: the applications stay (who decided what), without what they said."""
    await session.execute(
        update(RoleApplication).where(col(RoleApplication.user_id) == user_id).values(details="{}")
    )
