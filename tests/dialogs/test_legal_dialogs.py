"""/legal in Chinese and English: FAQ answers with the law and where to go, urgent
triage first, a lawyer publishing hours, booking, the conflict check, privacy (reads
audited), forged buttons refused and audited, a lawyer cancelling a slot."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import col

from dialogs.legal import buttons, kb
from storage import legal, users
from storage.data import Role
from storage.engine import Database
from storage.models import AuditEntry
from tests.conftest import STAFF_ID
from tests.kit import Kit, Person
from tests.legal_world import Clock, monday_morning


async def _kit(db: Database) -> tuple[Kit, Clock]:
    clock = Clock(monday_morning())
    return await Kit.create(db, staff_ids=[STAFF_ID], clock=clock), clock


async def _lawyer(kit: Kit, external_id: str, name: str, *, seats: str = "2") -> Person:
    lawyer = kit.person(external_id, name)
    await kit.onboard(lawyer)
    async with kit.db.transaction() as session:
        await users.grant_role(session, (await lawyer.data()).id, Role.LAWYER)
    await lawyer.send("/lawyer_hours")
    await lawyer.click("每周固定时间")
    await lawyer.click("周二")
    await lawyer.click("09:00–12:00")
    await lawyer.click("30分钟")
    await lawyer.click(seats)
    await lawyer.click("社区春芽小站")
    await lawyer.click("就在本社区")
    assert "每周二 09:00–12:00" in lawyer.text()
    await lawyer.click("发布")
    assert "已发布" in lawyer.text()
    await lawyer.click("完成")
    return lawyer


async def _audit(kit: Kit, action: str) -> list[AuditEntry]:
    async with kit.db.transaction() as session:
        rows = await session.execute(select(AuditEntry).where(col(AuditEntry.action) == action))
        return list(rows.scalars())


async def test_free_text_question_gets_answer_law_and_where(db: Database) -> None:
    kit, _ = await _kit(db)
    alice = kit.person("501", "王阿姨")
    await kit.onboard(alice)
    await alice.send("老板拖欠工资怎么办")
    text = alice.text()
    assert "劳动合同法" in text and "第三十条" in text and "12348" in text
    assert "不是针对您个案的法律意见" in text
    assert "匹配度" in text
    assert any("预约律师" in b for b in alice.buttons())
    # Another question in the same screen, then a topic list.
    await alice.send("楼上漏水把我家泡了谁赔")
    assert "第二百九十六条" in alice.text()
    await alice.click("换个问题")
    await alice.click("继承")
    assert "继承" in alice.text() and len(alice.buttons()) > 3


async def test_urgent_words_get_emergency_numbers_first(db: Database) -> None:
    kit, _ = await _kit(db)
    bob = kit.person("502", "Bob")
    await kit.onboard(bob)
    await bob.send("/legal")
    await bob.send("我老公喝醉了打我，还威胁要杀了我")
    first = bob.replies[0].text
    assert first.index("110") < first.index("📖") if "📖" in first else "110" in first
    assert "12338" in first
    await bob.send("我不想活了")
    assert "12356" in bob.replies[0].text


async def test_english_question_and_low_confidence_offers_a_lawyer(db: Database) -> None:
    kit, _ = await _kit(db)
    eve = kit.person("503", "Eve", lang="en")
    await kit.onboard(eve, lang="en")
    await eve.send("/legal")
    await eve.send("my landlord keeps my deposit after I moved out")
    assert "Civil Code" in eve.text() and "not legal advice" in eve.text()
    await eve.send("what colour is the sky on mars")
    assert "no answer I am confident about" in eve.text()
    assert "Book a volunteer lawyer (recommended)" in eve.buttons()[0]


async def test_book_conflict_privacy_forgery_and_lawyer_cancel(db: Database) -> None:
    kit, _ = await _kit(db)
    li = await _lawyer(kit, "601", "李律师", seats="1")
    # Zhang declares a conflict with 美团.
    zhang = await _lawyer(kit, "602", "张律师")
    await zhang.send("/lawyer_hours")
    await zhang.click("声明利益冲突")
    await zhang.send("美团")
    assert "美团" in zhang.text()

    alice = kit.person("603", "王阿姨")
    await kit.onboard(alice)
    await alice.send("骑手送餐摔伤了平台管不管")  # free text: the FAQ answers
    assert "工伤保险条例" in alice.text()
    await alice.click("预约律师")
    assert "⭐" in alice.buttons()[0]  # the answer's topic first: one tap
    await alice.click("⭐")
    await alice.click("用我刚才问的问题")
    await alice.send("美团 （公司）")
    await alice.click("个空位")
    # Only Li is offered: Zhang declared a conflict with this party.
    assert all("张律师" not in b for b in alice.buttons())
    assert any("李律师" in b for b in alice.buttons())
    await alice.click("李律师")
    await alice.click("确认预约")
    assert "预约成功" in alice.text()
    assert any("新的法律咨询预约" in m.text for m in await li.inbox())

    # Li sees the description; the read is audited.
    await li.send("/mybookings")
    assert "骑手送餐摔伤了" in li.text() and "美团" in li.text()
    assert await _audit(kit, "legal_read_private")

    # Another resident forges a cancel of Alice's booking: refused and audited.
    async with kit.db.transaction() as session:
        (booking,) = await legal.for_resident(session, (await alice.data()).id)
    mallory = kit.person("604", "Mallory")
    await kit.onboard(mallory)
    await mallory.press(buttons.CancelBookingYes(booking=booking.id).pack())
    assert "不是您的预约" in mallory.text()
    refused = [a for a in await _audit(kit, "a:legal_cancel_yes") if not a.allowed]
    assert refused and refused[0].target == str(booking.id)
    await mallory.press(buttons.MarkDone(booking=booking.id).pack())  # not a lawyer at all
    async with kit.db.transaction() as session:
        still = await legal.get_booking(session, booking.id)
    assert still is not None and still.status is legal.BookingStatus.BOOKED

    # A second resident finds Li's slot full and joins the waitlist.
    carl = kit.person("605", "Carl")
    await kit.onboard(carl)
    await carl.send("/legal")
    await carl.click("预约律师")
    await carl.click("工资劳动")
    await carl.send("公司三个月没发工资了")
    await carl.click("没有对方")
    await carl.click("周二")
    await carl.click("李律师")
    assert "加入候补" in carl.buttons()[0]
    await carl.click("加入候补")
    assert "第 1 位" in carl.text()

    # Li cancels the slot: Alice hears it with other slots (Zhang's are excluded for her).
    await li.send("/mybookings")
    await li.click("取消这个时间段")
    await li.click("确定取消")
    assert "已通知 1 位" in li.text()
    told = [m for m in await alice.inbox() if "取消了" in m.text]
    assert told and not any("张律师" in c.label for c in told[-1].all_choices())
    assert any("候补也随之取消" in m.text for m in await carl.inbox())


async def test_resident_cancels_and_reschedules_until_two_hours_before(db: Database) -> None:
    kit, clock = await _kit(db)
    li = await _lawyer(kit, "701", "李律师")
    ann = kit.person("702", "Ann", lang="en")
    await kit.onboard(ann, lang="en")
    await ann.send("/legal")
    await ann.click("Book a lawyer")
    await ann.click("Renting")
    await ann.send("Landlord wants me out in three days")
    await ann.click("No other party")
    await ann.click("Tue")
    await ann.click("09:00")
    await ann.click("Confirm booking")
    assert "Booked!" in ann.text()
    await ann.send("/mybookings")
    await ann.click("Reschedule")
    await ann.click("Tue")
    await ann.click("10:00")
    await ann.click("Confirm booking")
    assert "Moved to" in ann.text()
    async with kit.db.transaction() as session:
        mine = await legal.for_resident(session, (await ann.data()).id)
    statuses = sorted(b.status.value for b in mine)
    assert statuses == ["booked", "cancelled"]
    # Within two hours of the start it can no longer be changed.
    (live,) = [b for b in mine if b.status is legal.BookingStatus.BOOKED]
    from datetime import timedelta

    clock.now = live.starts_at - timedelta(minutes=90)
    await ann.send("/mybookings")
    assert "no longer be cancelled" in ann.text()
    await ann.press(buttons.CancelBookingYes(booking=live.id).pack())
    assert "no longer be cancelled" in ann.text()
    assert li  # the lawyer's hours served the booking


async def test_imported_entries_answer_in_chat(db: Database) -> None:
    kit, _ = await _kit(db)
    new = kb.parse_entry(
        {
            "id": "station_hours",
            "topic": "wages",
            "q_zh": ["春芽小站几点开门"],
            "q_en": ["When is the station open"],
            "answer_zh": "春芽小站每天九点开门。",
            "answer_en": "The station opens at nine every day.",
            "law_zh": "《法律援助法》第四十一条",
            "law_en": "Legal Aid Law art. 41",
            "where": ["station"],
        }
    )
    async with kit.db.transaction() as session:
        await kb.save(session, [new])
    alice = kit.person("801", "Alice")
    await kit.onboard(alice)
    await alice.send("/legal")
    await alice.send("春芽小站几点开门呀")
    assert "每天九点开门" in alice.text()


async def test_forget_cancels_upcoming_and_erases_what_was_typed(db: Database) -> None:
    kit, _ = await _kit(db)
    li = await _lawyer(kit, "901", "李律师")
    ann = kit.person("902", "Ann")
    await kit.onboard(ann)
    await ann.send("/legal")
    await ann.click("预约律师")
    await ann.click("租房")
    await ann.send("房东不退押金三千元")
    await ann.send("房东张某某")
    await ann.click("个空位")
    await ann.click("09:00")
    await ann.click("确认预约")
    async with kit.db.transaction() as session:
        (booking,) = await legal.for_resident(session, (await ann.data()).id)
    await ann.send("/mydata")
    assert "房东不退押金三千元" in ann.text()
    await ann.send("/forget")
    await ann.click("删除")
    async with kit.db.transaction() as session:
        after = await legal.get_booking(session, booking.id)
        slot = await legal.get_slot(session, booking.slot_id)
    assert after is not None and after.status is legal.BookingStatus.CANCELLED
    assert (after.resident_user_id, after.description, after.opposing_party, after.client_name) == (
        None,
        "",
        "",
        "",
    )
    assert slot is not None and slot.taken == 0
    assert any("取消了" in m.text for m in await li.inbox())
