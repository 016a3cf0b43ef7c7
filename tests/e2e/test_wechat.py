"""WeChat end to end: Linli's callback server and wechatpy's client against the fake
WeChat (tests/fakes/wechat_api.py), on SQLite and PostgreSQL, in plain and safe mode.

A follower onboards and books a ride in Chinese by answering numbered options (and
tapping a menu message); slow replies go by the customer-service API; a message
outside the 48-hour window gets a template nudge and is kept for the next contact;
unfollowing marks the person unreachable; WeChat's error codes map onto the sender.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlmodel import col

from bot.app import Linli
from bot.settings import Settings
from bot.wechat import CHANNEL
from bot.wechat.server import WeChatChannel, run_wechat, serve, stop_serving
from dialogs import notify
from dialogs.messages import Choice, Outgoing
from storage import users
from storage.contacts import ChannelContact
from storage.data import UserData
from storage.models import OutboxMessage, utcnow
from storage.rides import Ride
from tests.fakes.wechat_api import AES_KEY, APP_ID, APP_SECRET, TOKEN, FakeWeChat

ALICE = "oAlice_0123456789abcdefghijk"
BOB = "oBob_0123456789abcdefghijklmn"


def settings_for(wx: FakeWeChat, database_url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = dict(
        database_url=database_url,
        wechat_app_id=APP_ID,
        wechat_app_secret=SecretStr(APP_SECRET),
        wechat_token=SecretStr(TOKEN),
        wechat_aes_key=SecretStr(AES_KEY),
        wechat_api_base=wx.base_url,
        wechat_host="127.0.0.1",
        wechat_port=0,
        wechat_template_id="TPL-NOTICE",
    )
    return Settings(**{**values, **extra})


@dataclass
class Linked:
    wx: FakeWeChat
    app: Linli
    channel: WeChatChannel

    async def user(self, openid: str) -> UserData:
        async with self.app.db.transaction() as session:
            found = await users.find_by_external(session, channel=CHANNEL, external_id=openid)
        assert found is not None
        return found

    async def outbox(self, openid: str) -> list[OutboxMessage]:
        async with self.app.db.transaction() as session:
            rows = await session.execute(
                select(OutboxMessage)
                .where(col(OutboxMessage.chat_id) == openid)
                .order_by(col(OutboxMessage.id))
            )
            return list(rows.scalars())

    async def settled(self, openid: str) -> None:
        """Wait until nothing waits in the outbox for this person."""
        for _ in range(200):
            if all(r.status != "pending" for r in await self.outbox(openid)):
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the outbox did not drain")

    async def last_wrote(self, openid: str, ago: timedelta) -> None:
        """Move the person's last message back in time, on both sides."""
        self.wx.follower(openid).last_inbound = self.wx.clock() - ago.total_seconds()
        user = await self.user(openid)
        async with self.app.db.transaction() as session:
            await session.execute(
                update(ChannelContact)
                .where(col(ChannelContact.user_id) == user.id)
                .values(last_inbound_at=utcnow() - ago)
            )


@pytest.fixture(params=["plain", "safe"])
def wechat_mode(request: pytest.FixtureRequest) -> str:
    """The callback in plain mode and in safe mode (encrypted, EncodingAESKey)."""
    return str(request.param)


@pytest_asyncio.fixture
async def linked(wechat_mode: str, database_url: str) -> AsyncIterator[Linked]:
    async with FakeWeChat(safe_mode=wechat_mode == "safe") as wx:
        app = Linli(settings_for(wx, database_url))
        await app.prepare()
        channel, runner = await serve(app)
        host, port = runner.addresses[0][:2]
        wx.callback_url = f"http://{host}:{port}/wechat"
        await app.start({})
        try:
            yield Linked(wx, app, channel)
        finally:
            await stop_serving(channel, runner)
            await app.stop()


class Person:
    def __init__(self, linked: Linked, openid: str) -> None:
        self.wx = linked.wx
        self.openid = openid

    async def say(self, text: str, expect: str) -> str:
        """Write; the answer comes in the callback's reply or, failing that, by the API."""
        since = len(self.wx.sent)
        reply = await self.wx.text(self.openid, text)
        assert reply.status == 200, reply.raw
        if reply.text is not None and expect in reply.text:
            return reply.text
        # The rest of the answer follows by the customer-service API.
        try:
            return (await self.wx.wait_for(self.openid, expect, since=since)).text
        except AssertionError as e:
            raise AssertionError(f"passive reply: {reply.text!r}; {e}") from None


