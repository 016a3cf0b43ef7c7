"""Webhook mode: Telegram POSTs each update to us; any number of workers behind a load balancer.

Each worker is an aiohttp server. For every POST it:

1. checks the ``X-Telegram-Bot-Api-Secret-Token`` header against ``LINLI_WEBHOOK_SECRET``
   (constant-time; 401 otherwise: only Telegram knows the secret, set with setWebhook);
2. handles the update exactly as long polling does (``UpdateHandler``): one database
   transaction claims the update id with its effects, replies go out within the rate
   limits (or into the outbox), and the update is marked answered;
3. answers 200 only then. A worker killed before that leaves the POST unanswered, so
   Telegram sends the update again, to whichever worker the load balancer picks; the
   claim makes that harmless (the step is not run twice; stored replies are replayed
   only if they had not been delivered).

What stays open is the instant between Telegram accepting a reply and its delivery being
recorded (milliseconds; an answer of several replies records each): a worker killed
exactly then has that one reply sent again by the worker that gets the redelivery. The
window is the same as in polling mode.

Several workers: per-chat order holds across them because a chat's updates reach us one
at a time (Telegram waits for the answer to one before sending that chat's next) and,
should two overlap anyway, the conversation row is locked (``SELECT … FOR UPDATE`` on
PostgreSQL) while each is handled. Within one worker a chat's updates also wait for each
other.

Replies that cannot go out now are not moved to the outbox as in polling mode (where a
waiting reply would hold up the confirmation of everyone's updates): a webhook request
holds up only its own chat, so a reply waits up to ``REPLY_WAIT`` for the rate limiter,
and if that is not enough (a long 429, Telegram unreachable) the worker answers 503 and
Telegram delivers the update again later, when the kept answer (what is still undelivered
of it) is replayed. Nothing of a chat is ever in the outbox while its next update is
answered directly, so no worker needs to ask the database before replying.

The leader (advisory lock, see storage/leader.py) runs the sender and the timers; every
worker handles updates.

Start-up calls setWebhook with the URL, the secret and ``allowed_updates`` (every worker
does; it is idempotent). Stopping does **not** call deleteWebhook by default: the other
workers still serve it, and if this was the last one Telegram keeps the updates (for up
to 24 hours) and retries until a worker is back, which is what a rolling restart wants.
Set ``LINLI_WEBHOOK_DELETE_ON_STOP=true`` only to switch a deployment back to long
polling (polling mode deletes the webhook at start anyway). On SIGTERM a worker stops
taking updates (503: Telegram retries them on another worker), finishes those in hand,
then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from urllib.parse import urlsplit

from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

from bot import ops
from bot.app import Linli
from bot.telegram.api import TelegramApi
from bot.telegram.runner import ALLOWED_UPDATES, UpdateHandler, _chat_key
from dialogs.messages import Outgoing
from handlers.locks import KeyedLocks

log = logging.getLogger("linli.telegram")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 -- a header name
# Telegram's own cap on parallel webhook connections is 100; 40 is its default.
MAX_CONNECTIONS = 40
# Updates handled at once by one worker; more wait for a slot (Telegram keeps its
# connections open meanwhile).
CONCURRENCY = 64
# How long a stopping worker lets the updates in hand finish.
DRAIN_TIMEOUT = 25.0
# How long a reply may wait for the rate limiter before the update is left to Telegram's
# redelivery (well below Telegram's patience with an unanswered webhook).
REPLY_WAIT = 20.0


class WebhookServer(UpdateHandler):
    def __init__(
        self,
        app: Linli,
        bot: TelegramApi,
        *,
        bot_username: str | None,
        secret: str,
        path: str,
        concurrency: int = CONCURRENCY,
    ) -> None:
        super().__init__(app, bot, bot_username=bot_username, max_reply_wait=REPLY_WAIT)
        self.secret = secret.encode()
        self.path = path
        self._slots = asyncio.Semaphore(concurrency)
        self._chats = KeyedLocks()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.accepting = True
        self._unanswered: set[str] = set()

    async def _defer(self, chat_id: int, replies: list[Outgoing], update_key: str | None) -> None:
        """The rest of the answer cannot go out now: leave the update unanswered (503), so
        Telegram delivers it again and the kept answer is replayed then."""
        if update_key is None:  # nothing to replay it from: the outbox keeps it
            await super()._defer(chat_id, replies, update_key)
        else:
            self._unanswered.add(update_key)

    def web_app(self, *, with_ops: bool) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post(self.path, self.receive)
        if with_ops:
            ops.add_routes(app, self.app)
        return app

    async def receive(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self.secret):
            log.warning("webhook: a request without the right secret token from %s", request.remote)
            return web.Response(status=401, text="wrong secret token")
        if not self.accepting:
            return web.Response(status=503, text="stopping")  # Telegram retries elsewhere
        try:
            data = await request.json(loads=json.loads)
            update = Update.model_validate(data)
        except (ValueError, ValidationError) as e:
            # Retrying would not make it readable: acknowledge it, and say so.
            log.error("webhook: an update that cannot be read was dropped: %s", e)
            return web.Response(status=200)
        self._in_flight += 1
        self._idle.clear()
        try:
            key = f"telegram:{update.update_id}"
            async with self._chats.hold(str(_chat_key(update))), self._slots:
                await self.handle_update(update)
                await self.marked(key)
            if key in self._unanswered:
                self._unanswered.discard(key)
                return web.Response(status=503, text="answer not delivered yet; send it again")
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()
        return web.Response(status=200)

    async def drain(self) -> None:
        """Stop taking updates; wait (up to ``DRAIN_TIMEOUT``) for those in hand."""
        self.accepting = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), DRAIN_TIMEOUT)


def webhook_path(url: str) -> str:
    """The path part of the public URL: what the load balancer forwards to us."""
    return urlsplit(url).path or "/"


async def run_webhook(app: Linli, bot: TelegramApi, stop: asyncio.Event, *, bot_username: str | None) -> None:
    """Serve updates by webhook until ``stop`` is set."""
    settings = app.settings
    assert settings.webhook_url is not None
    assert settings.webhook_secret is not None
    secret = settings.webhook_secret.get_secret_value()
    server = WebhookServer(
        app, bot, bot_username=bot_username, secret=secret, path=webhook_path(settings.webhook_url)
    )
    runner = await ops.serve(server.web_app(with_ops=settings.ops_listen is None), settings.webhook_listen)
    try:
        await bot.set_webhook(
            url=settings.webhook_url,
            secret_token=secret,
            allowed_updates=ALLOWED_UPDATES,
            max_connections=MAX_CONNECTIONS,
            drop_pending_updates=False,
        )
        log.info("telegram: webhook set; taking updates on %s", settings.webhook_listen)
        await stop.wait()
        await server.drain()
        if settings.webhook_delete_on_stop:
            await bot.delete_webhook(drop_pending_updates=False)
            log.info("telegram: webhook deleted (LINLI_WEBHOOK_DELETE_ON_STOP)")
    finally:
        server.accepting = False
        await runner.cleanup()
