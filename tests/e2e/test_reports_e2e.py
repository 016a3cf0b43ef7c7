"""Problem reports end to end: the real aiogram Bot over HTTP against the fake Bot API,
``run_telegram`` polling, on SQLite and PostgreSQL.

A rider reports a missing manhole cover with photos and a location in five actions
(counted); it lands in the staff group bound to the community covering the point; the
photos are fetched through getFile, stored in the media folder and shown to the group
from there; a neighbour reporting the same thing follows it instead; staff take it,
fix it with a photo; the rider confirms and rates; the follower hears every step.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlmodel import col

from bot.settings import TelegramRuntime
from storage.reports import Report, ReportPhoto
from tests.conftest import STAFF_ID
from tests.e2e.test_rides_e2e import onboard
from tests.e2e.test_telegram_e2e import Client, Linked, linli_on, onboard_en, settings_for
from tests.fakes.telegram_api import FakeChat, FakeTelegramServer

pytestmark = pytest.mark.slow  # real-time rate limits: seconds per test, outside the fast loop

PROBLEM = b"\xff\xd8\xff\xdb\x00\x03\x01\xff\xda\x00\x02manhole-hole\xff\xd9"
FIXED = b"\xff\xd8\xff\xdb\x00\x03\x01\xff\xda\x00\x02manhole-fixed\xff\xd9"


@pytest_asyncio.fixture
async def linked(
    fake_telegram: FakeTelegramServer, database_url: str, tmp_path: Path, telegram_runtime: TelegramRuntime
) -> AsyncIterator[Linked]:
    settings = settings_for(fake_telegram, database_url, telegram_runtime).model_copy(
        update={"media_dir": str(tmp_path / "media")}
    )
    async with linli_on(fake_telegram, settings) as linked:
        yield linked


async def bind_groups(tg: FakeTelegramServer, staff: Client) -> tuple[FakeChat, FakeChat]:
    """Staff bind 春和's staff group and the city-wide fallback group."""
    chunhe = tg.group(-100201, "春和社区问题处理群")
    city = tg.group(-100202, "全市兜底群")
    for group, args in ((chunhe, "春和社区"), (city, "全市")):
        since = len(tg.sent)
        tg.send_text(staff.user, f"/bind_report_group {args}", chat=group)
        await tg.wait_for_text(group, "✅", since=since)
    return chunhe, city


async def test_report_photos_routing_loop_followers_and_rating(linked: Linked, tmp_path: Path) -> None:
    tg = linked.tg
    staff = Client(tg, tg.user(int(STAFF_ID), "周", last_name="网格员"))
    rider = Client(tg, tg.user(1201, "郭", last_name="小哥"))
    neighbour = Client(tg, tg.user(1202, "Lily", language_code="en"))
    for person, phone in ((staff, "+8613700000000"), (rider, "+8613812345678")):
        await onboard(person, phone)
    await onboard_en(neighbour)

    # Staff bind 春和's group; the rest of the city has a fallback group.
    chunhe, city = await bind_groups(tg, staff)

    # The rider, on the road: five actions.
    actions = 0
    await rider.say("/report", "是什么问题")
    actions += 1
    await rider.press("井盖", "拍张照片")
    actions += 1
    since = len(tg.sent)
    tg.send_photo(rider.user, PROBLEM, caption="东门口井盖没了")
    actions += 1
    await tg.wait_for_text(rider.user, "问题在哪里", since=since)
    tg.send_photo(rider.user, PROBLEM + b"2")  # a second photo at the place question
    await tg.wait_for_text(rider.user, "第 2 张", since=since)
    since = len(tg.sent)
    tg.send_location(rider.user, 30.4807, 114.4104)
    await tg.wait_for_text(rider.user, "请核对", since=since)
    actions += 1
    since = len(tg.sent)
    await rider.press("确认提交", "已提交")
    actions += 1
    assert actions <= 5

    card = await tg.wait_for_text(chunhe, "东门口井盖没了", since=since)
    assert "郭 小哥" in (card.text or "") and "13812345678" not in (card.text or "")
    photo = await tg.wait_for(lambda m: m.chat_id == chunhe.chat_id and m.method == "sendPhoto", since=since)
    assert "现场照片" in (photo.text or "")
    assert not [m for m in tg.sent[since:] if m.chat_id == city.chat_id]
    async with linked.app.db.transaction() as session:
        report = (await session.execute(select(Report))).scalar_one()
        stored = (
            (await session.execute(select(ReportPhoto).where(col(ReportPhoto.path).is_not(None))))
            .scalars()
            .all()
        )
    # Both photos are kept by Linli, not only as Telegram file ids.
    await tg.wait_for(
        lambda m: m.chat_id == chunhe.chat_id and m.method == "sendPhoto", since=photo.index + 1
    )
    async with linked.app.db.transaction() as session:
        stored = (
            (await session.execute(select(ReportPhoto).where(col(ReportPhoto.path).is_not(None))))
            .scalars()
            .all()
        )
    assert len(stored) == 2
    assert {(tmp_path / "media" / p.path).read_bytes() for p in stored if p.path} == {PROBLEM, PROBLEM + b"2"}
    number = f"WH-{report.id:06d}"

    # The neighbour sees the same hole: offered as the same problem, follows it.
    await neighbour.say("the manhole cover is gone", "Is it about")
    await neighbour.press("Yes,", "take a photo")
    await neighbour.press("No photo", "Where is it")
    since = len(tg.sent)
    tg.send_location(neighbour.user, 30.4808, 114.4104)
    await tg.wait_for_text(neighbour.user, "Similar problems", since=since)
    await neighbour.press(number, "You now follow")

    # Staff take it in the group; rider and follower hear it, each in their language.
    since = len(tg.sent)
    take = next(d for t, d in card.buttons if d and d.startswith("a:report_take:"))
    await tg.wait_callback_answer(tg.press(staff.user, card, take))
    await tg.wait_for_text(rider.user, "已受理", since=since)
    await tg.wait_for_text(neighbour.user, "was accepted", since=since)
    panel = await tg.wait_for_text(staff.user, "由您负责", since=since)

    # Fixed, with a photo of the fix.
    resolve = next(d for t, d in panel.buttons if d and d.startswith("a:report_resolve:"))
    since = len(tg.sent)
    tg.press(staff.user, panel, resolve)
    await tg.wait_for_text(staff.user, "修好后的照片", since=since)
    since = len(tg.sent)
    tg.send_photo(staff.user, FIXED, caption="已补装新井盖")
    news = await tg.wait_for_text(rider.user, "已补装新井盖", since=since)
    await tg.wait_for_text(neighbour.user, "was fixed", since=since)
    await tg.wait_for(lambda m: m.chat_id == rider.user.id and m.method == "sendPhoto", since=since)

    # The rider confirms and rates.
    confirm = next(d for t, d in news.buttons if d and d.startswith("a:report_confirm:"))
    since = len(tg.sent)
    tg.press(rider.user, news, confirm)
    rating = await tg.wait_for(lambda m: m is news and "打个分" in (m.text or ""))
    await tg.wait_for_text(neighbour.user, "is closed", since=since)
    five = next(d for t, d in rating.buttons if t.startswith("5"))
    assert five is not None
    tg.press(rider.user, rating, five)
    await tg.wait_for(lambda m: m is news and "谢谢您的评价" in (m.text or ""))
    async with linked.app.db.transaction() as session:
        done = (await session.execute(select(Report))).scalar_one()
    assert (done.status, done.rating) == ("closed", 5)


