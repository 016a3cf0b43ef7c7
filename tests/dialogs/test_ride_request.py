"""The resident side of rides: /ride booking (self, family, staff proxy), /myrides, cancel."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select
from sqlmodel import col

from dialogs.features import FEATURES
from dialogs.timeparse import SHANGHAI
from handlers.registry import Registry
from storage import ride_series, rides
from storage.engine import Database
from storage.models import AuditEntry
from storage.rides import Ride, RideData, RideStatus
from tests.conftest import STAFF_ID
from tests.kit import Kit, Person

GROUP_CHAT = "-100777"


def _registry() -> Registry:
    return Registry.build(FEATURES)


@pytest.fixture
def pinned_clock() -> datetime:
    """ "Now" for the flow: tomorrow 10:00 in Wuhan, so every typed time is still ahead."""
    tomorrow = datetime.now(SHANGHAI).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time(10, 0), tzinfo=SHANGHAI).astimezone(UTC)


async def _kit(db: Database, now: datetime) -> Kit:
    return await Kit.create(db, staff_ids=[STAFF_ID], registry=_registry(), clock=lambda: now)


@pytest.fixture
async def rkit(db: Database, pinned_clock: datetime) -> Kit:
    return await _kit(db, pinned_clock)


@pytest.fixture
async def skit(sqlite_db: Database, pinned_clock: datetime) -> Kit:
    return await _kit(sqlite_db, pinned_clock)


async def _bind_group(kit: Kit, person: Person) -> None:
    user = await person.data()
    async with kit.db.transaction() as session:
        await rides.bind_group(
            session,
            channel="telegram",
            chat_id=GROUP_CHAT,
            title="司机群",
            community_ids=[],
            bound_by=user.id,
        )


async def _all_rides(kit: Kit) -> list[RideData]:
    async with kit.db.transaction() as session:
        ids = (await session.execute(select(col(Ride.id)).order_by(col(Ride.id)))).scalars().all()
        return [r for i in ids if i is not None and (r := await rides.get(session, i)) is not None]


async def _group_posts(kit: Kit) -> list[str]:
    return [m.text for chat, m in await kit.outbox() if chat == GROUP_CHAT]


async def _to_time_step(person: Person) -> None:
    """/ride for myself, from home to 协和医院: the next question is "when?"."""
    await person.send("/ride")
    await person.click("我自己")
    await person.click("从家出发")
    await person.click("协和医院")  # on the destination screen itself
    assert "什么时候" in person.text()


async def _finish(person: Person, *, confirm: str = "确认发布") -> None:
    await person.click(confirm)


async def test_book_myself_now_posts_to_group_with_masked_phone(rkit: Kit) -> None:
    staff = rkit.person(STAFF_ID, "周网格员")
    await rkit.onboard(staff)
    await _bind_group(rkit, staff)
    alice = rkit.person("301", "王奶奶")
    await rkit.onboard(alice, phone="13812345678")

    await alice.send("/ride")
    await alice.click("我自己")
    assert any("春和社区 3栋" in b for b in alice.buttons())
    await alice.click("从家出发")
    await alice.click("更多医院")
    await alice.click("协和医院")
    await alice.click("现在")
    await alice.click("其他要求")  # passengers, needs and note: one optional screen
    await alice.click("2人")
    await alice.click("轮椅")
    assert "✓ 轮椅" in alice.buttons() and "✓ 2人" in alice.buttons()
    await alice.send("我在小区东门等")  # typed there: the note
    # The summary shows the booker the full number, grouped as people read it.
    assert "138 1234 5678" in alice.text() and "协和医院" in alice.text()
    await alice.click("确认发布")
    assert "已发布" in alice.text()

    (ride,) = await _all_rides(rkit)
    assert ride.status is RideStatus.POSTED and ride.is_now and ride.passengers == 2
    assert ride.needs == ("wheelchair",) and ride.note == "我在小区东门等"
    assert ride.pickup_text == "春和社区 3栋" and ride.dest_lat is not None
    assert ride.group_id is not None and ride.pickup_at.tzinfo is not None
    assert f"#{ride.id}" in alice.text()
    (post,) = [m for chat, m in await rkit.outbox() if chat == GROUP_CHAT]
    assert "138****5678" in post.text and "13812345678" not in post.text
    assert [c.data for c in post.all_choices()] == [f"a:claim:{ride.id}"]


async def test_phone_numbers_typed_into_free_text_are_masked_in_the_group(rkit: Kit) -> None:
    """The group never reads a full mobile number, wherever it was typed (attack findings)."""
    staff = rkit.person(STAFF_ID, "周网格员")
    await rkit.onboard(staff)
    await _bind_group(rkit, staff)
    alice = rkit.person("302", "王奶奶")
    await rkit.onboard(alice, phone="13812345678")
    await alice.send("/ride")
    await alice.click("我自己")
    await alice.send("幸福路8号 到了打 139 1234 5678")
    await alice.click("更多医院")
    await alice.click("协和医院")
    await alice.click("现在")
    await alice.click("其他要求")
    await alice.click("给司机留言")
    await alice.send("到了请打13712345678找我儿子")
    await alice.click("完成")
    await alice.click("确认发布")
    (post,) = [m for chat, m in await rkit.outbox() if chat == GROUP_CHAT]
    assert "139****5678" in post.text and "137****5678" in post.text
    for full in ("13912345678", "139 1234 5678", "13712345678", "13812345678"):
        assert full not in post.text


async def test_typed_times_are_shown_back_and_confirmed(skit: Kit) -> None:
    alice = skit.person("302", "王奶奶")
    await skit.onboard(alice, phone="13812345670")
    await _to_time_step(alice)
    await alice.send("明天下午3点")
    assert "下午3:00" in alice.text()
    await alice.click("对")
    assert "每周重复" in alice.text()
    await alice.click("只约这一次")
    await _finish(alice)
    (ride,) = await _all_rides(skit)
    local = ride.pickup_at.astimezone(SHANGHAI)
    assert (local.hour, local.minute) == (15, 0) and not ride.is_now


async def test_ambiguous_hour_offers_the_other_reading(skit: Kit, pinned_clock: datetime) -> None:
    alice = skit.person("303", "王奶奶")
    await skit.onboard(alice)
    await _to_time_step(alice)
    await alice.send("3点")
    assert len([b for b in alice.buttons() if "3:00" in b]) == 2
    await alice.click("不对")  # 3 in the morning, not the afternoon
    await alice.click("只约这一次")
    # No phone in the profile: asked, and a resident may skip it for their own ride.
    assert "手机号" in alice.text()
    await alice.click("跳过")
    await alice.click("确认发布")
    (ride,) = await _all_rides(skit)
    assert ride.pickup_at.astimezone(SHANGHAI).hour == 3 and ride.rider_phone is None
    assert ride.pickup_at > pinned_clock


async def test_past_far_and_unreadable_times_are_refused_kindly(skit: Kit) -> None:
    alice = skit.person("304", "王奶奶")
    await skit.onboard(alice)
    await _to_time_step(alice)
    await alice.send("今天上午8点")
    assert "已经过去了" in alice.text() and "什么时候" in alice.text()
    await alice.send("下下个月")
    assert "没看懂" in alice.text()
    await alice.send("100天后")
    assert "30 天以内" in alice.text() or "没看懂" in alice.text()
    assert "什么时候" in alice.text()


async def test_back_from_several_steps(skit: Kit) -> None:
    alice = skit.person("305", "王奶奶")
    await skit.onboard(alice, phone="13812345671")
    await _to_time_step(alice)
    await alice.click("上一步")
    assert "要去哪里" in alice.text()
    await alice.click("上一步")
    assert "从哪里上车" in alice.text()
    await alice.send("武昌区中山路100号")
    await alice.send("同济医院")  # a hospital named in words gets its coordinates
    await alice.click("明天 14:00")
    await alice.click("只约这一次")
    await alice.click("其他要求")
    await alice.click("2人")
    await alice.click("上一步")
    assert "请核对" in alice.text()
    await alice.click("其他要求")
    await alice.click("3人")
    await alice.click("完成")
    await alice.click("确认发布")
    (ride,) = await _all_rides(skit)
    assert ride.pickup_text == "武昌区中山路100号" and ride.pickup_lat is None
    assert ride.dest_text == "华中科技大学同济医学院附属同济医院" and ride.dest_lat is not None
    assert ride.passengers == 3


async def test_book_for_someone_else_with_consent(rkit: Kit) -> None:
    son = rkit.person("306", "王小明")
    await rkit.onboard(son, phone="13812345672")
    await son.send("/ride")
    await son.click("帮别人约")
    await son.send("王奶奶")
    await son.send("12345")
    assert "手机号好像不对" in son.text()
    await son.send("139 0000 1111")
    await son.click("家人")
    assert "同意" in son.text()
    await son.click("我确认对方已同意")
    assert not any("从家出发" in b for b in son.buttons())  # her home is not known
    await son.send("春和社区5栋")
    await son.click("更多医院")
    await son.click("中南医院")
    await son.click("明天 9:00")
    await son.click("只约这一次")
    await _finish(son)
    (ride,) = await _all_rides(rkit)
    assert ride.rider_name == "王奶奶" and ride.rider_phone == "+8613900001111"
    assert ride.relation == "family" and ride.booker_user_id == (await son.data()).id
    assert ride.rider_user_id is None
    # No driver group bound: staff are alerted instead.
    assert "工作人员" in son.text()


async def test_no_group_alerts_staff(skit: Kit) -> None:
    staff = skit.person(STAFF_ID, "周网格员")
    await skit.onboard(staff)
    alice = skit.person("307", "王奶奶")
    await skit.onboard(alice, phone="13812345673")
    await _to_time_step(alice)
    await alice.click("现在")
    await _finish(alice)
    assert "工作人员" in alice.text()
    (alert,) = await staff.inbox()
    (ride,) = await _all_rides(skit)
    assert f"#{ride.id}" in alert.text and await _group_posts(skit) == []


async def test_staff_books_for_resident_found_by_phone(rkit: Kit) -> None:
    staff = rkit.person(STAFF_ID, "周网格员")
    await rkit.onboard(staff)
    await _bind_group(rkit, staff)
    grandma = rkit.person("308", "李奶奶")
    await rkit.onboard(grandma, phone="13812345674")

    await staff.send("/ride")
    await staff.click("为来电居民代约")
    await staff.send("李")
    await staff.send("138 1234 5674")
    assert any("李奶奶" in b and "138****5674" in b for b in staff.buttons())
    await staff.click("李奶奶")
    assert "电话中同意" in staff.text()
    await staff.click("居民已在电话中同意")
    assert any("春和社区 3栋" in b for b in staff.buttons())  # her home, not the staff's
    await staff.click("从家出发")
    await staff.click("更多医院")
    await staff.click("人民医院")
    await staff.click("现在")
    await _finish(staff)
    (ride,) = await _all_rides(rkit)
    assert ride.rider_user_id == (await grandma.data()).id and ride.relation == "staff"
    assert ride.rider_phone == "+8613812345674"
    told = await grandma.inbox()
    assert any("周网格员" in m.text and "帮您预约" in m.text for m in told)


async def test_staff_books_for_unregistered_resident(skit: Kit) -> None:
    staff = skit.person(STAFF_ID, "周网格员")
    await skit.onboard(staff)
    await staff.send("/ride")
    await staff.click("为来电居民代约")
    await staff.send("赵大爷")
    assert "没有找到" in staff.text()
    await staff.click("未注册")
    await staff.send("赵大爷")
    await staff.send("13700001234")
    await staff.click("居民已在电话中同意")
    await staff.send("解放社区2栋")
    await staff.send("武汉市中心医院")
    await staff.click("现在")
    await _finish(staff)
    (ride,) = await _all_rides(skit)
    assert (ride.rider_name, ride.rider_phone, ride.relation) == ("赵大爷", "+8613700001234", "staff")
    assert ride.rider_user_id is None

    # He phones again next week: his earlier ride is his record, found by phone or name.
    for query in ("13700001234", "赵大爷"):
        await staff.send("/ride")
        await staff.click("为来电居民代约")
        await staff.send(query)
        assert any("以前代约过" in b for b in staff.buttons())
        await staff.send("/cancel")
    await staff.send("/ride")
    await staff.click("为来电居民代约")
    await staff.send("1370000")
    await staff.click("赵大爷")
    await staff.click("居民已在电话中同意")
    await staff.send("解放社区2栋")
    await staff.send("武汉市中心医院")
    await staff.click("现在")
    await _finish(staff)
    second = (await _all_rides(skit))[-1]
    assert (second.rider_name, second.rider_phone, second.relation) == ("赵大爷", "+8613700001234", "staff")


async def test_non_staff_forging_the_proxy_button_is_refused(rkit: Kit) -> None:
    alice = rkit.person("309", "王奶奶")
    await rkit.onboard(alice)
    await alice.send("/ride")
    assert not any("来电" in b for b in alice.buttons())
    await alice.press("f:ride:who:phoned")
    assert "只有相应身份" in alice.text() and "谁坐车" in alice.text()
    async with rkit.db.transaction() as session:
        refused = (
            await session.execute(select(AuditEntry).where(col(AuditEntry.allowed).is_(False)))
        ).scalars()
        assert [e.action for e in refused] == ["ride:phoned"]


async def test_weekly_repeat_creates_series_and_first_ride(skit: Kit) -> None:
    alice = skit.person("310", "王奶奶")
    await skit.onboard(alice, phone="13812345675")
    await _to_time_step(alice)
    await alice.send("后天上午9点")
    await alice.click("对")
    await alice.click("每周重复")
    first_day = next(b for b in alice.buttons() if b.startswith("✓ "))
    await alice.click(first_day)  # unselect: none chosen
    await alice.click("完成")
    assert "至少选一天" in alice.text()
    await alice.click("周一")
    await alice.click("周三")
    await alice.click("完成")
    await alice.click("3个月")
    await _finish(alice)
    (ride,) = await _all_rides(skit)
    assert ride.series_id is not None
    async with skit.db.transaction() as session:
        series = await ride_series.get(session, ride.series_id)
    assert series is not None and series.weekdays == (0, 2) and series.time_of_day == "09:00"
    assert series.until > ride.pickup_at + timedelta(days=85)
    assert series.template.dest_text == ride.dest_text

    # Someone else cannot stop her series; she can, from /myrides.
    stranger = skit.person("311", "路人")
    await skit.onboard(stranger)
    await stranger.press(f"a:series_stop:{series.id}")
    assert "只有预约人" in stranger.text()
    await alice.send("/myrides")
    await alice.click("停止每周重复")
    assert "已停止每周重复" in alice.text()
    async with skit.db.transaction() as session:
        stopped = await ride_series.get(session, series.id)
    assert stopped is not None and not stopped.active


async def test_myrides_and_cancel_with_forgery_refused(rkit: Kit) -> None:
    staff = rkit.person(STAFF_ID, "周网格员")
    await rkit.onboard(staff)
    await _bind_group(rkit, staff)
    alice = rkit.person("311", "王奶奶")
    await rkit.onboard(alice, phone="13812345676")
    await _to_time_step(alice)
    await alice.click("现在")
    await _finish(alice)
    (ride,) = await _all_rides(rkit)

    await alice.send("/myrides")
    assert "等待司机接单" in alice.text() and "协和医院" in alice.text()
    await alice.click("取消这个行程")
    assert "确定要取消" in alice.text()

    mallory = rkit.person("312", "陌生人")
    await rkit.onboard(mallory)
    await mallory.press(f"a:ride_cancel_yes:{ride.id}")
    assert "只有预约人或乘车人" in mallory.text()
    assert (await _all_rides(rkit))[0].status is RideStatus.POSTED

    await alice.click("确定取消")
    assert "已取消" in alice.text()
    assert (await _all_rides(rkit))[0].status is RideStatus.CANCELLED
    await alice.press(f"a:ride_cancel_yes:{ride.id}")
    assert "不能取消" in alice.text()
    async with rkit.db.transaction() as session:
        refused = (
            await session.execute(select(AuditEntry).where(col(AuditEntry.allowed).is_(False)))
        ).scalars()
        assert [(e.action, e.target) for e in refused] == [("a:ride_cancel_yes", str(ride.id))]


async def test_english_flow_end_to_end(skit: Kit) -> None:
    emma = skit.person("313", "Emma", lang="en")
    await skit.onboard(emma, lang="en", phone="13812345677")
    await emma.send("/ride")
    await emma.click("Myself")
    await emma.click("From home")
    await emma.click("Tongji")
    await emma.send("tomorrow 3pm")
    assert "3:00 pm" in emma.text().lower() or "3:00" in emma.text()
    await emma.click("Yes")
    await emma.click("Just this once")
    assert "、" not in emma.text() and "Tongji Hospital" in emma.text()  # English things
    await _finish(emma, confirm="Confirm")
    assert "ride #" in emma.text().lower()
    await emma.send("/myrides")
    assert "waiting for a driver" in emma.text()


async def test_start_mid_booking_keeps_the_question_and_cancel_ends_with_buttons(skit: Kit) -> None:
    """Issue 8: /start in the middle of a booking says it is still open and asks again,
    so the next answer lands in the right step; /cancel ends with the menu's buttons."""
    alice = skit.person("330", "王奶奶")
    await skit.onboard(alice, phone="13812345679")
    await _to_time_step(alice)
    await alice.send("/start")
    assert "什么时候" in alice.text() and "预约用车" not in alice.buttons()
    await alice.click("现在")
    assert "请核对" in alice.text()
    await alice.send("/cancel")
    assert any("预约用车" in b for b in alice.buttons())


