"""Legal consultations end to end: real aiogram against the fake Bot API, with
``run_telegram`` polling and the outbox sender, on SQLite and PostgreSQL.

A rider asks a question in free text and gets the answer with the law; books the
volunteer lawyer from that answer in a few taps; the lawyer is told; the 24-hour
reminder reaches both through the outbox; after the consultation the lawyer marks it
done from /mybookings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest
import pytest_asyncio

from bot.settings import TelegramRuntime
from dialogs.legal import cards
from storage import legal, users
from storage.data import Role
from storage.legal import BookingStatus, Place
from storage.models import utcnow
from tests.e2e.test_telegram_e2e import Client, Linked, linli_on, onboard_zh, settings_for
from tests.fakes.telegram_api import FakeTelegramServer

pytestmark = pytest.mark.slow  # real-time rate limits: seconds per test, outside the fast loop


@pytest_asyncio.fixture
async def linked(
    fake_telegram: FakeTelegramServer, database_url: str, telegram_runtime: TelegramRuntime
) -> AsyncIterator[Linked]:
    settings = settings_for(fake_telegram, database_url, telegram_runtime)
    async with linli_on(fake_telegram, settings) as linked:
        yield linked


async def test_question_answer_book_reminder_done(linked: Linked) -> None:
    tg = linked.tg
    rider = Client(tg, tg.user(2001, "刘", last_name="师傅"))
    lawyer = Client(tg, tg.user(2002, "李", last_name="律师"))
    await onboard_zh(rider)
    await onboard_zh(lawyer)
    lawyer_row = await linked.user(lawyer.user)
    starts = cards.local(utcnow() + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
    async with linked.app.db.transaction() as session:
        await users.grant_role(session, lawyer_row.id, Role.LAWYER)
        await legal.add_window(
            session,
            lawyer_user_id=lawyer_row.id,
            weekday=None,
            day=starts.date(),
            start_minute=9 * 60,
            end_minute=10 * 60,
            slot_minutes=30,
            seats=2,
            place=Place.STATION,
            place_text="春和社区春芽小站",
        )

    # Free text → the answer, with the law and where to go.
    answer = await rider.say("骑手送餐摔伤了平台管不管", "工伤保险条例")
    assert "不是针对您个案的法律意见" in (answer.text or "")
    await rider.press("预约律师", "哪方面")
    await rider.press("⭐", "一两句话")
    await rider.press("用我刚才问的问题", "对方是谁")
    await rider.say("某某配送站", "选一天")
    await rider.press("个空位", "选一个时间")
    await rider.press("09:00", "请核对")
    since = len(tg.sent)
    await rider.press("确认预约", "预约成功")
    await tg.wait_for_text(lawyer.user, "新的法律咨询预约", since=since)

    # The 24-hour reminder, run as the scheduler runs it, reaches both sides.
    async with linked.app.db.transaction() as session:
        (booking,) = await legal.for_resident(session, (await linked.user(rider.user)).id)
    since = len(tg.sent)
    await linked.app.jobs.run("legal-reminder", f"{booking.id}:24", f"legal-reminder:{booking.id}:24")
    await tg.wait_for_text(rider.user, "24 小时后有法律咨询", since=since)
    await tg.wait_for_text(lawyer.user, "刘 师傅", since=since)

    # After the consultation the lawyer marks it done.
    handler = linked.app.handler
    handler.env = replace(handler.env, clock=lambda: booking.starts_at + timedelta(minutes=40))
    await lawyer.say("/mybookings", "骑手送餐摔伤了")
    card, done_data = lawyer.button("已完成")
    await tg.wait_callback_answer(tg.press(lawyer.user, card, done_data))
    await tg.wait_for(lambda m: m is card and "已标记" in (m.text or ""))  # the card is edited
    async with linked.app.db.transaction() as session:
        done = await legal.get_booking(session, booking.id)
    assert done is not None and done.status is BookingStatus.DONE
