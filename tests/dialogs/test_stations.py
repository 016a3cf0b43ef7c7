"""/stations through the handler: location and typed places (Chinese, pinyin, initials),
filters, pages, the map pin with navigation links, kind answers to bad input, staff
closing/reopening and hours, /mydata and /forget. Both languages, both databases."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select
from sqlmodel import col

from dialogs.features import FEATURES
from dialogs.stations import buttons
from handlers.registry import Registry
from storage import stations as store
from storage.engine import Database
from storage.models import AuditEntry
from storage.stations_hours import SHANGHAI
from tests.conftest import STAFF_ID
from tests.kit import Kit, Person

GUANGGU = (30.5058, 114.3987)  # 光谷广场


@pytest.fixture
def noon() -> datetime:
    """A Wednesday noon in Wuhan: most sample stations are open."""
    return datetime(2026, 12, 2, 12, 0, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture
async def skit(db: Database, noon: datetime) -> Kit:
    return await Kit.create(db, staff_ids=[STAFF_ID], registry=Registry.build(FEATURES), clock=lambda: noon)


async def _rider(kit: Kit, lang: str = "zh", external_id: str = "501") -> Person:
    person = kit.person(external_id, "郭小哥", lang="en" if lang == "en" else "zh-hans")
    await kit.onboard(person, lang=lang)
    return person


def _pins(person: Person) -> list[str]:
    return [c.data for m in person.replies for c in m.all_choices() if c.data.startswith("a:station_show:")]


async def test_share_location_lists_nearest_five_with_distance_status_and_pins(skit: Kit) -> None:
    alice = await _rider(skit)
    await alice.send("/stations")
    assert any(m.ask is not None for m in alice.replies), "asks for the location with a keyboard"
    await alice.share_location(*GUANGGU)
    text = alice.text()
    assert "您的位置附近的驿站（第 1 页）" in text
    assert "1. 光谷广场户外劳动者驿站" in text and "骑车约" in text and "🟢 24 小时开放" in text
    assert "米" in text and "☎️ 12345" in text and "示例数据" in text
    assert len(_pins(alice)) == 5
    assert any(m.remove_keyboard for m in alice.replies), "the location keyboard goes away"

    await alice.click("📍1")
    pin = next(m for m in alice.replies if m.place is not None)
    assert pin.place is not None and pin.place.title == "光谷广场户外劳动者驿站"
    details = alice.text()
    assert "uri.amap.com/navigation?to=114.40" in details and "callnative=1" in details
    assert "openstreetmap.org/?mlat=30.505800&mlon=114.398700" in details
    assert "营业时间" in details and "距离" in details


async def test_pages_and_filters(skit: Kit) -> None:
    alice = await _rider(skit)
    await alice.send("/stations")
    await alice.share_location(*GUANGGU)
    first = set(_pins(alice))
    await alice.click("更多")
    assert "第 2 页" in alice.text()
    second = set(_pins(alice))
    assert first and second and not first & second
    assert alice.replies[-1].edit_ref is not None, "the list is edited in place"
    await alice.click("上一页")
    assert set(_pins(alice)) == first

    await alice.click("类型")
    await alice.click("小哥食堂")
    assert "✓ 小哥食堂" in alice.buttons()
    await alice.click("查看结果")
    assert "筛选：小哥食堂" in alice.text()
    assert alice.text().count("（小哥食堂）") == len(_pins(alice)) > 0

    await alice.click("设施")
    await alice.click("微波炉")
    await alice.click("查看结果")
    async with skit.db.transaction() as session:
        shown = [int(d.rsplit(":", 1)[1]) for d in _pins(alice)]
        for sid in shown:
            station = await store.get(session, sid)
            assert (
                station is not None and station.kind.value == "canteen" and "microwave" in station.amenities
            )

    await alice.click("只看营业中")
    assert "只看营业中" in alice.text()
    await alice.click("清除筛选")
    assert "筛选" not in alice.text()


async def test_open_now_hides_closed_stations_at_night(db: Database) -> None:
    night = datetime(2026, 12, 2, 3, 0, tzinfo=SHANGHAI).astimezone(UTC)
    kit = await Kit.create(db, staff_ids=[STAFF_ID], registry=Registry.build(FEATURES), clock=lambda: night)
    alice = await _rider(kit)
    await alice.send("/stations")
    await alice.share_location(*GUANGGU)
    assert "已关门" in alice.text() or "🔴" in alice.text() or "🟢" in alice.text()
    await alice.click("只看营业中")
    text = alice.text()
    assert "🔴" not in text and "⛔" not in text and "🟢" in text


@pytest.mark.parametrize("typed", ["光谷", "guanggu", "gg", "光谷广场附近的驿站", "Optics Valley"])
async def test_typed_place_chinese_pinyin_and_initials(skit: Kit, typed: str) -> None:
    alice = await _rider(skit)
    await alice.send("/stations")
    await alice.send(typed)
    assert "📍 光谷附近的驿站" in alice.text(), alice.text()
    assert "光谷广场户外劳动者驿站" in alice.text()


async def test_several_places_offered_then_picked(skit: Kit) -> None:
    alice = await _rider(skit)
    await alice.send("/stations")
    await alice.send("解放大道")
    assert "您说的是哪里" in alice.text()
    assert "想在哪附近找驿站" not in alice.text()  # the question is not read out again
    label = alice.buttons()[0]
    await alice.click(label)
    assert "附近的驿站" in alice.text()


async def test_free_text_presets_the_need(skit: Kit) -> None:
    alice = await _rider(skit)
    await alice.send("附近有充电的地方吗")
    assert "发送我的位置" in " ".join(m.ask_label or "" for m in alice.replies)
    await alice.share_location(*GUANGGU)
    assert "筛选：手机充电" in alice.text()


async def test_bad_input_gets_kind_answers(skit: Kit) -> None:
    alice = await _rider(skit)
    await alice.send("/stations")
    await alice.share_location(91.0, 114.3)
    assert "纬度要在 -90 到 90 之间" in alice.text() and any(m.ask for m in alice.replies)
    await alice.send_unsupported()
    assert "看不懂" in alice.text() and alice.buttons()
    await alice.send("火星基地")
    assert "没找到叫“火星基地”的地方" in alice.text() and alice.buttons()
    # Far from every station: "nothing found near …" with what to do next.
    await alice.share_location(48.8566, 2.3522)
    assert "30 公里内没有找到驿站" in alice.text()
    assert "📍 换个地方" in alice.buttons()
    # A forged or stale station button.
    await alice.press(buttons.Show(station=999999).pack())
    assert "不在列表里" in alice.text()


async def test_english_screens(skit: Kit) -> None:
    emma = await _rider(skit, lang="en", external_id="502")
    await emma.send("/stations")
    assert "Where should I look" in emma.text()
    await emma.send("gg")
    text = emma.text()
    assert "Rest stations near 光谷 (page 1)" in text and "min by bike" in text
    assert "Open 24 hours" in text and "Sample data" in text
    await emma.click("Kind")
    await emma.click("rider canteen")
    await emma.click("Show results")
    assert "Filters: rider canteen" in text or "Filters: rider canteen" in emma.text()
    await emma.click("📍")
    assert "Directions in Amap" in emma.text() and "Opening hours" in emma.text()
    assert not any("stations." in m.text or "f:stations" in m.text for m in emma.history)


async def test_mydata_shows_and_forget_erases_the_last_search(skit: Kit) -> None:
    alice = await _rider(skit)
    await alice.send("/stations")
    await alice.send("光谷")
    await alice.click("取消")
    await alice.send("/stations")
    assert any("再查“光谷”附近" in b for b in alice.buttons())
    await alice.click("再查")
    assert "光谷附近的驿站" in alice.text()
    await alice.send("/mydata")
    assert "驿站查询：上次在“光谷”附近查找" in alice.text()
    user = await alice.data()
    await alice.send("/forget")
    for label in ("确认", "删除"):
        if any(label in b for b in alice.buttons()):
            await alice.click(label)
            break
    async with skit.db.transaction() as session:
        assert await store.last_search(session, user.id) is None


async def _staff(kit: Kit) -> Person:
    staff = kit.person(STAFF_ID, "周网格员")
    await kit.onboard(staff)
    return staff


async def test_staff_close_reopen_and_hours(skit: Kit, noon: datetime) -> None:
    staff = await _staff(skit)
    await staff.send("/stations")
    await staff.share_location(*GUANGGU)
    await staff.click("📍1")
    await staff.click("管理这个驿站")
    await staff.click("暂停开放")
    await staff.click("3 天")
    await staff.click("设施维修")
    assert "⛔ 暂停开放（设施维修）" in staff.text()
    async with skit.db.transaction() as session:
        station = next(s for s in await store.all_stations(session) if s.name == "光谷广场户外劳动者驿站")
        assert station.closed and station.closed_reason == "设施维修"
        local = noon.astimezone(SHANGHAI).date() + timedelta(days=3)
        assert station.closed_until == datetime.combine(local, time(0), tzinfo=SHANGHAI)

    # A rider sees it closed; with "open now only" it is gone.
    alice = await _rider(skit)
    await alice.send("/stations")
    await alice.share_location(*GUANGGU)
    assert "1. 光谷广场户外劳动者驿站" in alice.text() and "⛔ 暂停开放（设施维修）" in alice.text()
    await alice.click("只看营业中")
    assert "光谷广场户外劳动者驿站" not in alice.text()

    await staff.press(buttons.Manage(station=station.id).pack())
    await staff.click("修改营业时间")
    await staff.send("周一到周五 25:00-08:00")
    assert "看不懂这个营业时间" in staff.text()
    await staff.send("每天 22:00-06:00")
    assert "22:00-06:00" in staff.text()
    await staff.press(buttons.Manage(station=station.id).pack())
    await staff.click("恢复开放")
    assert "已恢复开放" in staff.text()
    async with skit.db.transaction() as session:
        fresh = await store.get(session, station.id)
        assert fresh is not None and not fresh.closed and fresh.hours.text() == "daily 22:00-06:00"
        actions = (
            (await session.execute(select(col(AuditEntry.action)).where(col(AuditEntry.allowed))))
            .scalars()
            .all()
        )
        assert {"station_close", "station_hours", "station_reopen"} <= set(actions)

    # Noon: the station is now closed by its hours; riders are told when it opens.
    await alice.send("/stations")
    await alice.share_location(*GUANGGU)
    assert "已关门，今天 22:00 开门" in alice.text()


async def test_non_staff_cannot_manage(skit: Kit) -> None:
    alice = await _rider(skit)
    async with skit.db.transaction() as session:
        station = (await store.all_stations(session))[0]
    await alice.press(buttons.Manage(station=station.id).pack())
    assert "只有相应身份" in alice.text()
    await alice.press("f:station_staff:what:close")
    async with skit.db.transaction() as session:
        fresh = await store.get(session, station.id)
        assert fresh is not None and not fresh.closed
        refused = (
            (await session.execute(select(AuditEntry).where(col(AuditEntry.allowed).is_(False))))
            .scalars()
            .all()
        )
        assert any(r.action == "a:station_manage" for r in refused)
