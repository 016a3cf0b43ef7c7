"""The one way to message anyone other than the person who just wrote.

Everything goes through the persisted outbox, in the same transaction as the change
that caused it, so a crash loses both or neither; the sender is woken when that
transaction commits (storage.engine.Database.transaction). A message is built per
recipient with a translator in their language. Producers that may run twice (a job
retried after a crash) pass a ``dedupe_key``: the second enqueue is a no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.i18n import Tr
from dialogs.messages import Outgoing
from storage import outbox
from storage.data import UserData

Build = Callable[[Tr], Outgoing]


async def to_user(
    session: AsyncSession,
    recipient: UserData,
    build: Build,
    *,
    kind: str,
    dedupe_key: str | None = None,
) -> bool:
    """Queue a message for one person; nothing for people who blocked Linli or were erased."""
    if recipient.blocked or recipient.forgotten:
        return False
    return await outbox.enqueue(
        session,
        channel=recipient.channel,
        chat_id=recipient.chat_id,
        user_id=recipient.id,
        payload=build(Tr(recipient.language)).to_dict(),
        kind=kind,
        dedupe_key=dedupe_key,
    )


async def to_users(
    session: AsyncSession,
    recipients: Iterable[UserData],
    build: Build,
    *,
    kind: str,
    dedupe: str | None = None,
) -> int:
    """The same message to several people, each in their language; ``dedupe`` is
    suffixed with each recipient's id. Returns how many were queued."""
    queued = 0
    for person in recipients:
        key = f"{dedupe}:{person.id}" if dedupe is not None else None
        queued += await to_user(session, person, build, kind=kind, dedupe_key=key)
    return queued


async def to_group(
    session: AsyncSession,
    *,
    channel: str,
    chat_id: str,
    message: Outgoing,
    kind: str,
    dedupe_key: str | None = None,
) -> bool:
    """Queue a message for a group chat (paced at the platform's group limit)."""
    return await outbox.enqueue(
        session,
        channel=channel,
        chat_id=chat_id,
        payload=message.to_dict(),
        kind=kind,
        dedupe_key=dedupe_key,
        is_group=True,
    )


async def to_chat(
    session: AsyncSession, *, channel: str, chat_id: str, message: Outgoing, kind: str, is_group: bool = False
) -> bool:
    """Queue a message for a chat by its id (answers a channel could not send at once)."""
    return await outbox.enqueue(
        session, channel=channel, chat_id=chat_id, payload=message.to_dict(), kind=kind, is_group=is_group
    )
