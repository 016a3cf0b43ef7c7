"""Driver and lawyer applications, staff decisions, and refused forgeries."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import col

from storage import applications
from storage.data import Role
from storage.models import AuditEntry
from tests.conftest import STAFF_ID
from tests.kit import Kit


async def _audit(kit: Kit) -> list[AuditEntry]:
    async with kit.db.transaction() as session:
        return list((await session.execute(select(AuditEntry).order_by(col(AuditEntry.id)))).scalars())


async def test_driver_application_approved_by_staff(kit: Kit) -> None:
    staff = kit.person(STAFF_ID, "周网格员")
    await kit.onboard(staff)
    assert (await staff.data()).has(Role.STAFF)

    driver = kit.person("201", "陈师傅")
    await kit.onboard(driver)
    await driver.send("/driver")
    # No phone yet: a driver must give one first.
    assert "手机号" in driver.text()
    await driver.share_contact("13900000001")
    await driver.send("ABC")
    assert "车牌号格式不对" in driver.text()
    await driver.send("鄂a 12345")
    await driver.send("白色大众朗逸")
    assert "鄂A12345" in driver.text()
    await driver.click("提交")
    assert "已提交" in driver.text()

    staff_inbox = await staff.inbox()
    assert len(staff_inbox) == 1
    # The card shows who applied: name, phone and where they live.
    for part in ("鄂A12345", "陈师傅", "139 0000 0001", "春和社区 3栋"):
        assert part in staff_inbox[0].text, part
    approve = next(c for c in staff_inbox[0].all_choices() if "通过" in c.label)
    await staff.press(approve.data, message_ref="77")
    assert staff.replies[0].edit_ref == "77"
    assert "您已通过" in staff.text()

    assert (await driver.data()).has(Role.DRIVER)
    assert any("恭喜" in m.text for m in await driver.inbox())
    # A second press (another staff member, or the same one twice) changes nothing.
    await staff.press(approve.data)
    assert "已经处理过了" in staff.text()


async def test_lawyer_application_in_english_rejected(kit: Kit) -> None:
    staff = kit.person(STAFF_ID, "Staff", lang="en")
    await kit.onboard(staff, lang="en")
    lawyer = kit.person("202", "Liu", lang="en")
    await kit.onboard(lawyer, lang="en")
    await lawyer.send("/lawyer")
    await lawyer.send("春和律师事务所")
    await lawyer.send("1234")
    assert "17 digits" in lawyer.text()
    await lawyer.send("14201 2010 1234 5678")
    await lawyer.click("Done")
    assert "at least one" in lawyer.text()
    await lawyer.click("Labour disputes")
    await lawyer.click("Family")
    assert "✓ Labour disputes" in lawyer.buttons()
    await lawyer.click("Done")
    assert "Labour disputes、Family & marriage" in lawyer.text()
    await lawyer.click("Submit")
    (message,) = await staff.inbox()
    reject = next(c for c in message.all_choices() if "Reject" in c.label)
    await staff.press(reject.data)
    assert not (await lawyer.data()).has(Role.LAWYER)
    assert any("not approved" in m.text for m in await lawyer.inbox())


async def test_cannot_apply_twice_while_pending(kit: Kit) -> None:
    driver = kit.person("203", "Wu")
    await kit.onboard(driver, phone="13900000002")
    for _ in range(2):
        await driver.send("/driver")
        if "已经有一份申请" in driver.text():
            break
        await driver.send("鄂A54321")
        await driver.send("红色比亚迪")
        await driver.click("提交")
    assert "已经有一份申请" in driver.text()
    async with kit.db.transaction() as session:
        assert len(await applications.pending(session)) == 1


async def test_forged_approval_from_resident_is_refused_and_logged(kit: Kit) -> None:
    driver = kit.person("204", "Applicant")
    await kit.onboard(driver, phone="13900000003")
    await driver.send("/driver")
    await driver.send("鄂A11111")
    await driver.send("蓝色丰田")
    await driver.click("提交")
    async with kit.db.transaction() as session:
        (pending,) = await applications.pending(session)

    # The applicant forges the staff button for their own application.
    await driver.press(f"a:approve:{pending.id}")
    assert "只有相应身份" in driver.text()
    assert not (await driver.data()).has(Role.DRIVER)
    # A forged /pending is refused too.
    await driver.send("/pending")
    assert "只有相应身份" in driver.text()
    refused = [e for e in await _audit(kit) if not e.allowed]
    assert [e.action for e in refused] == ["a:approve", "/pending"]
    assert refused[0].target == str(pending.id)
    async with kit.db.transaction() as session:
        assert (await applications.get(session, pending.id)).status == "pending"  # type: ignore[union-attr]


async def test_revoked_staff_can_no_longer_approve(kit: Kit) -> None:
    """The role is read from the database on every press, not remembered."""
    from storage import users

    staff = kit.person(STAFF_ID, "Staff")
    await kit.onboard(staff)
    driver = kit.person("205", "Applicant")
    await kit.onboard(driver, phone="13900000004")
    await driver.send("/driver")
    await driver.send("鄂A22222")
    await driver.send("黑色奥迪")
    await driver.click("提交")
    (message,) = await staff.inbox()
    kit.handler.staff_ids = frozenset()  # no longer an admin by configuration either
    async with kit.db.transaction() as session:
        await users.revoke_role(session, (await staff.data()).id, Role.STAFF)
    await staff.press(message.all_choices()[0].data)
    assert "只有相应身份" in staff.text()
    assert not (await driver.data()).has(Role.DRIVER)


async def test_an_approved_driver_is_told_how_to_join_the_driver_group(kit: Kit) -> None:
    from dialogs.messages import ChatKind
    from tests.kit import Person

    staff = kit.person(STAFF_ID, "周网格员")
    await kit.onboard(staff)
    group = Person(kit, STAFF_ID, "周网格员", chat_id="-100321", chat_kind=ChatKind.GROUP)
    await group.send("/bind_driver_group https://t.me/+AbCdEf123456 春和")
    assert "邀请链接" in group.text()
    driver = kit.person("202", "李师傅")
    await kit.onboard(driver, phone="13900000002")
    await driver.send("/driver")
    await driver.send("鄂A54321")
    await driver.send("黑色丰田卡罗拉")
    await driver.click("提交")
    (card,) = await staff.inbox()
    approve = next(c for c in card.all_choices() if "通过" in c.label)
    await staff.press(approve.data)
    news = (await driver.inbox())[-1].text
    assert "恭喜" in news and "https://t.me/+AbCdEf123456" in news
