"""In-process fake of WeChat for end-to-end tests: both of WeChat's sides.

- **The API server** (what ``LINLI_WECHAT_API_BASE`` points at): ``/token``,
  ``/message/custom/send`` (text, image, msgmenu), ``/message/template/send``,
  ``/media/upload`` and ``/media/get``, answering with WeChat's JSON and its real error
  codes: 40001 (invalid credential: a wrong secret or a token it no longer knows), 42001
  (expired token), 40003 (invalid openid), 43004 (require subscribe), 45015 (response
  out of time limit: more than 48 hours since the person's last message), 45047 (out of
  response count limit: more than 20 customer-service messages since then), 45002
  (content too long), 40037 (invalid template id). Errors come with HTTP 200, as WeChat's do.
- **The callback caller**: a follower writes (text, voice, location, image, a menu click,
  a tap on a menu message, follow/unfollow) and the fake POSTs the signed XML to Linli's
  callback, in plain or safe (AES) mode, and reads the passive reply, decrypting it and
  checking its signature in safe mode.

Time is the fake's own (``clock``), so a test can move a person's last message back
49 hours without waiting.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp
import xmltodict
from aiohttp import web
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import check_signature

APP_ID = "wx1234567890abcdef"
APP_SECRET = "s3cr3t-app-secret-for-tests-only"
TOKEN = "linli-callback-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters

WINDOW_SECONDS = 48 * 3600
MAX_REPLIES_PER_CONTACT = 20
MAX_TEXT_BYTES = 2048

ERRORS = {
    40001: "invalid credential, access_token is invalid or not latest",
    40003: "invalid openid",
    40007: "invalid media_id",
    40037: "invalid template_id",
    42001: "access_token expired",
    43004: "require subscribe",
    45002: "content size out of limit",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
}


@dataclass
class Sent:
    """A message Linli sent through the API."""

    openid: str
    kind: str  # text | image | msgmenu | template
    body: dict[str, Any]
    at: float

    @property
    def text(self) -> str:
        if self.kind == "text":
            return str(self.body["text"]["content"])
        if self.kind == "msgmenu":
            menu = self.body["msgmenu"]
            options = "\n".join(o["content"] for o in menu["list"])
            return f"{menu['head_content']}\n{options}\n{menu['tail_content']}"
        if self.kind == "template":
            return "\n".join(str(v.get("value", "")) for v in self.body["data"].values())
        return ""

    @property
    def menu(self) -> list[tuple[str, str]]:
        if self.kind != "msgmenu":
            return []
        return [(o["id"], o["content"]) for o in self.body["msgmenu"]["list"]]


@dataclass
class Follower:
    openid: str
    subscribed: bool = True
    last_inbound: float | None = None
    replies_since: int = 0


@dataclass
class Reply:
    """What the callback answered: a passive reply's text, or None for "success"."""

    status: int
    text: str | None
    raw: str