async def onboard(person: Person, phone: str) -> None:
    reply = await person.wx.subscribe(person.openid)
    assert reply.text is not None and "同意" in reply.text
    assert "[1]" in reply.text and "回复数字选择" in reply.text
    consent = reply.text
    agree = next(line for line in consent.splitlines() if "同意" in line and line.startswith("["))
    await person.say(agree[1 : agree.index("]")], "语言")
    await person.say("一", "称呼")  # 中文 is the first option
    await person.say("王阿姨", "社区")  # WeChat gives no nickname: she types how to address her
    await person.say("chunhe", "哪一栋")  # one clear match: picked at once
    await person.say("3栋", "手机号")
    await person.say(phone, "设置完成")


def option(text: str, label: str) -> str:
    """The number of the option whose label contains ``label``."""
    for line in text.splitlines():
        if line.startswith("[") and label in line:  # numbered text: "[2] label"
            return line[1 : line.index("]")]
        if line[:1].isdigit() and ". " in line and label in line:  # a menu message: "2. label"
            return line[: line.index(".")]
    raise AssertionError(f"no option {label!r} in {text!r}")


async def test_callback_url_check_and_bad_signatures(linked: Linked) -> None:
    wx = linked.wx
    assert await wx.verify_url("echo-123") == (200, "echo-123")
    status, _ = await wx.verify_url("echo-123", token="wrong-token")
    assert status == 403
    async with wx._session.post(
        wx.callback_url, params={"signature": "x", "timestamp": "1", "nonce": "n"}
    ) as r:
        assert r.status == 403


async def test_onboarding_and_a_ride_in_chinese(linked: Linked) -> None:
    alice = Person(linked, ALICE)
    await onboard(alice, "13812345678")
    me = await linked.user(ALICE)
    assert me.onboarded and me.language == "zh" and me.phone == "+8613812345678"

    # "我要打车" by voice: WeChat's recognition text is handled as typed text.
    since = len(linked.wx.sent)
    reply = await linked.wx.voice(ALICE, "我要打车。")
    text = reply.text or (await linked.wx.wait_for(ALICE, "谁坐车", since=since)).text
    assert "谁坐车" in text
    text = await alice.say(option(text, "我自己"), "也可以直接打字写地址")
    text = await alice.say(option(text, "从家出发"), "常去的医院点一下")
    text = await alice.say(option(text, "协和医院"), "什么时候出发")
    text = await alice.say(option(text, "现在"), "请核对行程信息")
    # No driver group is bound: staff are asked to find a driver, and she is told so.
    await alice.say(option(text, "确认发布"), "行程编号 #1")
    async with linked.app.db.transaction() as session:
        ride = (await session.execute(select(Ride))).scalar_one()
    assert ride.rider_user_id == me.id and ride.status == "posted"


