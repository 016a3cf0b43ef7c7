"""Webhook mode in the test's loop: the fake Bot API POSTs updates to ``run_telegram``'s
aiohttp server. Also the Telegram conventions around it: the bot's descriptions, menus by
scope, a poster's signed deep link preselecting a community, and /healthz."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
import pytest_asyncio
from pydantic import SecretStr

from bot import deeplinks
from bot.app import Linli
from bot.settings import Settings, TelegramRuntime
from bot.telegram import webhook
from bot.telegram.api import TelegramApi
from bot.telegram.runner import make_bot, run_telegram
from storage import communities, updates
from tests.conftest import STAFF_ID
from tests.e2e.test_telegram_e2e import Client, linli_on
from tests.fakes.telegram_api import SECRET_HEADER, FakeTelegramServer, SentMessage

SECRET = "s3cret-token_for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def webhook_settings(tg: FakeTelegramServer, database_url: str, port: int, **more: object) -> Settings:
    return Settings(
        telegram_token=SecretStr(tg.token),
        telegram_api_base=tg.base_url,
        database_url=database_url,
        admins=STAFF_ID,
        webhook_url=f"http://127.0.0.1:{port}/telegram/hook",
        webhook_listen=f"127.0.0.1:{port}",
        webhook_secret=SecretStr(SECRET),
        **more,  # type: ignore[arg-type]
    )


@dataclass
class Hooked:
    tg: FakeTelegramServer
    app: Linli
    bot: TelegramApi
    base: str  # the worker's own address


@pytest_asyncio.fixture
async def hooked(
    fake_telegram: FakeTelegramServer, database_url: str, telegram_runtime: TelegramRuntime
) -> AsyncIterator[Hooked]:
    port = free_port()
    settings = webhook_settings(fake_telegram, database_url, port, telegram_runtime=telegram_runtime)
    async with linli_on(fake_telegram, settings, webhook=True) as linked:
        yield Hooked(fake_telegram, linked.app, linked.bot, f"http://127.0.0.1:{port}")


async def press_for_buttons(person: Client, label: str) -> SentMessage:
    """Press ``label``; the next message to the person that has buttons."""
    message, data = person.button(label)
    since = len(person.tg.sent)
    person.tg.press(person.user, message, data)
    return await person.tg.wait_for(
        lambda m: m.chat_id == person.user.id and bool(m.buttons) and m is not message, since=since
    )


async def test_onboarding_by_webhook_from_a_poster(hooked: Hooked) -> None:
    tg = hooked.tg
    hook = next(r for r in tg.requests if r.method == "setWebhook")
    assert hook.fields["url"] == f"{hooked.base}/telegram/hook"
    assert hook.fields["secret_token"] == SECRET
    assert set(json.loads(hook.fields["allowed_updates"])) == {"message", "callback_query", "my_chat_member"}
    # What an elderly person reads before pressing Start, in Chinese and English.
    said = tg.bot_settings_by_language
    assert "点下面的“开始”按钮" in said[("description", "")]["description"]
    assert said[("description", "zh")]["description"] == said[("description", "")]["description"]
    assert "Press “Start” below" in said[("description", "en")]["description"]
    for lang in ("", "zh", "en"):
        assert 0 < len(said[("short_description", lang)]["short_description"]) <= 120
        assert len(said[("description", lang)]["description"]) <= 512

    async with hooked.app.db.transaction() as session:
        chunhe = next(c for c in await communities.list_communities(session) if c.name == "春和社区")
    key = deeplinks.link_key(hooked.app.settings)
    payload = deeplinks.community_payload(key, chunhe.id)
    assert len(payload) <= 64 and deeplinks.verify(key, payload) == chunhe.id

    grandma = Client(tg, tg.user(5001, "王", last_name="奶奶", language_code="zh-hans"))
    await grandma.say(f"/start {payload}", "同意")
    await grandma.press("同意", "语言")
    # The poster's community is offered at once: one tap, no typing.
    await grandma.press("中文", "称呼")
    picked = await press_for_buttons(grandma, "就叫我")
    assert picked.buttons[0][0] == "春和社区", picked
    await grandma.press("春和社区", "哪一栋")

    # Someone else scans a damaged (or forged) code: onboarding simply starts as usual.
    guest = Client(tg, tg.user(5002, "Li", language_code="zh-hans"))
    forged = f"c{chunhe.id}-AAAAAAAAAAAA"
    await guest.say(f"/start {forged}", "同意")
    await guest.press("同意", "语言")
    await guest.press("中文", "称呼")
    asked = await press_for_buttons(guest, "就叫我")
    assert all("春和社区" not in text for text, _ in asked.buttons), asked
    # Typed by hand, the verified form the dialogs read is not taken from a person either.
    other = Client(tg, tg.user(5003, "Zhao", language_code="zh-hans"))
    await other.say(f"/start {deeplinks.VERIFIED_PREFIX}{chunhe.id}", "同意")
    await other.press("同意", "语言")
    await other.press("中文", "称呼")
    asked = await press_for_buttons(other, "就叫我")
    assert all("春和社区" not in text for text, _ in asked.buttons), asked

    # Every update came by webhook and was answered 200; getUpdates was never called.
    await tg.wait_confirmed(tg.updates[-1])
    assert tg.webhook_attempts and all(a.ok for a in tg.webhook_attempts)
    assert not [r for r in tg.requests if r.method == "getUpdates"]


async def test_wrong_secret_is_refused_and_health_is_served(hooked: Hooked) -> None:
    update = {
        "update_id": 999_999,
        "message": {
            "message_id": 1,
            "date": 1,
            "chat": {"id": 6001, "type": "private"},
            "from": {"id": 6001, "is_bot": False, "first_name": "Mallory"},
            "text": "/start",
        },
    }
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {SECRET_HEADER: "guess"}):
            async with http.post(f"{hooked.base}/telegram/hook", json=update, headers=headers) as r:
                assert r.status == 401
        async with http.get(f"{hooked.base}/healthz") as r:
            assert r.status == 200
            health = await r.json()
    assert health["status"] == "ok" and health["database"] == "ok"
    assert health["leader"] is True
    assert health["outbox_pending"] == 0
    assert hooked.tg.messages_to(6001) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_polling_again_after_webhook_mode(fake_telegram: FakeTelegramServer, database_url: str) -> None:
    """Stopping a webhook worker leaves the webhook set (the others serve it); a process
    started in polling mode deletes it first, since getUpdates is refused meanwhile."""
    tg = fake_telegram
    settings = webhook_settings(tg, database_url, free_port())
    bot = make_bot(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(run_telegram(Linli(settings), bot=bot, stop=stop))
    try:
        await tg.wait_webhook(timeout=30)
        stop.set()
        await task
        assert tg.webhook is not None
        assert not [r for r in tg.requests if r.method == "deleteWebhook"]

        polling = settings.model_copy(update={"webhook_url": None, "polling_timeout": 1})
        stop = asyncio.Event()
        task = asyncio.create_task(run_telegram(Linli(polling), bot=bot, stop=stop))
        await tg.wait_polling(timeout=30)
        assert tg.webhook is None
        alice = Client(tg, tg.user(7001, "Alice", language_code="en"))
        await alice.say("/help", "Commands:")
    finally:
        stop.set()
        async with asyncio.timeout(15):
            await task
        await bot.close()


@pytest.fixture
def short_reply_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhook, "REPLY_WAIT", 0.3)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_answer_that_cannot_go_out_is_left_to_redelivery(
    short_reply_wait: None, hooked: Hooked
) -> None:
    """Telegram holds a chat back (429) for longer than a reply may wait: the worker
    answers 503, Telegram sends the update again, and the kept answer goes out then, once."""
    tg = hooked.tg
    alice = tg.user(8001, "Alice", language_code="en")
    tg.limit_chat(alice, allow=0, retry_after=1)
    update = tg.send_text(alice, "/help")
    async with asyncio.timeout(10):
        while not any(a.update_id == update["update_id"] and a.status == 503 for a in tg.webhook_attempts):  # noqa: ASYNC110 -- polls the fake's record
            await asyncio.sleep(0.02)
    assert tg.messages_to(alice) == []
    tg.unlimit_chat(alice)
    await tg.wait_confirmed(update, timeout=20)
    assert len(tg.messages_to(alice)) == 1 and "Commands:" in (tg.messages_to(alice)[0].text or "")
    async with hooked.app.db.transaction() as session:
        assert not await updates.replies_waiting(session, channel="telegram", chat_id=str(alice.id))
