"""/mydata shows everything stored; /forget erases personal data but keeps what others need."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dialogs.messages import ChatKind
from storage import applications, users
from storage.data import Role, UserData
from storage.models import Conversation, User
from storage.rides import RideData
from tests.conftest import STAFF_ID
from tests.kit import Kit, Person


async def test_nothing_personal_before_consent_and_decline(kit: Kit) -> None:
    shy = kit.person("301", "Shy Person", lang="en")
    await shy.send("/start")
    await shy.click("I don't agree")
    assert "won't store" in shy.text()
    me = await shy.data()
    assert me.display_name == "" and me.username is None and me.phone is None
    assert not me.consented
    # Writing again starts the consent question again, never a service.
    await shy.send("I need a ride")
    assert "Do you agree?" in shy.text()


async def test_mydata_lists_profile_and_applications(kit: Kit) -> None:
    alice = kit.person("302", "王阿姨")
    await kit.onboard(alice, phone="13800001111")
    await alice.send("/driver")
    await alice.send("鄂A12345")
    await alice.send("白色朗逸")
    await alice.click("提交")
    await alice.send("/mydata")
    text = alice.text()
    for expected in ("王阿姨", "春和社区", "3栋", "+8613800001111", "鄂A12345", "待审核", "/forget"):
        assert expected in text, expected


async def test_forget_erases_personal_data_keeps_records_anonymised(kit: Kit) -> None:
    staff = kit.person(STAFF_ID, "Staff")
    await kit.onboard(staff)
    alice = kit.person("303", "王阿姨")
    await kit.onboard(alice, phone="13800002222")
    await alice.send("/driver")
    await alice.send("鄂A12345")
    await alice.send("白色朗逸")
    await alice.click("提交")
    user_id = (await alice.data()).id

    await alice.send("/forget")
    await alice.click("不删除")
    assert (await alice.data()).phone == "+8613800002222"
    await alice.send("/forget")
    await alice.click("确定删除")
    assert "已删除" in alice.text()

    async with kit.db.transaction() as session:
        row = await session.get(User, user_id)
        assert row is not None
        assert (row.display_name, row.phone, row.community_id, row.roles) == ("", None, None, "")
        assert row.external_id == f"forgotten:{user_id}" and row.forgotten_at is not None
        (app,) = await applications.for_user(session, user_id)
        assert app.details == {}  # the application record stays, without the plate
        assert not (
            await session.execute(select(Conversation).where(col(Conversation.user_id) == user_id))
        ).all()
    # Writing again makes a brand-new person who is asked for consent.
    await alice.send("hi")
    assert "同意" in alice.text()
    assert (await alice.data()).id != user_id


async def test_rides_in_mydata_and_anonymised_by_forget(kit: Kit) -> None:
    from datetime import UTC, datetime, timedelta

    from storage import rides
    from storage.rides import NewRide

    alice = kit.person("304", "王阿姨")
    await kit.onboard(alice, phone="13800007777")
    me = await alice.data()
    async with kit.db.transaction() as session:
        ride = await rides.create(
            session,
            NewRide(
                booker_user_id=me.id,
                rider_user_id=me.id,
                rider_name="王阿姨",
                rider_phone=me.phone,
                pickup_text="春和社区 3栋",
                dest_text="同济医院",
                pickup_at=datetime.now(UTC) + timedelta(days=1),
                note="带轮椅",
            ),
            group_id=None,
        )
    await alice.send("/mydata")
    assert f"#{ride.id}" in alice.text() and "同济医院" in alice.text()
    await alice.send("/forget")
    await alice.click("确定删除")
    async with kit.db.transaction() as session:
        kept = await rides.get(session, ride.id)
    assert kept is not None  # the ride stays for the driver's and staff's records
    assert (kept.rider_name, kept.rider_phone, kept.note) == ("", None, "")


async def _every_text_value(kit: Kit) -> list[tuple[str, str, str]]:
    """(table, column, value) for every non-empty text value in the database."""
    from sqlalchemy import String, Text
    from sqlmodel import SQLModel

    found = []
    async with kit.db.transaction() as session:
        for table in SQLModel.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String | Text)]
            if not columns:
                continue
            for row in (await session.execute(select(*columns))).all():
                for column, value in zip(columns, row, strict=True):
                    if value:
                        found.append((table.name, column.name, str(value)))
    return found


async def test_forget_leaves_nothing_that_identifies_the_person(kit: Kit) -> None:
    """After /forget, no table and no column holds the person's name, phone, platform or
    chat id, or anything they typed — sent messages, group posts, the weekly ride's
    template and drivers' details included (issue: attack and fault findings)."""
    from storage import rides

    staff = kit.person(STAFF_ID, "周网格员")
    await kit.onboard(staff)
    group = Person(kit, STAFF_ID, "周网格员", chat_id="-100888", chat_kind=ChatKind.GROUP)
    await group.send("/bind_driver_group")
    driver = kit.person("777", "陈师傅")
    await kit.onboard(driver, phone="13900007777")
    async with kit.db.transaction() as session:
        await users.grant_role(session, (await driver.data()).id, Role.DRIVER)

    alice = kit.person("88123", "欧阳秀英")
    await kit.onboard(alice, phone="13811112222")
    await alice.send("/driver")
    await alice.send("鄂A7Q777")
    await alice.send("银色比亚迪秦")
    await alice.click("提交")
    # A weekly ride with typed places and a note; the first occurrence is posted and claimed.
    await alice.send("/ride")
    await alice.click("我自己")
    await alice.send("幸福二路88号后门")
    await alice.send("同心路康复中心三楼")
    await alice.send("后天上午9点")
    await alice.click("对")
    await alice.click("每周重复")
    await alice.click("完成")
    await alice.click("3个月")
    await alice.click("其他要求")
    await alice.send("请帮忙拿一下折叠轮椅")
    await alice.click("确认发布")
    (ride_id,) = [r.id for r in await _rides_of(kit, alice)]
    ref = await kit.post_ref(ride_id)
    claimer = Person(kit, "777", "陈师傅", chat_id="-100888", chat_kind=ChatKind.GROUP)
    await claimer.press(f"a:claim:{ride_id}", message_ref=ref)
    assert "接单成功" in claimer.text()
    await kit.deliver_outbox()  # everything so far was "sent"
    me = await alice.data()
    secrets = {
        "欧阳秀英",
        "13811112222",
        "88123",
        "鄂A7Q777",
        "银色比亚迪秦",
        "幸福二路88号后门",
        "同心路康复中心三楼",
        "请帮忙拿一下折叠轮椅",
    }
    before = [(t, c) for t, c, v in await _every_text_value(kit) if any(s in v for s in secrets)]
    assert len(before) > 8  # the search does find them while they are there

    await alice.send("/forget")
    await alice.click("确定删除")

    left = [(t, c, v[:80]) for t, c, v in await _every_text_value(kit) if any(s in v for s in secrets)]
    assert left == []
    async with kit.db.transaction() as session:
        ride = await rides.get(session, ride_id)
        assert ride is not None and ride.status.value == "cancelled"  # the open ride ended…
        assert not (await ride_series_active(session))  # …and the series posts nothing more
    # …and the driver was told, without a name.
    note = (await driver.inbox())[-1]
    assert f"#{ride_id}" in note.text and "取消" in note.text
    assert me.id not in [u.id for u in await _findable(kit, "欧阳")]


async def _rides_of(kit: Kit, person: Person) -> list[RideData]:
    from storage import rides

    me = await person.data()
    async with kit.db.transaction() as session:
        return await rides.for_person(session, me.id)


async def ride_series_active(session: AsyncSession) -> list[object]:
    from storage import ride_series

    return list(await ride_series.active(session))


async def _findable(kit: Kit, query: str) -> list[UserData]:
    async with kit.db.transaction() as session:
        return await users.find_users(session, query)


async def test_mydata_says_what_is_in_progress_in_words_not_internal_names(kit: Kit) -> None:
    alice = kit.person("305", "王阿姨")
    await kit.onboard(alice)
    await alice.send("/ride")
    await alice.send("/mydata")
    text = alice.text()
    assert "预约用车" in text and "Telegram" in text
    for internal in ("(who)", "（who）", "ride:", "telegram（"):
        assert internal not in text
