"""/mydata shows everything stored; /forget erases personal data but keeps what others need."""

from __future__ import annotations

from sqlalchemy import select

from storage import applications
from storage.models import Conversation, User
from tests.conftest import STAFF_ID
from tests.kit import Kit


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
        assert not (await session.execute(select(Conversation).where(Conversation.user_id == user_id))).all()
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
