"""Sending to WeChat: the customer-service API within the 48-hour window, and what
happens outside it.

WeChat lets an account write to a person through the customer-service API only within
48 hours of that person's last message (or menu click, or follow). The channel records
every contact (``storage.contacts``); before each outbox message it checks the window:

- **inside**: the message goes by the customer-service API (text, picture, menu message);
- **outside** (or WeChat says so: 45015, or 45047 when too many messages followed one
  contact): the message is **kept** and delivered at the person's next contact, when
  the channel releases the kept messages. For the kinds in
  ``LINLI_WECHAT_TEMPLATE_KINDS`` (rides, legal consultations, reports, applications:
  news a person acts on) a **template message** also goes out at once, if
  ``LINLI_WECHAT_TEMPLATE_ID`` is set, saying what happened and to reply to see it.
  Notices and other kinds only wait. A message kept longer than
  ``LINLI_WECHAT_KEEP_DAYS`` is given up and recorded as failed ("not delivered: the
  person did not write within …"), never dropped silently.

Error codes → the sender's outcomes: 43004 (unfollowed) and 40003 (no such OpenID) →
``RecipientGone``; 45009 (daily quota) and 45011 (frequency) → ``RetryLater`` for the
whole account; 40001/40014/42001 (token) are retried once with a new token by the API
wrapper, then transient; -1 (system busy), network and HTTP errors → transient; other
codes (45002 too long, 40007 bad media…) → ``PermanentFailure``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.wechat import CHANNEL, render
from bot.wechat.api import (
    API_FREQ,
    API_QUOTA,
    INVALID_OPENID,
    OUT_OF_WINDOW,
    SYSTEM_BUSY,
    TOO_MANY_REPLIES,
    UNSUBSCRIBED,
    WeChatApi,
    WeChatError,
)
from dialogs.messages import Outgoing
from scheduler.delivery import PermanentFailure, RecipientGone, RetryLater
from storage import contacts, users
from storage.engine import Database
from storage.models import utcnow
from storage.outbox import OutboxItem

log = logging.getLogger("linli.wechat")

SHANGHAI = ZoneInfo("Asia/Shanghai")

WINDOW = timedelta(hours=48)
# A little less than 48 hours, so a message does not reach WeChat just after the window.
SAFE_WINDOW = WINDOW - timedelta(minutes=5)
# How often a kept message is looked at again, in case the contact was recorded by
# another worker (this process releases kept messages at once when it sees the contact).
KEEP_RECHECK = timedelta(hours=1)


class Outside(Exception):
    """The message cannot go by the customer-service API now."""


class WeChatTransport:
    def __init__(
        self,
        api: WeChatApi,
        db: Database,
        *,
        template_id: str = "",
        template_kinds: frozenset[str] = frozenset(),
        keep_days: int = 3,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.api = api
        self.db = db
        self.template_id = template_id
        self.template_kinds = template_kinds
        self.keep = timedelta(days=keep_days)
        self.now = now
        self._nudged: set[int] = set()

    async def deliver(self, item: OutboxItem) -> str | None:
        if item.is_group:
            raise PermanentFailure("a WeChat Official Account has no group chats")
        message = Outgoing.from_dict(item.payload)
        async with self.db.transaction() as session:
            last = await contacts.last_inbound(session, channel=CHANNEL, chat_id=item.chat_id)
        try:
            if last is None or self.now() - last >= SAFE_WINDOW:
                raise Outside("outside the 48-hour window")
            await send(self.api, self.db, item.chat_id, [message])
        except Outside as e:
            return await self._keep(item, str(e))
        except WeChatError as e:
            if e.errcode in (OUT_OF_WINDOW, TOO_MANY_REPLIES):
                return await self._keep(item, f"WeChat {e.errcode}: {e.errmsg}")
            raise outcome(e) from e
        return None

    async def _keep(self, item: OutboxItem, why: str) -> str | None:
        """Keep the message for the person's next contact (and nudge them by template)."""
        kept_for = KEEP_RECHECK * item.attempts
        if kept_for >= self.keep:
            raise PermanentFailure(
                f"not delivered: the person did not write to the WeChat account within "
                f"{self.keep.days} days ({why})"
            )
        if self.template_id:
            await self._nudge(item)
        log.info("wechat: outbox item %s kept for the next contact (%s)", item.id, why)
        raise RetryLater(KEEP_RECHECK.total_seconds())

    async def _nudge(self, item: OutboxItem) -> None:
        """One template message for the news kept for this person that warrants one.

        Kept messages wait in order behind the first, so the whole chat is looked at:
        every waiting message of a template kind not yet announced counts, and one
        template announces them (the newest one's first line, and how many)."""
        async with self.db.transaction() as session:
            waiting = await contacts.waiting_kinds(session, channel=CHANNEL, chat_id=item.chat_id)
        news = [(i, p) for i, kind, p in waiting if kind in self.template_kinds and i not in self._nudged]
        if not news:
            return
        self._nudged.update(i for i, _ in news)
        message = Outgoing.from_json(news[-1][1])
        zh = render._zh(message)
        first_line = next((line for line in message.text.splitlines() if line.strip()), "")
        count = len(news)
        data = {
            "first": {"value": (f"您有 {count} 条新消息" if zh else f"You have {count} new message(s)")},
            "keyword1": {"value": first_line[:60]},
            "keyword2": {"value": self.now().astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")},
            "remark": {
                "value": "回复任意内容即可查看全文和操作选项。"
                if zh
                else "Reply with anything to see the whole message and its options."
            },
        }
        try:
            await self.api.send_template(item.chat_id, self.template_id, data)
        except WeChatError as e:
            if e.errcode in (UNSUBSCRIBED, INVALID_OPENID):
                raise RecipientGone(f"WeChat {e.errcode}: {e.errmsg}") from e
            # The full message is still kept; the nudge is a courtesy.
            log.warning("wechat: template message for outbox item %s failed: %s", item.id, e)
        except Exception as e:
            log.warning("wechat: template message for outbox item %s failed: %r", item.id, e)


def outcome(error: WeChatError) -> Exception:
    """A WeChat error as the sender's outcome (see the module doc)."""
    code = error.errcode
    reason = f"WeChat {code}: {error.errmsg}"
    if code in (UNSUBSCRIBED, INVALID_OPENID):
        return RecipientGone(reason)
    if code in (API_QUOTA, API_FREQ):
        return RetryLater(3600.0 if code == API_QUOTA else 60.0, all_chats=True)
    if code is None or code == SYSTEM_BUSY or code in (40001, 40014, 42001):
        return error  # transient: retried with backoff
    return PermanentFailure(reason)


async def send(api: WeChatApi, db: Database, openid: str, messages: list[Outgoing]) -> None:
    """Send messages by the customer-service API, in order, and remember the options of
    the last one so a reply of its number presses it."""
    # Remembered first: the person may answer the moment the message arrives.
    if messages:
        await remember_options(db, openid, [c.data for c in render.options_of(messages[-1])])
    for message in messages:
        for part in render.parts(message, menus=True):
            if isinstance(part, render.Image):
                media_id = await _media_id(api, part.ref)
                if media_id is not None:
                    await api.send_image(openid, media_id)
            elif isinstance(part, render.Menu):
                await api.send_menu(
                    openid, part.head, [(str(n), label) for n, label in enumerate(part.options, 1)], part.tail
                )
            else:
                await api.send_text(openid, part.text)


async def remember_options(db: Database, openid: str, options: list[str]) -> None:
    async with db.transaction() as session:
        user = await users.find_by_external(session, channel=CHANNEL, external_id=openid)
        if user is not None:
            await contacts.set_choices(session, user_id=user.id, choices=options)


async def _media_id(api: WeChatApi, ref: str) -> str | None:
    """A media id for a picture: a file Linli stored is uploaded; a WeChat media id is used as is."""
    if not ref.startswith("file:"):
        return ref
    try:
        content = await asyncio.to_thread(Path(ref.removeprefix("file:")).read_bytes)
    except OSError as e:
        log.warning("wechat: picture %s cannot be read (%s); sending the text only", ref, e)
        return None
    return await api.upload_image(content)