async def test_staff_group_upgraded_to_supergroup_then_bot_removed(linked: Linked) -> None:
    """A staff group Telegram turns into a supergroup keeps its binding, and its open
    reports are posted again there (their buttons work); a group that removes Linli is
    unbound at once, staff are told, and its open reports go to the fallback group."""
    tg = linked.tg
    staff = Client(tg, tg.user(int(STAFF_ID), "周", last_name="网格员"))
    rider = Client(tg, tg.user(1201, "郭", last_name="小哥"))
    for person, phone in ((staff, "+8613700000000"), (rider, "+8613812345678")):
        await onboard(person, phone)
    chunhe, city = await bind_groups(tg, staff)

    async def report(caption: str, confirm: str = "确认提交") -> None:
        await rider.say("/report", "是什么问题")
        await rider.press("井盖", "拍张照片")
        since = len(tg.sent)
        tg.send_photo(rider.user, PROBLEM, caption=caption)
        await tg.wait_for_text(rider.user, "问题在哪里", since=since)
        since = len(tg.sent)
        tg.send_location(rider.user, 30.4807, 114.4104)  # in 春和社区
        await tg.wait_for_text(rider.user, "请核对", since=since)
        await rider.press(confirm, "已提交")

    since = len(tg.sent)
    await report("东门口井盖没了")
    await tg.wait_for_text(chunhe, "东门口井盖没了", since=since)

    # Upgraded: the open report's card comes again in the new chat, and taking it works.
    since = len(tg.sent)
    supergroup = tg.migrate_group(chunhe, -1_001_000_000_201, by=staff.user)
    card = await tg.wait_for_text(supergroup, "东门口井盖没了", since=since)
    take = next(d for label, d in card.buttons if "受理" in label)
    assert take is not None
    since = len(tg.sent)
    await tg.wait_callback_answer(tg.press(staff.user, card, take))
    await tg.wait_for_text(supergroup, "已受理", since=since)

    # Linli is removed: staff hear at once, the open report goes to the city-wide group,
    # and so does the next one from 春和.
    since = len(tg.sent)
    tg.remove_bot(supergroup, by=rider.user)
    await tg.wait_for_text(staff.user, "被移出了", since=since)
    await tg.wait_for_text(city, "东门口井盖没了", since=since)
    since = len(tg.sent)
    await report("西门井盖也没了", confirm="不是，提交新问题")  # a second manhole, 0 m away
    await tg.wait_for_text(city, "西门井盖也没了", since=since)
    assert not [m for m in tg.sent[since:] if m.chat_id in (chunhe.chat_id, supergroup.chat_id)]
