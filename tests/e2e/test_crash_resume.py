"""`linli run` is killed with SIGKILL in the middle of onboarding and started again:
the person carries on where they were, on SQLite and on PostgreSQL, on both Telegram
runtimes (aiogram, python-telegram-bot)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bot.settings import TelegramRuntime
from storage import users
from storage.engine import Database
from storage.models import ProcessedUpdate
from tests.fakes.telegram_api import FakeTelegramServer, SentMessage

pytestmark = [pytest.mark.slow, pytest.mark.variants_on_postgres]


@asynccontextmanager
async def linli_process(
    tg: FakeTelegramServer, database_url: str, log: Path, runtime: TelegramRuntime = "aiogram"
) -> AsyncIterator[asyncio.subprocess.Process]:
    env = {
        **os.environ,
        "LINLI_TELEGRAM_RUNTIME": runtime,
        "LINLI_TELEGRAM_TOKEN": tg.token,
        "LINLI_TELEGRAM_API_BASE": tg.base_url,
        "LINLI_DATABASE_URL": database_url,
        "LINLI_POLLING_TIMEOUT": "1",
    }
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "run", env=env, stdout=out, stderr=out
        )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def kill(proc: asyncio.subprocess.Process, tg: FakeTelegramServer) -> None:
    proc.send_signal(signal.SIGKILL)
    assert await proc.wait() == -signal.SIGKILL
    # The fake notices the dropped long poll, as Telegram would.
    await tg.wait_polling(active=False)


def button(message: SentMessage, label: str) -> str:
    for text, data in message.buttons:
        if label in text and data:
            return data
    raise AssertionError(f"no button {label!r} in {message}")


async def test_sigkill_mid_onboarding_then_resume(
    fake_telegram: FakeTelegramServer, database_url: str, tmp_path: Path, telegram_runtime: TelegramRuntime
) -> None:
    tg = fake_telegram
    log = tmp_path / "linli.log"
    alice = tg.user(4242, "王奶奶", language_code="zh-hans")

    async with linli_process(tg, database_url, log, telegram_runtime) as proc:
        tg.send_text(alice, "/start")
        consent = await tg.wait_for_text(alice, "您同意吗", timeout=60)
        since = len(tg.sent)
        tg.press(alice, consent, button(consent, "同意"))
        language = await tg.wait_for_text(alice, "语言", since=since, timeout=30)
        # Killed once Linli is polling again (the answers are out, the batch confirmed).
        await tg.wait_polling(active=True, timeout=30)
        await kill(proc, tg)

    # While Linli is down she answers; the update waits at Telegram.
    since = len(tg.sent)
    tg.press(alice, language, button(language, "中文"))
    async with linli_process(tg, database_url, log, telegram_runtime) as proc:
        name = await tg.wait_for_text(alice, "称呼", since=since, timeout=60)
        since = len(tg.sent)
        tg.press(alice, name, button(name, "就叫我"))
        await tg.wait_for_text(alice, "哪个社区", since=since, timeout=60)
        # She types her community. Linli commits the step, starts sending the answer,
        # and is killed right then: the worst moment, between commit and reply.
        stall = tg.stall("sendMessage", chat_id=alice.id)
        since = len(tg.sent)
        update = tg.send_text(alice, "春和")
        async with asyncio.timeout(30):
            await stall.arrived.wait()
        await kill(proc, tg)
    assert not [m for m in tg.sent[since:] if m.chat_id == alice.id]  # the answer never left

    async with linli_process(tg, database_url, log, telegram_runtime) as proc:
        # The update comes again; the step is not run twice, and the answer is given.
        await tg.wait_confirmed(update, timeout=60)
        # One clear match: 春和社区 is picked at once and the building asked.
        await tg.wait_for_text(alice, "哪一栋", since=since, timeout=30)
        tg.send_text(alice, "3栋")
        phone = await tg.wait_for_text(alice, "也可以直接输入手机号", since=since, timeout=30)
        since = len(tg.sent)
        tg.press(alice, phone, button(phone, "跳过"))
        await tg.wait_for_text(alice, "设置完成", since=since, timeout=30)
        proc.send_signal(signal.SIGTERM)
        await proc.wait()

    # Every step counted once: one consent question, one language question.
    texts = [m.text or "" for m in tg.messages_to(alice)]
    assert sum("您同意吗" in t for t in texts) == 1, texts
    assert sum("请选择您习惯的语言" in t for t in texts) == 1, texts
    assert sum("找到了：春和社区" in t for t in texts) == 1, texts
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            me = await users.ensure_user(
                session,
                channel="telegram",
                external_id=str(alice.id),
                chat_id=str(alice.id),
                client_language="zh-hans",
            )
        assert me.onboarded and me.language == "zh" and me.display_name == "王奶奶"
        assert me.community_id is not None and me.building_id is not None
    finally:
        await db.dispose()


async def test_sigkill_after_one_reply_went_out_does_not_send_it_again(
    fake_telegram: FakeTelegramServer, database_url: str, tmp_path: Path, telegram_runtime: TelegramRuntime
) -> None:
    """Two people in one getUpdates batch; Bob's answer hangs, and Linli is killed after
    Alice's went out. Bob's update is older, so Alice's is not confirmed either (the
    offset stops at the oldest update in hand): on restart both come again. Alice gets
    nothing more, Bob his answer, once."""
    tg = fake_telegram
    log = tmp_path / "linli.log"
    alice = tg.user(4242, "Alice", language_code="en")
    bob = tg.user(4343, "Bob", language_code="en")
    stall = tg.stall("sendMessage", chat_id=bob.id)
    # Queued before Linli starts, so its first getUpdates returns both.
    second = tg.send_text(bob, "/help")
    first = tg.send_text(alice, "/help")

    async with linli_process(tg, database_url, log, telegram_runtime) as proc:
        await tg.wait_for_text(alice, "Commands:", timeout=60)
        async with asyncio.timeout(30):
            await stall.arrived.wait()
        # Alice's answer is marked delivered right after it went out (the batch is not
        # confirmed: Bob's update is still in hand). Killed once that mark is written.
        await wait_answered(database_url, f"telegram:{first['update_id']}")
        assert first["update_id"] in [u["update_id"] for u in tg.pending_updates]
        await kill(proc, tg)

    async with linli_process(tg, database_url, log, telegram_runtime) as proc:
        await tg.wait_for_text(bob, "Commands:", timeout=60)
        await tg.wait_confirmed(second, timeout=30)
        await tg.wait_confirmed(first, timeout=30)
        proc.send_signal(signal.SIGTERM)
        await proc.wait()
    assert tg.deliveries.count(first["update_id"]) >= 2  # it did come again
    assert len(tg.messages_to(alice)) == 1, tg.describe(alice)
    assert len(tg.messages_to(bob)) == 1, tg.describe(bob)


async def wait_answered(database_url: str, key: str) -> None:
    """Until the stored copy of this update's answer is gone (delivered)."""
    db = Database(database_url)
    try:
        async with asyncio.timeout(30):
            while True:
                async with db.transaction() as session:
                    row = await session.get(ProcessedUpdate, key)
                    if row is not None and row.replies is None:
                        return
                await asyncio.sleep(0.02)
    finally:
        await db.dispose()
