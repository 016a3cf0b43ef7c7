"""The channel-neutral entry: one incoming message in, the replies to its sender out.

Each message is handled in one database transaction: claim the update id
(idempotency), find the person, load the conversation, run the step, save the
conversation, queue messages for others. Either all of it commits or none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import replace

from sqlalchemy.exc import IntegrityError, OperationalError

from dialogs.core import Context
from dialogs.feature import Env
from dialogs.i18n import guess_language, t
from dialogs.messages import Incoming, Outgoing, coalesce
from handlers.locks import KeyedLocks
from handlers.registry import Registry
from handlers.routing import Router
from scheduler.jobs import JobSpec
from storage import conversations, updates, users
from storage.engine import Database

log = logging.getLogger("linli.entry")

MAX_TEXT_IN = 4096  # Telegram's own limit; other channels are cut to the same
MAX_CHAT_ID = 64  # the longest chat id stored (users.chat_id, the group tables)


class _Duplicate(Exception):
    """The update was handled before; raised inside the transaction to roll back."""


class Handler:
    def __init__(
        self,
        db: Database,
        registry: Registry,
        *,
        env: Env | None = None,
        staff_ids: Iterable[str] = (),
        on_scheduled: Callable[[JobSpec], None] | None = None,
    ) -> None:
        self.db = db
        self.router = Router(registry)
        self.env = env or Env()
        self.staff_ids = frozenset(staff_ids)
        self.on_scheduled = on_scheduled
        self.locks = KeyedLocks()

    async def handle(self, incoming: Incoming) -> list[Outgoing]:
        if len(incoming.text) > MAX_TEXT_IN:
            incoming = replace(incoming, text=incoming.text[:MAX_TEXT_IN])
        if incoming.moved_to is not None and not 0 < len(incoming.moved_to) <= MAX_CHAT_ID:
            incoming = replace(incoming, moved_to=None)  # no chat has that id: not a move
        async with self.locks.hold(incoming.conversation_key):
            for attempt in (1, 2, 3):
                try:
                    ctx = await self._handle_once(incoming)
                except _Duplicate:
                    log.info("duplicate update %s: answering as before", incoming.update_key)
                    return await self._replay(incoming)
                except (conversations.ConcurrentUpdate, IntegrityError, OperationalError) as exc:
                    # Another worker got there first (or the database was busy or hit a
                    # deadlock): everything rolled back, so handling again is safe. Other
                    # database errors (bad data) would only fail again.
                    if attempt == 3:
                        log.exception("giving up on %s", incoming.update_key)
                        return [self._sorry(incoming)]
                    log.info("retrying %s after %s", incoming.update_key, type(exc).__name__)
                    continue
                except Exception:
                    log.exception("error handling %s", incoming.update_key)
                    return [self._sorry(incoming)]
                break
        if self.on_scheduled is not None:
            for spec in ctx.jobs:
                self.on_scheduled(spec)
        return ctx.replies

    async def _handle_once(self, incoming: Incoming) -> Context:
        async with self.db.transaction() as session:
            sender = incoming.sender
            user = await users.ensure_user(
                session,
                channel=incoming.channel,
                external_id=sender.external_id,
                chat_id=incoming.chat_id if incoming.chat_kind == "private" else sender.external_id,
                client_language=sender.language_code,
                display_name=sender.display_name,
                username=sender.username,
                staff_ids=self.staff_ids if incoming.channel == "telegram" else (),
            )
            state = await conversations.load(session, incoming.conversation_key)
            ctx = Context(
                incoming=incoming,
                user=user,
                session=session,
                nav=self.router,
                env=self.env,
                flow=state.flow,
                step=state.step,
                data=dict(state.data),
            )
            await self.router.route(ctx)
            ctx.replies = coalesce(ctx.replies)
            if ctx.erased:
                await conversations.delete_key(session, incoming.conversation_key)
            else:
                await conversations.save(
                    session,
                    old=state,
                    flow=ctx.flow,
                    step=ctx.step,
                    data=ctx.data,
                    user_id=user.id,
                )
            # Claimed last, with the answer: a redelivery is either handled in full
            # (nothing committed) or answered as before (all committed), never half.
            key = incoming.update_key
            if key is not None and not await updates.claim(
                session, key, user_id=user.id, replies=[r.to_dict() for r in ctx.replies]
            ):
                raise _Duplicate(key)
            return ctx

    async def answered(self, update_keys: list[str]) -> None:
        """The channel delivered these updates' answers; drop the copies kept for replay.

        Called once per batch, so it costs one small transaction per batch, not per update.
        """
        try:
            async with self.db.transaction() as session:
                await updates.forget_replies_for(session, update_keys)
        except Exception:  # only a later replay of an answer already given is at stake
            log.exception("could not clear stored answers")

    async def _replay(self, incoming: Incoming) -> list[Outgoing]:
        assert incoming.update_key is not None
        async with self.db.transaction() as session:
            return [Outgoing.from_dict(r) for r in await updates.stored_replies(session, incoming.update_key)]

    def _sorry(self, incoming: Incoming) -> Outgoing:
        return Outgoing(t(guess_language(incoming.sender.language_code), "common.error"))
