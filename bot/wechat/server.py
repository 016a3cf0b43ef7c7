"""The WeChat message callback over aiohttp, and `linli run` for WeChat.

WeChat POSTs every message and event to the callback URL and waits 5 seconds for the
answer. The callback checks the signature (and, in safe mode, decrypts with the
EncodingAESKey), hands the message to the same handler as every other channel, and:

- if the replies are ready within ``LINLI_WECHAT_REPLY_WITHIN`` seconds, answers with the
  first one in the HTTP response (a passive reply: text only, numbered options) and puts
  any further replies into the outbox once that response has gone out;
- otherwise answers "success" (WeChat then shows nothing and does not retry) and, when
  the replies are ready, puts them into the outbox: the sender delivers them through the
  customer-service API, in order.

A person's replies that went to the outbox are followed there by their later ones until
the outbox holds none, so nothing overtakes. A redelivery WeChat makes while the first
is still being handled is answered "success": the first one's replies are on their way.

Each contact (message, menu click, follow) opens WeChat's 48-hour window: it is recorded,
and the messages kept for this person outside the window are released to the sender.
Unfollowing marks the person unreachable and cancels what waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

from aiohttp import web
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from bot.app import Linli
from bot.settings import Settings
from bot.wechat import CHANNEL, render
from bot.wechat.api import WeChatApi
from bot.wechat.convert import to_incoming, update_id
from bot.wechat.transport import KEEP_RECHECK, WeChatTransport, remember_options
from dialogs.messages import Incoming, Outgoing
from scheduler.ratelimit import limiter_key
from storage import contacts, outbox, updates, users
from storage.models import utcnow

log = logging.getLogger("linli.wechat")

SUCCESS = "success"  # what WeChat expects when there is no passive reply


def make_api(settings: Settings) -> WeChatApi:
    assert settings.wechat_app_secret is not None
    return WeChatApi(
        settings.wechat_app_id,
        settings.wechat_app_secret.get_secret_value(),
        api_base=settings.wechat_api_base,
    )


def make_transport(app: Linli, api: WeChatApi) -> WeChatTransport:
    s = app.settings
    return WeChatTransport(
        api,
        app.db,
        template_id=s.wechat_template_id,
        template_kinds=s.wechat_template_kind_set,
        keep_days=s.wechat_keep_days,
    )


class WeChatChannel:
    """The callback: signature, decryption, the 5-second rule, contacts and the window."""

    def __init__(self, app: Linli, api: WeChatApi) -> None:
        settings = app.settings
        assert settings.wechat_token is not None
        self.app = app
        self.api = api
        self.token = settings.wechat_token.get_secret_value()
        self.crypto = (
            WeChatCrypto(self.token, settings.wechat_aes_key.get_secret_value(), settings.wechat_app_id)
            if settings.wechat_aes_key is not None
            else None
        )
        self.reply_within = settings.wechat_reply_within
        self.path = settings.wechat_path
        self._inflight: dict[str, asyncio.Task[list[Outgoing]]] = {}
        self._background: set[asyncio.Task[None]] = set()
        # People whose replies went to the outbox: later ones follow them there.
        self._deferred: set[str] = set()

    def web_app(self) -> web.Application:
        web_app = web.Application(client_max_size=256 * 1024)
        web_app.router.add_get(self.path, self.verify)
        web_app.router.add_post(self.path, self.callback)
        web_app.router.add_get("/healthz", self.health)
        return web_app

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _signed(self, request: web.Request) -> bool:
        q = request.query
        try:
            check_signature(self.token, q["signature"], q["timestamp"], q["nonce"])
        except (KeyError, InvalidSignatureException):
            return False
        return True

    async def verify(self, request: web.Request) -> web.Response:
        """WeChat's check when the callback URL is configured: echo ``echostr`` if signed."""
        if not self._signed(request):
            return web.Response(status=403, text="invalid signature")
        return web.Response(text=request.query.get("echostr", ""))

    async def callback(self, request: web.Request) -> web.StreamResponse:
        if not self._signed(request):
            return web.Response(status=403, text="invalid signature")
        q = request.query
        body = await request.read()
        encrypted = q.get("encrypt_type") == "aes"
        if encrypted:
            if self.crypto is None:
                log.error("wechat: an encrypted callback, but LINLI_WECHAT_AES_KEY is not set")
                return web.Response(status=400, text="safe mode needs the AES key")
            try:
                body = self.crypto.decrypt_message(body, q["msg_signature"], q["timestamp"], q["nonce"])
            except (KeyError, InvalidSignatureException, InvalidAppIdException):
                return web.Response(status=403, text="invalid message signature")
            except Exception:
                log.warning("wechat: a callback that does not decrypt", exc_info=True)
                return web.Response(status=400, text="cannot decrypt")
        try:
            message = parse_message(body)
        except Exception:
            log.warning("wechat: a callback that does not parse", exc_info=True)
            return web.Response(status=400, text="bad xml")
        if message is None:
            return web.Response(text=SUCCESS)
        passive, rest, incoming = await self.on_message(message)
        if passive is None:
            response = web.Response(text=SUCCESS)
        else:
            xml = TextReply(message=message, content=passive).render()
            if encrypted:
                assert self.crypto is not None
                xml = self.crypto.encrypt_message(xml, q["nonce"], q["timestamp"])
            response = web.Response(text=xml, content_type="application/xml")
        if incoming is None or not rest:
            if incoming is not None and passive is not None and incoming.update_key is not None:
                await self.app.handler.answered([incoming.update_key])
            return response
        # The passive reply goes out first; the rest follow through the outbox.
        await response.prepare(request)
        await response.write_eof()
        await self._defer(incoming.chat_id, rest, incoming.update_key)
        return response

    async def on_message(self, message: Any) -> tuple[str | None, list[Outgoing], Incoming | None]:
        """(passive reply text or None, replies for the outbox, the incoming) for a message."""
        openid = str(message.source)
        if message.type == "event" and getattr(message, "event", "") == "unsubscribe":
            await self._unsubscribed(openid)
            return None, [], None
        key = update_id(message)
        if key in self._inflight:
            return None, [], None  # WeChat's redelivery of one still being handled
        options = await self._options(openid)
        incoming = to_incoming(message, options)
        if incoming is None:
            return None, [], None
        task = asyncio.create_task(self._handle(incoming), name=f"wechat-{key}")
        self._inflight[key] = task
        task.add_done_callback(lambda _: self._inflight.pop(key, None))
        done, _ = await asyncio.wait({task}, timeout=self.reply_within)
        if not done:
            log.info(
                "wechat: replies to %s not ready in %.1fs; they follow by the API", key, self.reply_within
            )
            self._later(task, incoming)
            return None, [], incoming
        replies = task.result()
        if not replies:
            return None, [], incoming
        if openid in self._deferred and not await self._outbox_clear(openid):
            await self._defer(openid, replies, incoming.update_key)
            return None, [], incoming
        first = render.parts(replies[0], menus=False)
        if len(first) != 1 or not isinstance(first[0], render.Text):
            await self._defer(openid, replies, incoming.update_key)  # a picture, or a long text
            return None, [], incoming
        await remember_options(self.app.db, openid, [c.data for c in render.options_of(replies[0])])
        return first[0].text, replies[1:], incoming

    async def _handle(self, incoming: Incoming) -> list[Outgoing]:
        replies = await self.app.handler.handle(incoming)
        try:
            await self._contact(incoming.chat_id)
        except Exception:
            log.exception("wechat: could not record the contact of %s", incoming.chat_id)
        return replies

    async def _contact(self, openid: str) -> None:
        """The person wrote: the window is open again, and what was kept for them is due."""
        now = utcnow()
        async with self.app.db.transaction() as session:
            user = await users.find_by_external(session, channel=CHANNEL, external_id=openid)
            if user is None:
                return
            await contacts.touch(session, user_id=user.id, at=now)
            if user.blocked:
                await users.mark_blocked(session, user.id, blocked=False)
            released = await contacts.release_held(
                session,
                channel=CHANNEL,
                chat_id=openid,
                now=now,
                up_to=now + KEEP_RECHECK + timedelta(minutes=1),
            )
        if released:
            log.info("wechat: %d kept messages for user %s released", released, user.id)
            self.app.limiter.lift(limiter_key(CHANNEL, openid))
            self.app.wake_sender()

    async def _unsubscribed(self, openid: str) -> None:
        async with self.app.db.transaction() as session:
            user = await users.find_by_external(session, channel=CHANNEL, external_id=openid)
            if user is not None:
                await users.mark_blocked(session, user.id)
            cancelled = await outbox.cancel_pending_for_chat(session, channel=CHANNEL, chat_id=openid)
        log.info("wechat: %s unfollowed; %d waiting messages cancelled", openid, cancelled)

    async def _options(self, openid: str) -> list[str]:
        async with self.app.db.transaction() as session:
            user = await users.find_by_external(session, channel=CHANNEL, external_id=openid)
            if user is None:
                return []
            return await contacts.choices_of(session, user_id=user.id)

    def _later(self, task: asyncio.Task[list[Outgoing]], incoming: Incoming) -> None:
        async def follow() -> None:
            replies = await task
            if replies:
                await self._defer(incoming.chat_id, replies, incoming.update_key)

        later = asyncio.create_task(follow(), name=f"wechat-later-{incoming.update_id}")
        self._background.add(later)
        later.add_done_callback(self._background.discard)

    async def _defer(self, openid: str, replies: list[Outgoing], update_key: str | None) -> None:
        self._deferred.add(openid)
        await self.app.defer_replies(CHANNEL, openid, replies, answered=update_key)

    async def _outbox_clear(self, openid: str) -> bool:
        async with self.app.db.transaction() as session:
            waiting = await updates.replies_waiting(session, channel=CHANNEL, chat_id=openid)
        if not waiting:
            self._deferred.discard(openid)
        return not waiting

    async def drain(self) -> None:
        """Wait for replies still being handled (at shutdown) so they reach the outbox."""
        pending = [*self._inflight.values(), *self._background]
        if pending:
            await asyncio.wait(pending, timeout=30)


