"""Rides end to end: the real aiogram Bot over HTTP against the fake Bot API server, with
``run_telegram`` polling, on SQLite and PostgreSQL.

A resident books a ride, it appears in the driver group that staff bound, two approved
drivers press "claim" on the same post, exactly one wins; details go both ways, then
on the way → picked up → completed → the rider rates the ride.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlmodel import col

from bot.settings import TelegramRuntime
from storage.rides import Ride
from tests.conftest import STAFF_ID
from tests.e2e.test_telegram_e2e import Client, Linked, linli_on, settings_for
from tests.fakes.telegram_api import FakeTelegramServer, FakeUser

pytestmark = pytest.mark.slow  # real-time rate limits: seconds per test, outside the fast loop


@pytest_asyncio.fixture
async def linked(
    fake_telegram: FakeTelegramServer, database_url: str, telegram_runtime: TelegramRuntime
) -> AsyncIterator[Linked]:
    settings = settings_for(fake_telegram, database_url, telegram_runtime)
    async with linli_on(fake_telegram, settings) as linked:
        yield linked


async def onboard(person: Client, phone: str) -> None:
    await person.say("/start", "同意")
    await person.press("同意", "语言")
    await person.press("中文", "称呼")
    await person.press("就叫我", "社区")
    await person.say("chunhe", "哪一栋")  # one clear match: picked at once
    await person.say("3栋", "手机号")
    await person.share_contact(phone, "设置完成")


async def become_driver(tg: FakeTelegramServer, driver: Client, staff: Client, plate: str) -> None:
    await driver.say("/driver", "车牌")
    await driver.say(plate, "车型")
    await driver.say("白色大众朗逸", plate)
    await driver.press("提交", "已提交")
    notice = await tg.wait_for_text(staff.user, plate)
    since = len(tg.sent)
    approve = next(d for _, d in notice.buttons if d and d.startswith("a:approve:"))
    tg.press(staff.user, notice, approve)
    await tg.wait_for_text(driver.user, "恭喜", since=since)


@pytest.mark.variants_on_postgres
async def test_request_claim_race_status_and_rating(linked: Linked) -> None:
    tg = linked.tg
    staff = Client(tg, tg.user(int(STAFF_ID), "周", last_name="网格员"))
    alice = Client(tg, tg.user(1001, "王", last_name="奶奶"))
    zhao = Client(tg, tg.user(1101, "赵", last_name="师傅"))
    qian = Client(tg, tg.user(1102, "钱", last_name="师傅"))
    for person, phone in (
        (staff, "+8613700000000"),
        (alice, "+8613812345678"),
        (zhao, "+8613900000001"),
        (qian, "+8613900000002"),
    ):
        await onboard(person, phone)
    await become_driver(tg, zhao, staff, "鄂A12345")
    await become_driver(tg, qian, staff, "鄂A54321")

    # Anyone may add the bot to a group; only staff make it the driver group.
    group = tg.group(-100123, "春和志愿司机群")
    since = len(tg.sent)
    tg.send_text(alice.user, "/bind_driver_group", chat=group)
    await tg.wait_for_text(group, "只有相应身份", since=since)
    since = len(tg.sent)
    tg.send_text(staff.user, "/bind_driver_group", chat=group)
    await tg.wait_for_text(group, "本群已设为司机群", since=since)

    # Alice books a ride for herself, now, from home to a hospital.
    await alice.say("/ride", "谁坐车")
    await alice.press("我自己", "也可以直接打字写地址")
    await alice.press("从家出发", "常去的医院点一下")
    await alice.press("更多医院", "请选择要去的医院")
    await alice.press("协和医院", "什么时候出发")
    await alice.press("现在", "请核对行程信息")
    since = len(tg.sent)
    await alice.press("确认发布", "已发布")

    post = await tg.wait_for_text(group, "新的用车请求", since=since)
    assert "138****5678" in (post.text or "") and "13812345678" not in (post.text or "")
    ((_label, claim),) = post.buttons
    assert claim is not None and claim.startswith("a:claim:")
    ride_id = int(claim.rsplit(":", 1)[1])

    # Both drivers press at once, on the same post.
    since = len(tg.sent)
    presses = [tg.press(zhao.user, post, claim), tg.press(qian.user, post, claim)]
    answers = [await tg.wait_callback_answer(p) for p in presses]
    texts = sorted(a.text or "" for a in answers)
    assert texts == ["已被其他司机接走，谢谢您！", "🎉 接单成功！完整信息已私信发给您。"], texts
    winner, loser = (zhao, qian) if "接单成功" in (answers[0].text or "") else (qian, zhao)
    name = "赵 师傅" if winner is zhao else "钱 师傅"
    await tg.wait_for(lambda m: m is post and f"已由 {name} 接单" in (m.text or ""))
    assert post.buttons == []
    winner_id = (await linked.user(winner.user)).id
    async with linked.app.db.transaction() as session:
        row = (await session.execute(select(Ride).where(col(Ride.id) == ride_id))).scalar_one()
        assert row.status == "claimed" and row.driver_user_id == winner_id

    # Details both ways, only to the winner: full phone and navigation links...
    details = await tg.wait_for_text(winner.user, "完整信息如下", since=since)
    assert "138 1234 5678" in (details.text or "") and "uri.amap.com" in (details.text or "")
    assert not any("完整信息如下" in (m.text or "") for m in tg.messages_to(loser.user))
    # ...and the driver's name, car, plate and phone to Alice.
    plate = "鄂A12345" if winner is zhao else "鄂A54321"
    card = await tg.wait_for_text(alice.user, plate, since=since)
    assert name in (card.text or "")

    # On the way → picked up → completed, each editing the driver's message.
    since = len(tg.sent)
    await press_on(tg, winner.user, details, "我已出发")
    await tg.wait_for_text(alice.user, "司机已出发", since=since)
    await tg.wait_for(lambda m: m is details and "司机在路上" in (m.text or ""))
    await press_on(tg, winner.user, details, "已接到乘客")
    await tg.wait_for(lambda m: m is details and "行程中" in (m.text or ""))
    since = len(tg.sent)
    await press_on(tg, winner.user, details, "已送达")
    done = await tg.wait_for_text(alice.user, "平安送达", since=since)
    # The driver's own answer and Alice's news travel separately: either may come first.
    await tg.wait_for(lambda m: m is details and m.buttons == [])

    # Alice rates it; the rating message turns into the thanks.
    five = next(d for text, d in done.buttons if text.startswith("5"))
    assert five is not None
    tg.press(alice.user, done, five)
    await tg.wait_for(lambda m: m is done and "谢谢您的评价" in (m.text or ""))
    async with linked.app.db.transaction() as session:
        row = (await session.execute(select(Ride).where(col(Ride.id) == ride_id))).scalar_one()
        assert row.status == "completed" and row.rating == 5


async def press_on(tg: FakeTelegramServer, user: FakeUser, message: object, label: str) -> None:
    """Press the button labelled ``label`` on ``message`` as it is now, and wait for its answer."""
    from tests.fakes.telegram_api import SentMessage

    assert isinstance(message, SentMessage)
    data = next((d for text, d in message.buttons if label in text), None)
    assert data is not None, f"no {label!r} in {message.buttons}"
    await tg.wait_callback_answer(tg.press(user, message, data))


async def test_driver_group_upgraded_to_supergroup_then_bot_removed(linked: Linked) -> None:
    """A group Telegram turns into a supergroup keeps its binding and its open posts; a
    group that removes Linli is unbound at once, staff told, and new rides go to staff."""
    tg = linked.tg
    staff = Client(tg, tg.user(int(STAFF_ID), "周", last_name="网格员"))
    alice = Client(tg, tg.user(1001, "王", last_name="奶奶"))
    zhao = Client(tg, tg.user(1101, "赵", last_name="师傅"))
    for person, phone in ((staff, "+8613700000000"), (alice, "+8613812345678"), (zhao, "+8613900000001")):
        await onboard(person, phone)
    await become_driver(tg, zhao, staff, "鄂A12345")
    group = tg.group(-100123, "春和志愿司机群")
    since = len(tg.sent)
    tg.send_text(staff.user, "/bind_driver_group", chat=group)
    await tg.wait_for_text(group, "本群已设为司机群", since=since)

    async def book(done: str = "已发布") -> None:
        await alice.say("/ride", "谁坐车")
        await alice.press("我自己", "也可以直接打字写地址")
        await alice.press("从家出发", "常去的医院点一下")
        await alice.press("更多医院", "请选择要去的医院")
        await alice.press("协和医院", "什么时候出发")
        await alice.press("现在", "请核对行程信息")
        await alice.press("确认发布", done)

    since = len(tg.sent)
    await book()
    await tg.wait_for_text(group, "新的用车请求", since=since)

    # Telegram upgrades the group: the open ride is posted again in the new chat, and a
    # claim pressed there counts.
    since = len(tg.sent)
    supergroup = tg.migrate_group(group, -1_001_000_000_123, by=staff.user)
    repost = await tg.wait_for_text(supergroup, "还没有司机接单", since=since)
    ((_label, claim),) = repost.buttons
    assert claim is not None
    since = len(tg.sent)
    tg.press(zhao.user, repost, claim)
    await tg.wait_for_text(zhao.user, "完整信息如下", since=since)

    # Linli is removed from the supergroup: staff hear at once; the next ride goes to staff.
    since = len(tg.sent)
    tg.remove_bot(supergroup, by=alice.user)
    await tg.wait_for_text(staff.user, "移出", since=since)
    since = len(tg.sent)
    # The first ride is still open at about that time: questioned before posting (issue 8).
    await book(done="还要再约一辆吗")
    await alice.press("再约一辆", "暂时没有司机群")
    alert = await tg.wait_for_text(staff.user, "没有可发布的司机群", since=since)
    assert any(d and d.startswith("a:ride_assign:") for _, d in alert.buttons)