async def test_slow_reply_goes_by_the_customer_service_api(
    linked: Linked, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = Person(linked, ALICE)
    await onboard(alice, "13812345678")
    linked.channel.reply_within = 0.05  # the 5-second rule, shortened
    handle = linked.app.handler.handle

    async def slow(incoming: Any) -> list[Outgoing]:
        await asyncio.sleep(0.3)
        return await handle(incoming)

    monkeypatch.setattr(linked.app.handler, "handle", slow)
    since = len(linked.wx.sent)
    reply = await linked.wx.text(ALICE, "/help")
    assert reply.status == 200 and reply.text is None and reply.raw == "success"
    sent = await linked.wx.wait_for(ALICE, "", since=since)
    assert sent.kind in ("text", "msgmenu")
    rows = await linked.outbox(ALICE)
    assert rows[-1].kind == "reply"
    for _ in range(100):
        if (await linked.outbox(ALICE))[-1].status == "sent":
            break
        await asyncio.sleep(0.05)
    assert (await linked.outbox(ALICE))[-1].status == "sent"


async def test_menu_message_tap_and_numbers_survive_a_restart(linked: Linked) -> None:
    """Options sent through the API come as a menu message; a tap presses the option."""
    alice = Person(linked, ALICE)
    await onboard(alice, "13812345678")
    me = await linked.user(ALICE)
    async with linked.app.db.transaction() as session:
        await notify.to_user(
            session,
            me,
            lambda tr: Outgoing("要现在打车吗？", choices=[[Choice("我要打车", "f:nav:ride")]]),
            kind="ride",
        )
    menu = await linked.wx.wait_for(ALICE, "要现在打车吗")
    assert menu.kind == "msgmenu" and menu.menu == [("1", "1. 我要打车")]


async def test_outside_the_window_template_then_kept_until_next_contact(linked: Linked) -> None:
    wx = linked.wx
    alice = Person(linked, ALICE)
    await onboard(alice, "13812345678")
    await linked.settled(ALICE)
    await linked.last_wrote(ALICE, timedelta(hours=49))
    me = await linked.user(ALICE)
    since = len(wx.sent)
    async with linked.app.db.transaction() as session:
        await notify.to_user(session, me, lambda tr: Outgoing("司机已出发，约10分钟到达"), kind="ride")
        await notify.to_user(session, me, lambda tr: Outgoing("本周六社区义诊"), kind="notice")
    nudge = await wx.wait_for(ALICE, "司机已出发", since=since)
    assert nudge.kind == "template" and nudge.body["template_id"] == "TPL-NOTICE"
    for _ in range(100):
        rows = await linked.outbox(ALICE)
        if all(r.attempts >= 1 for r in rows[-2:]):
            break
        await asyncio.sleep(0.05)
    rows = (await linked.outbox(ALICE))[-2:]
    assert [r.status for r in rows] == ["pending", "pending"]
    assert all(r.not_before > utcnow() + timedelta(minutes=30) for r in rows)
    # No template for a notice; nothing by the customer-service API while outside.
    assert [s.kind for s in wx.to(ALICE, since)] == ["template"]

    # She writes again: her answer, then what was kept, in order.
    since = len(wx.sent)
    await alice.say("/help", "")
    await wx.wait_for(ALICE, "本周六社区义诊", since=since)
    texts = [s.text for s in wx.to(ALICE, since) if s.kind == "text"]
    assert texts.index(next(t for t in texts if "司机已出发" in t)) < texts.index(
        next(t for t in texts if "本周六社区义诊" in t)
    )


async def test_wechat_errors_map_onto_the_sender(linked: Linked) -> None:
    wx = linked.wx
    alice = Person(linked, ALICE)
    await onboard(alice, "13812345678")
    me = await linked.user(ALICE)
    # 42001/40001: the token is fetched anew and the message goes through.
    wx.expire_tokens()
    fetches = wx.token_fetches
    since = len(wx.sent)
    async with linked.app.db.transaction() as session:
        await notify.to_user(session, me, lambda tr: Outgoing("一条通知"), kind="notice")
    await wx.wait_for(ALICE, "一条通知", since=since)
    assert wx.token_fetches == fetches + 1
    assert ("custom/send", 42001) in wx.requests

    # 45047 (too many messages since her last one): kept for her next contact.
    wx.fail_next = [45047]
    async with linked.app.db.transaction() as session:
        await notify.to_user(session, me, lambda tr: Outgoing("第二条通知"), kind="notice")
    for _ in range(100):
        row = (await linked.outbox(ALICE))[-1]
        if row.attempts:
            break
        await asyncio.sleep(0.05)
    assert row.status == "pending" and row.not_before > utcnow() + timedelta(minutes=30)

    # Unfollowing marks her unreachable and cancels what waits for her.
    await wx.unsubscribe(ALICE)
    assert (await linked.user(ALICE)).blocked
    assert (await linked.outbox(ALICE))[-1].status == "blocked"
    # Following again makes her reachable again.
    await wx.subscribe(ALICE)
    assert not (await linked.user(ALICE)).blocked


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_linli_run_serves_wechat(database_url: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with FakeWeChat() as wx:
        settings = settings_for(wx, database_url, wechat_aes_key=None).model_copy(
            update={"wechat_port": port}
        )
        stop = asyncio.Event()
        app = Linli(settings)
        task = asyncio.create_task(run_wechat(app, stop=stop))
        wx.callback_url = f"http://127.0.0.1:{port}/wechat"
        for _ in range(200):
            try:
                status, echo = await wx.verify_url("hello")
                break
            except OSError:
                await asyncio.sleep(0.05)
        assert (status, echo) == (200, "hello")
        reply = await wx.text(BOB, "你好")
        assert reply.text is not None and "同意" in reply.text
        stop.set()
        await asyncio.wait_for(task, 10)