async def serve(app: Linli, *, api: WeChatApi | None = None) -> tuple[WeChatChannel, web.AppRunner]:
    """Start the callback server and register the WeChat transport and photo fetcher;
    the caller starts the app (alone, or beside Telegram)."""
    settings = app.settings
    api = api or make_api(settings)
    channel = WeChatChannel(app, api)
    app.extra_transports[CHANNEL] = make_transport(app, api)
    app.env.photos.register(CHANNEL, api.download)
    runner = web.AppRunner(channel.web_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.wechat_host, settings.wechat_port)
    await site.start()
    log.info("wechat: callback at http://%s:%s%s", settings.wechat_host, settings.wechat_port, channel.path)
    return channel, runner


async def stop_serving(channel: WeChatChannel, runner: web.AppRunner) -> None:
    await runner.cleanup()
    await channel.drain()
    channel.api.close()


async def run_wechat(app: Linli, *, stop: asyncio.Event | None = None, api: WeChatApi | None = None) -> None:
    """Run Linli on WeChat alone until ``stop`` is set (or SIGTERM/SIGINT)."""
    stop = stop or _stop_on_signals()
    await app.prepare()
    channel, runner = await serve(app, api=api)
    try:
        await app.start({})
        await stop.wait()
    finally:
        await stop_serving(channel, runner)
        await app.stop()
        log.info("wechat: stopped")


def _stop_on_signals() -> asyncio.Event:
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    return stop
