"""The WeChat API calls Linli makes, made with wechatpy's client and awaited in a thread.

wechatpy's client is synchronous (requests), so each call runs in a worker thread. Its
own token retry (which retries without end while the server keeps saying "invalid
token") is off: an access token WeChat rejects (40001, 40014, 42001) is fetched anew
once and the call retried once; a second rejection is an error like any other.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

log = logging.getLogger("linli.wechat")

T = TypeVar("T")

# The access token was refused: invalid (40001, also a wrong secret), malformed (40014)
# or expired (42001).
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
# Other codes the channel reacts to (WeChat's global return codes).
SYSTEM_BUSY = -1
INVALID_OPENID = 40003
INVALID_MEDIA = 40007
UNSUBSCRIBED = 43004  # the person does not follow the account (any more)
API_QUOTA = 45009  # the daily quota of this API is used up
CONTENT_TOO_LONG = 45002
OUT_OF_WINDOW = 45015  # more than 48 hours since the person last wrote
TOO_MANY_REPLIES = 45047  # too many customer-service messages since the person last wrote
API_FREQ = 45011  # calling too often


class WeChatError(Exception):
    """WeChat answered with a non-zero errcode (or, with ``errcode`` None, an HTTP error)."""

    def __init__(self, errcode: int | None, errmsg: str) -> None:
        super().__init__(f"WeChat error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class _Client(WeChatClient):  # wechatpy has no type hints: WeChatClient is Any here
    """wechatpy's client against a configurable API base, fetching tokens one at a time."""

    def __init__(self, app_id: str, secret: str, api_base: str, timeout: float) -> None:
        super().__init__(app_id, secret, timeout=timeout, auto_retry=False)
        self.API_BASE_URL = api_base if api_base.endswith("/") else api_base + "/"
        self._token_lock = threading.Lock()

    def fetch_access_token(self) -> dict[str, Any]:
        with self._token_lock:
            result: dict[str, Any] = self._fetch_access_token(
                url=self.API_BASE_URL + "token",
                params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
            )
            return result

    def current_token(self) -> str | None:
        token: str | None = self.session.get(self.access_token_key)
        return token

    def refresh(self, rejected: str | None) -> None:
        """Fetch a new token unless another thread already replaced the rejected one."""
        with self._token_lock:
            if self.current_token() != rejected:
                return
            self.session.delete(self.access_token_key)
        self.fetch_access_token()


class WeChatApi:
    """The calls Linli makes: customer-service messages (text, image, menu), template
    messages, and temporary media (upload for pictures it sends, download for those it got)."""

    def __init__(self, app_id: str, secret: str, *, api_base: str, timeout: float = 10.0) -> None:
        self._client = _Client(app_id, secret, api_base, timeout)

    async def _call(self, call: Callable[[_Client], T]) -> T:
        for attempt in (1, 2):
            token = self._client.current_token()
            try:
                return await asyncio.to_thread(call, self._client)
            except WeChatClientException as e:
                errcode = None if e.errcode is None else int(e.errcode)
                if errcode in TOKEN_ERRORS and attempt == 1:
                    log.info("wechat: access token refused (%s); fetching a new one", errcode)
                    await asyncio.to_thread(self._client.refresh, token)
                    continue
                raise WeChatError(errcode, str(e.errmsg or "")) from e
        raise AssertionError("unreachable")

    async def send_text(self, openid: str, text: str) -> None:
        await self._call(lambda c: c.message.send_text(openid, text))

    async def send_image(self, openid: str, media_id: str) -> None:
        await self._call(lambda c: c.message.send_image(openid, media_id))

    async def send_menu(self, openid: str, head: str, options: list[tuple[str, str]], tail: str) -> None:
        """A customer-service menu message (msgmenu): options come back as text messages
        carrying ``bizmsgmenuid``."""
        menu = {
            "head_content": head,
            "list": [{"id": ident, "content": label} for ident, label in options],
            "tail_content": tail,
        }
        await self._call(lambda c: c.message.send_msg_menu(openid, menu))

    async def send_template(self, openid: str, template_id: str, data: dict[str, dict[str, str]]) -> str:
        result = await self._call(lambda c: c.message.send_template(openid, template_id, data))
        return str(result.get("msgid", ""))

    async def upload_image(self, content: bytes, filename: str = "photo.jpg") -> str:
        result = await self._call(
            lambda c: c.media.upload("image", (filename, io.BytesIO(content), "image/jpeg"))
        )
        return str(result["media_id"])

    async def download(self, media_id: str) -> bytes:
        response = await self._call(lambda c: c.media.download(media_id))
        if isinstance(response, dict):  # a JSON answer without errcode: not a file
            raise WeChatError(None, f"no file for media {media_id}")
        content: bytes = response.content
        return content

    def close(self) -> None:
        self._client._http.close()
