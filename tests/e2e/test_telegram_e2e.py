"""End to end: the real Bot (aiogram's and python-telegram-bot's, each test on both)
over HTTP against the fake Bot API server, with ``run_telegram`` polling in the test's
loop, on SQLite and PostgreSQL.

Every wait is on an event (a message sent or edited, an update confirmed); the only
real-time wait is the one second a 429 asks for.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlmodel import col

from bot.app import Linli
from bot.settings import Settings, TelegramRuntime
from bot.telegram import render
from bot.telegram.api import TelegramApi
from bot.telegram.runner import make_bot, run_telegram
from bot.telegram.transport import TelegramTransport
from dialogs.messages import Ask, Choice, Outgoing, Place
from scheduler.delivery import PermanentFailure, RecipientGone, RetryLater
from storage import users
from storage.applications import RoleApplication
from storage.data import Role, UserData
from storage.models import AuditEntry, OutboxMessage
from storage.outbox import OutboxItem
from tests.conftest import STAFF_ID
from tests.fakes.telegram_api import FakeTelegramServer, FakeUser, SentMessage


@dataclass
class Linked:
    """A running Linli on the fake Telegram."""

    tg: FakeTelegramServer
    app: Linli
    bot: TelegramApi

    async def user(self, person: FakeUser) -> UserData:
        async with self.app.db.transaction() as session:
            return await users.ensure_user(
                session,
                channel="telegram",
                external_id=str(person.id),
                chat_id=str(person.id),
                client_language=person.language_code,
            )

    async def count(self, stmt: Any) -> int:
        async with self.app.db.transaction() as session:
            return int((await session.execute(stmt)).scalar_one())


@asynccontextmanager
async def linli_on(
    tg: FakeTelegramServer, settings: Settings, *, webhook: bool = False
) -> AsyncIterator[Linked]:
    """``run_telegram`` on the fake Bot API with these settings, until the block ends."""
    app = Linli(settings)
    bot = make_bot(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(run_telegram(app, bot=bot, stop=stop), name="telegram")
    try:
        # Schema, demo data, menus, sender: ready once it polls (or has set its webhook).
        await (tg.wait_webhook(timeout=30) if webhook else tg.wait_polling(timeout=30))
        yield Linked(tg, app, bot)
    finally:
        stop.set()
        try:
            async with asyncio.timeout(15):
                await task  # re-raises anything run_telegram died of
        finally:
            await bot.close()


@pytest_asyncio.fixture
async def linked(
    fake_telegram: FakeTelegramServer, database_url: str, telegram_runtime: TelegramRuntime
) -> AsyncIterator[Linked]:
    async with linli_on(fake_telegram, settings_for(fake_telegram, database_url, telegram_runtime)) as linked:
        yield linked


# -- a person at a Telegram client -------------------------------------------------------


class Client:
    def __init__(self, tg: FakeTelegramServer, user: FakeUser) -> None:
        self.tg = tg
        self.user = user

    async def say(self, text: str, expect: str) -> SentMessage:
        since = len(self.tg.sent)
        self.tg.send_text(self.user, text)
        return await self.tg.wait_for_text(self.user, expect, since=since)

    def button(self, label: str) -> tuple[SentMessage, str]:
        """The newest message to me with a button whose label contains ``label``."""
        for message in reversed(self.tg.messages_to(self.user)):
            for text, data in message.buttons:
                if label in text and data is not None:
                    return message, data
        raise AssertionError(f"no button {label!r}; {self.tg.describe(self.user)}")

    async def press(self, label: str, expect: str) -> SentMessage:
        message, data = self.button(label)
        since = len(self.tg.sent)
        self.tg.press(self.user, message, data)
        return await self.tg.wait_for_text(self.user, expect, since=since)

    async def share_contact(self, phone: str, expect: str) -> SentMessage:
        since = len(self.tg.sent)
        self.tg.send_contact(self.user, phone)
        return await self.tg.wait_for_text(self.user, expect, since=since)


async def onboard_zh(alice: Client) -> None:
    await alice.say("/start", "同意")
    await alice.press("同意", "语言")
    await alice.press("中文", "称呼")
    await alice.press("就叫我", "社区")
    await alice.say("chunhe", "哪一栋")  # one clear match: picked at once
    await alice.say("3栋", "手机号")
    await alice.share_contact("+8613812345678", "设置完成")


async def onboard_en(bob: Client) -> None:
    await bob.say("/start", "Do you agree?")
    await bob.press("I agree", "Which language")
    await bob.press("English", "address you")
    await bob.press("Call me", "Which community")
    await bob.say("Qinghe", "Which one is it?")  # 青和居, 春和, 江汉北路 all sound alike
    await bob.press("青和居社区", "Which building")
    await bob.say("东区2栋", "phone number")
    await bob.share_contact("+86 139 0000 1111", "All set")


async def apply_as_driver(client: Client, plate: str) -> None:
    await client.say("/driver", "plate number")
    await client.say(plate, "make, model and colour")
    await client.say("white VW Lavida", "Please check")
    await client.press("Submit application", "Application submitted")


def decision_data(message: SentMessage) -> str:
    return next(d for _, d in message.buttons if d and d.startswith("a:approve:"))


# -- scenarios -----------------------------------------------------------------------------


async def test_onboarding_in_chinese_and_english_and_command_menus(linked: Linked) -> None:
    tg = linked.tg
    alice = Client(tg, tg.user(1001, "王", last_name="奶奶", language_code="zh-hans"))
    bob = Client(tg, tg.user(1002, "Bob", language_code="en"))

    await alice.say("/start", "同意")
    consent, data = alice.button("同意")
    label = next(text for text, d in consent.buttons if d == data)
    await alice.press("同意", "语言")
    # The pressed message lost its buttons and shows what was chosen.
    assert consent.buttons == [] and consent.edits
    assert (consent.text or "").endswith(f"\n\n✓ {label}")
    await alice.press("中文", "称呼")
    await alice.press("就叫我", "社区")
    await alice.say("chunhe", "哪一栋")  # one clear match: picked at once
    ask_phone = await alice.say("3栋", "手机号")
    keyboard = ask_phone.reply_markup or {}
    assert keyboard["keyboard"][0][0]["request_contact"] is True
    assert keyboard["resize_keyboard"] and keyboard["one_time_keyboard"]
    assert tg.reply_keyboard(alice.user) == [["📱 分享我的手机号"]]
    since = len(tg.sent)
    await alice.share_contact("+8613812345678", "设置完成")
    # The share button goes away again.
    await tg.wait_for(
        lambda m: m.chat_id == alice.user.id and bool((m.reply_markup or {}).get("remove_keyboard")),
        since=since,
    )
    assert tg.reply_keyboard(alice.user) is None

    await onboard_en(bob)

    me = await linked.user(alice.user)
    assert me.onboarded and me.language == "zh" and me.phone == "+8613812345678"
    assert me.display_name == "王 奶奶"
    them = await linked.user(bob.user)
    assert them.onboarded and them.language == "en" and them.phone == "+8613900001111"
    # Every button press was answered (no spinner left turning).
    assert {a.data for a in tg.callback_answers} >= {"f:onboarding:consent:yes"}

    # Residents' commands in private chats only, Chinese by default.
    private = {"type": "all_private_chats"}
    default = tg.get_commands(private) or []
    assert {"command": "help", "description": "帮助和菜单"} in default
    assert tg.get_commands(private, language_code="zh") == default
    english = tg.get_commands(private, language_code="en") or []
    assert {"command": "help", "description": "Help and menu"} in english
    assert "pending" not in {c["command"] for c in english}
    assert not tg.get_commands() and not tg.get_commands({"type": "all_group_chats"})
    staff_menu = tg.get_commands({"type": "chat", "chat_id": int(STAFF_ID)}) or []
    assert {"command": "pending", "description": "待审核的申请（工作人员）"} in staff_menu


@pytest.mark.slow
async def test_driver_application_approved_by_staff(linked: Linked) -> None:
    tg = linked.tg
    staff = Client(tg, tg.user(int(STAFF_ID), "Staff", language_code="zh-hans"))
    bob = Client(tg, tg.user(1002, "Bob", language_code="en"))
    await onboard_zh(staff)
    await onboard_en(bob)

    await apply_as_driver(bob, "鄂A12345")
    # The staff member hears of it through the outbox, with decision buttons.
    notice = await tg.wait_for_text(staff.user, "鄂A12345")
    approve = decision_data(notice)
    app_id = int(approve.rsplit(":", 1)[1])
    assert ("❌ 拒绝", f"a:reject:{app_id}") in notice.buttons

    # A modified client forges the approve button: refused, logged, nothing changes.
    last_to_bob = tg.messages_to(bob.user)[-1]
    since = len(tg.sent)
    forged = tg.press(bob.user, last_to_bob, approve, forge=True)
    # The refusal is shown to him alone, as the answer to his button press.
    answer = await tg.wait_callback_answer(forged)
    assert answer.text is not None and "only people with the right role" in answer.text
    assert answer.show_alert
    assert not [m for m in tg.sent[since:] if m.chat_id == bob.user.id]
    refused = (
        select(func.count())
        .select_from(AuditEntry)
        .where(col(AuditEntry.allowed).is_(False), col(AuditEntry.action) == "a:approve")
    )
    assert await linked.count(refused) == 1
    status = select(col(RoleApplication.status)).where(col(RoleApplication.id) == app_id)
    async with linked.app.db.transaction() as session:
        assert (await session.execute(status)).scalar_one() == "pending"

    # Staff approve: their message turns into the decision, Bob hears the outcome.
    since = len(tg.sent)
    press = tg.press(staff.user, notice, approve)
    await tg.wait_for(lambda m: m is notice and "您已通过" in (m.text or ""))
    assert notice.buttons == []
    await tg.wait_for_text(bob.user, "Congratulations", since=since)
    assert (await linked.user(bob.user)).has(Role.DRIVER)

    # The same update delivered again: handled once, so no second reply or effect.
    sent, edits = len(tg.sent), len(notice.edits)
    outbox_rows = await linked.count(select(func.count()).select_from(OutboxMessage))
    tg.push_raw(press)
    await tg.wait_confirmed(press)
    assert len(tg.sent) == sent and len(notice.edits) == edits
    assert await linked.count(select(func.count()).select_from(OutboxMessage)) == outbox_rows
    approvals = select(func.count()).select_from(AuditEntry).where(col(AuditEntry.action) == "approve")
    assert await linked.count(approvals) == 1


async def test_blocked_staff_get_nothing_more(linked: Linked) -> None:
    tg = linked.tg
    staff = Client(tg, tg.user(int(STAFF_ID), "Staff", language_code="zh-hans"))
    bob = Client(tg, tg.user(1002, "Bob", language_code="en"))
    await onboard_zh(staff)
    await onboard_en(bob)

    member = tg.block(staff.user)
    assert member is not None
    await tg.wait_confirmed(member)
    assert (await linked.user(staff.user)).blocked

    since = len(tg.sent)
    await apply_as_driver(bob, "鄂A54321")
    assert tg.messages_to(staff.user)[-1].index < since
    to_staff = (
        select(func.count())
        .select_from(OutboxMessage)
        .where(col(OutboxMessage.chat_id) == STAFF_ID, col(OutboxMessage.kind) == "application")
    )
    assert await linked.count(to_staff) == 0

    # Unblocking is noticed too.
    member = tg.unblock(staff.user)
    assert member is not None
    await tg.wait_confirmed(member)
    assert not (await linked.user(staff.user)).blocked


@pytest.mark.slow
async def test_outbox_waits_out_a_429(linked: Linked) -> None:
    tg = linked.tg
    staff = Client(tg, tg.user(int(STAFF_ID), "Staff", language_code="zh-hans"))
    bob = Client(tg, tg.user(1002, "Bob", language_code="en"))
    await onboard_zh(staff)
    await onboard_en(bob)

    tg.fail_next(
        "sendMessage",
        429,
        "Too Many Requests: retry after 1",
        retry_after=1,
        chat_id=int(STAFF_ID),
    )
    loop = asyncio.get_running_loop()
    await apply_as_driver(bob, "鄂A11111")
    started = loop.time()
    await tg.wait_for_text(staff.user, "鄂A11111")
    refused = [
        r
        for r in tg.requests
        if r.method == "sendMessage" and r.status == 429 and r.fields["chat_id"] == STAFF_ID
    ]
    assert len(refused) == 1
    # Measured, not asserted tightly: the sender held the chat for the second asked.
    assert loop.time() - started > 0.5


async def test_sticker_gets_a_kind_answer(linked: Linked) -> None:
    tg = linked.tg
    alice = Client(tg, tg.user(1001, "Alice", language_code="zh-hans"))
    await onboard_zh(alice)
    since = len(tg.sent)
    tg.send_sticker(alice.user)
    await tg.wait_for_text(alice.user, "看不懂", since=since)
    since = len(tg.sent)
    tg.send_voice(alice.user)
    await tg.wait_for_text(alice.user, "看不懂", since=since)


# -- crash safety, signals, groups ----------------------------------------------------------


def settings_for(tg: FakeTelegramServer, database_url: str, runtime: TelegramRuntime = "aiogram") -> Settings:
    return Settings(
        telegram_token=SecretStr(tg.token),
        telegram_api_base=tg.base_url,
        telegram_runtime=runtime,
        database_url=database_url,
        admins=STAFF_ID,
        polling_timeout=1,
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_killed_mid_batch_gets_the_batch_again(
    fake_telegram: FakeTelegramServer, database_url: str, telegram_runtime: TelegramRuntime
) -> None:
    tg = fake_telegram
    settings = settings_for(tg, database_url, telegram_runtime)
    bot = make_bot(settings)
    first = Linli(settings)
    entered, never = asyncio.Event(), asyncio.Event()
    handle = first.handler.handle

    async def stuck(incoming: Any) -> list[Outgoing]:
        entered.set()
        await never.wait()  # the process dies here, before anything is committed
        return await handle(incoming)

    first.handler.handle = stuck  # type: ignore[method-assign]
    task = asyncio.create_task(run_telegram(first, bot=bot, stop=asyncio.Event()))
    try:
        await tg.wait_polling(timeout=30)
        alice = tg.user(1001, "Alice")
        start = tg.send_text(alice, "/start")
        await entered.wait()
        # Being handled, so not yet confirmed: a crash now must not lose it.
        assert start["update_id"] in [u["update_id"] for u in tg.pending_updates]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        stop = asyncio.Event()
        restarted = len(tg.deliveries)
        task = asyncio.create_task(run_telegram(Linli(settings), bot=bot, stop=stop))
        await tg.wait_for_text(alice, "同意")
        await tg.wait_confirmed(start)
        stop.set()
        await task
        # The poller re-reads unconfirmed updates while it handles them; what matters is
        # that the new process got it again and answered it once.
        assert start["update_id"] in tg.deliveries[restarted:]
        assert len(tg.messages_to(alice)) == 1
    finally:
        task.cancel()
        await bot.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.slow
async def test_linli_run_stops_cleanly_on_sigterm(
    fake_telegram: FakeTelegramServer, database_url: str, telegram_runtime: TelegramRuntime
) -> None:
    """`linli run` as a real process: answers, then finishes on SIGTERM with exit code 0."""
    tg = fake_telegram
    env = {
        **os.environ,
        "LINLI_TELEGRAM_RUNTIME": telegram_runtime,
        "LINLI_TELEGRAM_TOKEN": tg.token,
        "LINLI_TELEGRAM_API_BASE": tg.base_url,
        "LINLI_DATABASE_URL": database_url,
        "LINLI_POLLING_TIMEOUT": "1",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        alice = tg.user(1001, "Alice")
        tg.send_text(alice, "/start")
        await tg.wait_for_text(alice, "同意", timeout=30)
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            _, stderr = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = stderr.decode()
    assert proc.returncode == 0, log
    assert f"starting (polling, {telegram_runtime})" in log and "telegram: stopped" in log
    # python-telegram-bot's HTTP client logs request URLs, which carry the token.
    assert tg.token.split(":")[1] not in log


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_linli_run_with_a_refused_token_says_so(
    fake_telegram: FakeTelegramServer, database_url: str, telegram_runtime: TelegramRuntime
) -> None:
    env = {
        **os.environ,
        "LINLI_TELEGRAM_RUNTIME": telegram_runtime,
        "LINLI_TELEGRAM_TOKEN": "999:not-the-token",
        "LINLI_TELEGRAM_API_BASE": fake_telegram.base_url,
        "LINLI_DATABASE_URL": database_url,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(30):
            _, stderr = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = stderr.decode()
    assert proc.returncode == 2, log
    assert "Telegram refused the bot token" in log and "LINLI_TELEGRAM_TOKEN" in log
    assert "Traceback" not in log and "not-the-token" not in log


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_group_commands_and_buttons(linked: Linked) -> None:
    tg = linked.tg
    staff = Client(tg, tg.user(int(STAFF_ID), "Staff", language_code="zh-hans"))
    await onboard_zh(staff)
    group = tg.group(-1_001_234_567_890, "Drivers")
    ignored = tg.send_text(staff.user, "/help@other_bot", chat=group)
    await tg.wait_confirmed(ignored)
    assert tg.messages_to(group) == []
    tg.send_text(staff.user, f"/help@{tg.bot_username}", chat=group)
    await tg.wait_for_text(group, "私聊")

    # A button in a group: answered, the message left as it is.
    post = tg.messages_to(group)[-1]
    since = len(tg.sent)
    press = tg.press(staff.user, post, "a:approve:999", forge=True)
    await tg.wait_callback_answer(press)
    await tg.wait_for_text(group, "找不到", since=since)
    assert post.edits == []


# -- render and transport, straight against the server ------------------------------------


async def test_render_and_transport(
    fake_telegram: FakeTelegramServer, telegram_runtime: TelegramRuntime
) -> None:
    tg = fake_telegram
    bot = make_bot(settings_for(tg, "sqlite+aiosqlite://", telegram_runtime))
    alice = tg.user(1001, "Alice")
    transport = TelegramTransport(bot)

    def item(chat_id: int | str, message: Outgoing) -> OutboxItem:
        return OutboxItem(
            id=1,
            channel="telegram",
            chat_id=str(chat_id),
            user_id=None,
            payload=message.to_dict(),
            kind="message",
            is_group=False,
            attempts=0,
        )

    try:
        long = "\n\n".join(["段落" * 1000] * 3)  # 6,000 characters: two messages
        message_id = await transport.deliver(
            item(alice.id, Outgoing(long, choices=[[Choice("OK", "f:x:y:ok")]]))
        )
        parts = tg.messages_to(alice)
        assert [len(p.text or "") for p in parts] == [4002, 2000]
        assert message_id == str(parts[-1].message_id)
        assert parts[0].buttons == [] and parts[-1].buttons == [("OK", "f:x:y:ok")]

        # Edits: of the message itself; "not modified" is fine; a lost message is resent.
        ids = await render.send(bot, alice.id, [Outgoing("edited", edit_ref=message_id)])
        assert ids == [int(message_id)] and parts[-1].text == "edited" and parts[-1].buttons == []
        assert await render.send(bot, alice.id, [Outgoing("edited", edit_ref=message_id)]) == ids
        ids = await render.send(bot, alice.id, [Outgoing("anew", edit_ref="9999")])
        assert tg.messages_to(alice)[-1].text == "anew" and ids != [9999]

        # A place is a venue; a photo takes a 1,024-character caption, the rest follows.
        place = Place(30.5, 114.3, "春和驿站", "武汉市")
        await render.send(bot, alice.id, [Outgoing("最近的驿站：", place=place)])
        assert [m.method for m in tg.messages_to(alice)[-2:]] == ["sendMessage", "sendVenue"]
        photo = tg.send_photo(alice, b"jpeg")["message"]["photo"][-1]["file_id"]
        caption = "图" * 1500
        await render.send(bot, alice.id, [Outgoing(caption, photo_ref=photo)])
        shot, rest = tg.messages_to(alice)[-2:]
        assert shot.method == "sendPhoto" and len(shot.text or "") == 1024
        assert rest.method == "sendMessage" and len(rest.text or "") == 476

        # A share-contact keyboard and inline buttons on one message: one is added by an edit.
        both = Outgoing("phone?", choices=[[Choice("Skip", "f:x:y:skip")]], ask=Ask.CONTACT, ask_label="📱")
        await render.send(bot, alice.id, [both])
        last = tg.messages_to(alice)[-1]
        assert tg.reply_keyboard(alice) == [["📱"]] and last.buttons == [("Skip", "f:x:y:skip")]

        # Errors become the sender's outcomes.
        tg.fail_next("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)
        with pytest.raises(RetryLater) as retry:
            await transport.deliver(item(alice.id, Outgoing("hi")))
        assert retry.value.seconds == 7
        tg.fail_next("sendMessage", 400, "Bad Request: can't parse entities")
        with pytest.raises(PermanentFailure):
            await transport.deliver(item(alice.id, Outgoing("hi")))
        with pytest.raises(RecipientGone, match=r"(?i)chat not found"):
            await transport.deliver(item(424242, Outgoing("hi")))
        tg.block(alice, notify=False)
        with pytest.raises(RecipientGone, match=r"(?i)blocked"):
            await transport.deliver(item(alice.id, Outgoing("hi")))
    finally:
        await bot.close()