async def test_day_without_hour_asks_the_hour_and_duplicates_are_questioned(skit: Kit) -> None:
    alice = skit.person("331", "王奶奶")
    await skit.onboard(alice, phone="13812345680")
    await _to_time_step(alice)
    await alice.send("后天")
    assert "几点" in alice.text() and "9:00" in alice.buttons()
    await alice.click("9:00")
    await alice.click("只约这一次")
    await alice.click("确认发布")
    await _to_time_step(alice)
    await alice.send("后天上午9点半")
    await alice.click("对")
    await alice.click("只约这一次")
    await alice.click("确认发布")
    assert "还要再约一辆吗" in alice.text()
    await alice.click("不用了")
    assert len(await _all_rides(skit)) == 1


async def test_phone_numbers_are_not_addresses_and_landlines_are_rider_phones(skit: Kit) -> None:
    son = skit.person("332", "王小明")
    await skit.onboard(son, phone="13812345681")
    await son.send("/ride")
    await son.click("帮别人约")
    await son.send("王奶奶")
    await son.send("027-8765 4321")  # she has a landline only
    await son.click("家人")
    await son.click("我确认对方已同意")
    assert "接 TA" in son.text()
    for typed in ("13812345678", "0", "12"):
        await son.send(typed)
        assert "不是地址" in son.text(), typed
    await son.send("春和社区5栋")
    await son.click("协和医院")
    await son.click("现在")
    assert "027-8765 4321" in son.text()
    await son.click("确认发布")
    (ride,) = await _all_rides(skit)
    assert ride.rider_phone == "+862787654321" and ride.pickup_text == "春和社区5栋"
