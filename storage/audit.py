"""The audit log: privileged actions and refused attempts."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dialogs.validate import strip_controls
from storage.models import AuditEntry

log = logging.getLogger("linli.audit")


async def record(
    session: AsyncSession,
    *,
    actor_user_id: int | None,
    action: str,
    target: str = "",
    allowed: bool = True,
    detail: str = "",
) -> None:
    # Forged input lands here verbatim; control characters (NUL above all, which
    # PostgreSQL refuses) must not be able to make the refusal itself fail.
    action, target, detail = (strip_controls(v) for v in (action, target, detail))
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
        "audit action=%s actor=%s target=%s allowed=%s %s",
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