@dataclass
class FakeWeChat:
    clock: Callable[[], float] = time.time
    safe_mode: bool = False
    callback_url: str = ""
    followers: dict[str, Follower] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    templates: set[str] = field(default_factory=lambda: {"TPL-NOTICE"})
    media: dict[str, bytes] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)  # token → expires at
    token_fetches: int = 0
    requests: list[tuple[str, int]] = field(default_factory=list)  # (path, errcode)
    # Codes the next custom-send calls answer with, before any other check.
    fail_next: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ids = itertools.count(6_900_000_000_000_000_001)
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()
        self.base_url = ""
        self.crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_get("/cgi-bin/token", self._token)
        app.router.add_post("/cgi-bin/message/custom/send", self._custom_send)
        app.router.add_post("/cgi-bin/message/template/send", self._template_send)
        app.router.add_post("/cgi-bin/media/upload", self._upload)
        app.router.add_get("/cgi-bin/media/get", self._media_get)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/cgi-bin/"
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- the API side ---------------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Every token issued so far expires (42001 from now on)."""
        for token in self.tokens:
            self.tokens[token] = 0.0

    def revoke_tokens(self) -> None:
        """Every token issued so far is forgotten (40001, as after a token fetched elsewhere)."""
        self.tokens.clear()

    def _error(self, path: str, code: int) -> web.Response:
        self.requests.append((path, code))
        return web.json_response({"errcode": code, "errmsg": ERRORS.get(code, "error")})

    def _ok(self, path: str, **extra: Any) -> web.Response:
        self.requests.append((path, 0))
        return web.json_response({"errcode": 0, "errmsg": "ok", **extra})

    def _check_token(self, request: web.Request) -> int:
        token = request.query.get("access_token", "")
        if token not in self.tokens:
            return 40001
        if self.tokens[token] <= self.clock():
            return 42001
        return 0

    async def _token(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("grant_type") != "client_credential" or q.get("appid") != APP_ID:
            return self._error("token", 40013)
        if q.get("secret") != APP_SECRET:
            return self._error("token", 40001)
        self.token_fetches += 1
        token = secrets.token_urlsafe(48)
        self.tokens[token] = self.clock() + 7200
        self.requests.append(("token", 0))
        return web.json_response({"access_token": token, "expires_in": 7200})

    async def _custom_send(self, request: web.Request) -> web.Response:
        path = "custom/send"
        if code := self._check_token(request):
            return self._error(path, code)
        body = json.loads(await request.read())
        if self.fail_next:
            return self._error(path, self.fail_next.pop(0))
        person = self.followers.get(body.get("touser", ""))
        if person is None:
            return self._error(path, 40003)
        if not person.subscribed:
            return self._error(path, 43004)
        if person.last_inbound is None or self.clock() - person.last_inbound > WINDOW_SECONDS:
            return self._error(path, 45015)
        if person.replies_since >= MAX_REPLIES_PER_CONTACT:
            return self._error(path, 45047)
        kind = body.get("msgtype")
        if kind == "text" and len(body["text"]["content"].encode()) > MAX_TEXT_BYTES:
            return self._error(path, 45002)
        if kind == "image" and body["image"]["media_id"] not in self.media:
            return self._error(path, 40007)
        if kind not in ("text", "image", "msgmenu"):
            return self._error(path, 40008)
        person.replies_since += 1
        self._record(Sent(person.openid, kind, body, self.clock()))
        return self._ok(path)

    async def _template_send(self, request: web.Request) -> web.Response:
        path = "template/send"
        if code := self._check_token(request):
            return self._error(path, code)
        body = json.loads(await request.read())
        if body.get("template_id") not in self.templates:
            return self._error(path, 40037)
        person = self.followers.get(body.get("touser", ""))
        if person is None:
            return self._error(path, 40003)
        if not person.subscribed:
            return self._error(path, 43004)
        msgid = next(self._ids)
        self._record(Sent(person.openid, "template", body, self.clock()))
        return self._ok(path, msgid=msgid)

    async def _upload(self, request: web.Request) -> web.Response:
        if code := self._check_token(request):
            return self._error("media/upload", code)
        reader = await request.multipart()
        part = await reader.next()
        assert part is not None
        content = await part.read()  # type: ignore[union-attr]
        media_id = f"MEDIA_{secrets.token_hex(8)}"
        self.media[media_id] = bytes(content)
        self.requests.append(("media/upload", 0))
        return web.json_response({"type": "image", "media_id": media_id, "created_at": int(self.clock())})

    async def _media_get(self, request: web.Request) -> web.Response:
        if code := self._check_token(request):
            return self._error("media/get", code)
        content = self.media.get(request.query.get("media_id", ""))
        if content is None:
            return self._error("media/get", 40007)
        return web.Response(body=content, content_type="image/jpeg")

    def _record(self, sent: Sent) -> None:
        self.sent.append(sent)
        self._changed.set()

    # -- waiting for what Linli sent --------------------------------------------------------

    def to(self, openid: str, since: int = 0) -> list[Sent]:
        return [s for s in self.sent[since:] if s.openid == openid]

    async def wait_for(self, openid: str, expect: str, *, since: int = 0, within: float = 15) -> Sent:
        try:
            async with asyncio.timeout(within):
                while True:
                    for sent in self.to(openid, since):
                        if expect in sent.text:
                            return sent
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            seen = "\n---\n".join(f"[{s.kind}] {s.text}" for s in self.to(openid, since))
            raise AssertionError(f"nothing with {expect!r} sent to {openid}; sent since:\n{seen}") from None

    # -- the follower side ------------------------------------------------------------------

    def follower(self, openid: str) -> Follower:
        return self.followers.setdefault(openid, Follower(openid))

    async def post(self, openid: str, fields: dict[str, Any], *, msg_id: int | None = None) -> Reply:
        """Send one callback as this follower (a message opens their 48-hour window)."""
        person = self.follower(openid)
        now = int(self.clock())
        xml_fields = {"ToUserName": "gh_linli", "FromUserName": openid, "CreateTime": now, **fields}
        if fields.get("MsgType") != "event":
            xml_fields["MsgId"] = msg_id if msg_id is not None else next(self._ids)
        if fields.get("Event") != "unsubscribe" and fields.get("Event") != "LOCATION":
            person.last_inbound = self.clock()
            person.replies_since = 0
        xml = xmltodict.unparse({"xml": xml_fields}, full_document=False)
        timestamp, nonce = str(now), secrets.token_hex(5)
        params = {"timestamp": timestamp, "nonce": nonce, "signature": _sign(TOKEN, timestamp, nonce)}
        params["openid"] = openid
        if self.safe_mode:
            encrypted = xmltodict.parse(self.crypto.encrypt_message(xml, nonce, timestamp))["xml"]
            params["encrypt_type"] = "aes"
            params["msg_signature"] = encrypted["MsgSignature"]
            xml = xmltodict.unparse(
                {"xml": {"ToUserName": "gh_linli", "Encrypt": encrypted["Encrypt"]}}, full_document=False
            )
        async with self._session.post(self.callback_url, params=params, data=xml.encode()) as response:
            raw = await response.text()
            status = response.status
        return Reply(status, self._passive(raw, timestamp, nonce) if status == 200 else None, raw)

    def _passive(self, raw: str, timestamp: str, nonce: str) -> str | None:
        if raw in ("", "success"):
            return None
        if self.safe_mode:
            wrapped = xmltodict.parse(raw)["xml"]
            # The reply is signed with the token over its own timestamp and nonce.
            raw = self.crypto.decrypt_message(
                raw, wrapped["MsgSignature"], wrapped["TimeStamp"], wrapped["Nonce"]
            )
        reply = xmltodict.parse(raw)["xml"]
        assert reply["MsgType"] == "text", reply
        return str(reply["Content"])

    async def text(self, openid: str, content: str, **extra: Any) -> Reply:
        return await self.post(openid, {"MsgType": "text", "Content": content, **extra})

    async def voice(self, openid: str, recognition: str) -> Reply:
        return await self.post(
            openid, {"MsgType": "voice", "MediaId": "VOICE_1", "Format": "amr", "Recognition": recognition}
        )

    async def location(self, openid: str, lat_gcj: float, lon_gcj: float, label: str = "") -> Reply:
        return await self.post(
            openid,
            {
                "MsgType": "location",
                "Location_X": lat_gcj,
                "Location_Y": lon_gcj,
                "Scale": 15,
                "Label": label,
            },
        )

    async def image(self, openid: str, content: bytes) -> Reply:
        media_id = f"MEDIA_IN_{secrets.token_hex(6)}"
        self.media[media_id] = content
        return await self.post(
            openid, {"MsgType": "image", "PicUrl": f"http://mmbiz.example/{media_id}", "MediaId": media_id}
        )

    async def click(self, openid: str, key: str) -> Reply:
        return await self.post(openid, {"MsgType": "event", "Event": "CLICK", "EventKey": key})

    async def tap_menu(self, openid: str, sent: Sent, label: str) -> Reply:
        """Tap an option of a menu message: WeChat sends its text with ``bizmsgmenuid``."""
        ident, content = next((i, c) for i, c in sent.menu if label in c)
        return await self.text(openid, content, bizmsgmenuid=ident)

    async def subscribe(self, openid: str) -> Reply:
        self.follower(openid).subscribed = True
        return await self.post(openid, {"MsgType": "event", "Event": "subscribe", "EventKey": ""})

    async def unsubscribe(self, openid: str) -> Reply:
        self.follower(openid).subscribed = False
        return await self.post(openid, {"MsgType": "event", "Event": "unsubscribe", "EventKey": ""})

    async def verify_url(self, echostr: str, *, token: str = TOKEN) -> tuple[int, str]:
        timestamp, nonce = str(int(self.clock())), secrets.token_hex(5)
        params = {
            "signature": _sign(token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "echostr": echostr,
        }
        async with self._session.get(self.callback_url, params=params) as response:
            return response.status, await response.text()


def _sign(token: str, timestamp: str, nonce: str) -> str:
    signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
    check_signature(token, signature, timestamp, nonce)  # the same rule wechatpy checks
    return signature


async def started(**kwargs: Any) -> AsyncIterator[FakeWeChat]:
    async with FakeWeChat(**kwargs) as server:
        yield server
