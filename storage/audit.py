"""The audit log: privileged actions and refused attempts."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import AuditEntry

log = logging.getLogger("linli.audit")


def _storable(value: str) -> str:
    # Callers clean what people typed; this only keeps the row storable whatever
    # reaches it: PostgreSQL refuses NUL in text, so the refusal itself cannot fail.
    return value.replace("\x00", "")


async def record(
    session: AsyncSession,
    *,
    actor_user_id: int | None,
    action: str,
    target: str = "",
    allowed: bool = True,
    detail: str = "",
) -> None:
    action, target, detail = (_storable(v) for v in (action, target, detail))
    session.add(
        AuditEntry(
            actor_user_id=actor_user_id,
            action=action[:50],
            target=target[:100],
            allowed=allowed,
            detail=detail[:500],
        )
    )
    log.log(
        logging.INFO if allowed else logging.WARNING,
        # Hostile values are logged quoted (repr), so a newline cannot forge a log line.
        "audit action=%r actor=%s target=%r allowed=%s %r",
        action,
        actor_user_id,
        target,
        allowed,
        detail,
    )


async def refused(session: AsyncSession, *, limit: int = 50) -> list[AuditEntry]:
    stmt = (
        select(AuditEntry)
        .where(col(AuditEntry.allowed).is_(False))
        .order_by(col(AuditEntry.id).desc())
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())
