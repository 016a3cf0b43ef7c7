"""/notice, /notices, /settings, /noticeboard: staff compose and target only their own
communities (forged data refused), residents' mute settings and quiet hours shape the
delivery, the author gets a report; in Chinese and English."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlmodel import col

from dialogs.feature import Env
from dialogs.features import FEATURES
from dialogs.notices import delivery
from storage import communities, notices, users
from storage.data import Role
from storage.models import AuditEntry, OutboxMessage
from tests.conftest import STAFF_ID
from tests.kit import Kit, Person


def _next_local(hour: int, minute: int) -> datetime:
    """The next hh:mm in Wuhan at least an hour from now: the jobs' clock must not be
    behind the notices staff compose on the real clock during the test."""
    soon = datetime.now(notices.LOCAL) + timedelta(hours=1)
    moment = soon.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return (moment if moment >= soon else moment + timedelta(days=1)).astimezone(UTC)


# 15:00 in Wuhan: outside the default quiet hours.
AFTERNOON = _next_local(15, 0)
# 23:30 in Wuhan: inside them.
NIGHT = _next_local(23, 30)


async def _chunhe(kit: Kit) -> int:
    async with kit.db.transaction() as session:
        found = await communities.search_communities(session, "春和社区")
        return found[0].id


async def _other(kit: Kit) -> int:
    async with kit.db.transaction() as session:
        return next(c.id for c in await communities.list_communities(session) if c.name == "申新社区")


async def _staff(kit: Kit, *, lang: str = "zh", scope: bool = True) -> Person:
    staff = kit.person(STAFF_ID, "周网格员", lang="en" if lang == "en" else "zh-hans")
    await kit.onboard(staff, lang=lang)
    if scope:
        me = await staff.data()
        chunhe = await _chunhe(kit)
        async with kit.db.transaction() as session:
            await notices.grant_scope(session, me.id, chunhe)
    return staff


async def _residents(kit: Kit, n: int, *, lang: str = "zh") -> list[Person]:
    people = []
    for i in range(n):
        p = kit.person(str(500 + i), f"居民{i}", lang="en" if lang == "en" else "zh-hans")
        await kit.onboard(p, lang=lang)
        people.append(p)
    return people


async def _notice_rows(kit: Kit) -> list[OutboxMessage]:
    async with kit.db.transaction() as session:
        rows = await session.execute(
            select(OutboxMessage)
            .where(col(OutboxMessage.notice_run_id).is_not(None))
            .order_by(col(OutboxMessage.id))
        )
        return list(rows.scalars())


async def _compose_zh(
    staff: Person, text: str = "3栋明天停水，请提前储水。", *, urgent: bool = False
) -> None:
    await staff.send("/notice")
    assert "通知内容" in staff.text()
    await staff.send(text)
    await staff.click("不配图")
    await staff.click("不需要英文版")
    assert "哪个社区" in staff.text()
    # Only the communities they are responsible for are offered.
    assert "春和社区" in staff.buttons() and "申新社区" not in staff.buttons()
    await staff.click("春和社区")
    await staff.click("整个社区")
    await staff.click("所有人")
    await staff.click("停水停电")
    await staff.click("紧急" if urgent else "普通")
    await staff.click("立即发送")


async def _run_jobs(kit: Kit, env: Env) -> None:
    for spec in await delivery.notice_jobs_for_tests(kit.db, env):
        await delivery.JOBS.runners[spec.runner](kit.db, env, spec.arg)


async def test_compose_preview_send_and_report_in_chinese(kit: Kit) -> None:
    staff = await _staff(kit)
    await _residents(kit, 3)
    await _compose_zh(staff)
    preview = staff.text()
    assert "预计接收人数" in preview and "3栋明天停水" in preview
    assert "notice" not in preview  # no internal names
    await staff.click("确认发送")
    assert "已开始发送" in staff.text()

    env = Env(clock=lambda: AFTERNOON)
    await _run_jobs(kit, env)
    rows = await _notice_rows(kit)
    # Three residents, the staff member and the five demo people of 春和社区: one row each.
    assert len(rows) == 9 and len({r.user_id for r in rows}) == 9
    assert all("3栋明天停水" in r.payload for r in rows)
    # Running the jobs again adds nothing (a crash and restart of the job).
    await _run_jobs(kit, env)
    assert len(await _notice_rows(kit)) == 9

    # Delivered: the report goes to the author once.
    async with kit.db.transaction() as session:
        for row in rows:
            (await session.get(OutboxMessage, row.id)).status = "sent"  # type: ignore[union-attr]
    await delivery.check_progress(kit.db, env, "")
    await delivery.check_progress(kit.db, env, "")
    reports = [m for m in await staff.inbox() if "发送完毕" in m.text]
    assert len(reports) == 1 and "已送达 9 人" in reports[0].text
    assert reports[0].choices  # ends with a button

    await staff.send("/notices")
    assert "已完成" in staff.text() and "9/9" in staff.text()


async def test_forged_community_is_refused_and_audited(kit: Kit) -> None:
    staff = await _staff(kit)
    other = await _other(kit)
    await staff.send("/notice")
    await staff.send("申新社区停电通知")
    await staff.click("不配图")
    await staff.click("不需要英文版")
    await staff.press(f"f:notice:community:c{other}")
    assert "只能给自己负责的社区" in staff.text()
    await staff.press("f:notice:community:all")  # the flow has ended: nothing happens
    async with kit.db.transaction() as session:
        refused = (
            await session.execute(select(AuditEntry).where(col(AuditEntry.allowed).is_(False)))
        ).scalars()
        assert any(e.action == "notice_target" for e in refused)
        assert await notices.recent(session, communities=None) == []


async def test_staff_without_any_community_cannot_start(kit: Kit) -> None:
    staff = await _staff(kit, scope=False)
    await staff.send("/notice")
    assert "还没有负责的社区" in staff.text()
    assert staff.buttons()


async def test_residents_cannot_send_or_cancel(kit: Kit) -> None:
    staff = await _staff(kit)
    (resident,) = await _residents(kit, 1)
    await _compose_zh(staff)
    await staff.click("确认发送")
    async with kit.db.transaction() as session:
        (notice,) = await notices.recent(session, communities=None)
    await resident.send("/notice")
    assert "只有相应身份" in resident.text()
    await resident.press(f"a:notice_cancel_yes:{notice.id}")
    async with kit.db.transaction() as session:
        assert (await notices.get(session, notice.id)).status is notices.NoticeStatus.ACTIVE  # type: ignore[union-attr]


async def test_staff_of_another_community_cannot_cancel(kit: Kit) -> None:
    staff = await _staff(kit)
    await _compose_zh(staff)
    await staff.click("确认发送")
    async with kit.db.transaction() as session:
        (notice,) = await notices.recent(session, communities=None)
    intruder = kit.person("9002", "Other staff")
    await kit.onboard(intruder)
    me = await intruder.data()
    other = await _other(kit)
    async with kit.db.transaction() as session:
        await users.grant_role(session, me.id, Role.STAFF)
        await notices.grant_scope(session, me.id, other)
    await intruder.press(f"a:notice_cancel_yes:{notice.id}")
    assert "不属于您负责的社区" in intruder.text()
    async with kit.db.transaction() as session:
        assert (await notices.get(session, notice.id)).status is notices.NoticeStatus.ACTIVE  # type: ignore[union-attr]


async def test_mute_quiet_hours_and_urgent(kit: Kit) -> None:
    staff = await _staff(kit)
    muter, sleeper, night_owl = await _residents(kit, 3)
    # One mutes water and power cuts.
    await muter.send("/settings")
    await muter.click("关闭“停水停电”")
    assert "停水停电：已关闭" in muter.text()
    await muter.click("完成")
    # One turns quiet hours off.
    await night_owl.send("/settings")
    await night_owl.click("关闭免打扰")
    await night_owl.click("完成")

    await _compose_zh(staff)
    await staff.click("确认发送")
    await _run_jobs(kit, Env(clock=lambda: NIGHT))
    rows = {r.user_id: r for r in await _notice_rows(kit)}
    muter_id, sleeper_id, owl_id = [(await p.data()).id for p in (muter, sleeper, night_owl)]
    assert muter_id not in rows  # muted: left out
    # Quiet hours (default 22:00-07:00) hold the message until 07:00, not drop it.
    held = rows[sleeper_id]
    assert held.kind == "notice-quiet"
    assert held.not_before.astimezone(notices.LOCAL).strftime("%H:%M") == "07:00"
    assert rows[owl_id].kind == "notice" and rows[owl_id].not_before <= NIGHT

    # An urgent notice reaches everyone at once, muted or asleep.
    await _compose_zh(staff, "燃气泄漏，请立即撤离！", urgent=True)
    await staff.click("确认发送")
    await _run_jobs(kit, Env(clock=lambda: NIGHT))
    urgent = [r for r in await _notice_rows(kit) if "燃气泄漏" in r.payload]
    assert {muter_id, sleeper_id, owl_id} <= {r.user_id for r in urgent}
    assert all(r.kind == "notice" and r.not_before <= NIGHT for r in urgent)
    assert "紧急通知" in urgent[0].payload


async def test_quiet_hours_typed_and_shown_in_mydata(kit: Kit) -> None:
    (alice,) = await _residents(kit, 1)
    await alice.send("/settings")
    await alice.click("修改免打扰时段")
    await alice.send("晚上好")
    assert "没看懂" in alice.text()
    await alice.send("21点到8点")
    assert "21:00–08:00" in alice.text()
    await alice.click("完成")
    await alice.send("/mydata")
    assert "21:00–08:00" in alice.text()
    await alice.send("/forget")
    await alice.click("确定删除")
    async with kit.db.transaction() as session:
        assert await notices.prefs(session, (await alice.data()).id) == notices.Prefs()


async def test_english_staff_schedules_weekly_and_cancels(kit: Kit) -> None:
    staff = await _staff(kit, lang="en")
    (emma,) = await _residents(kit, 1, lang="en")
    await staff.send("/notice")
    assert "Please type the notice" in staff.text()
    await staff.send("周六上午社区义诊")
    await staff.click("No photo")
    await staff.send("Free health check on Saturday morning")
    await staff.click("春和社区")
    await staff.click("Whole community")
    await staff.click("Everyone")
    await staff.click("Services")
    await staff.click("Normal")
    await staff.click("Repeat every week")
    await staff.send("blah blah")
    assert "couldn't read that time" in staff.text()
    await staff.send("next Monday 9am")
    preview = staff.text()
    assert "Every week" in preview and "Recipients: 7" in preview
    await staff.click("Send it")
    assert "is planned" in staff.text()

    async with kit.db.transaction() as session:
        (notice,) = await notices.recent(session, communities=None)
    assert notice.draft.weekly and notice.draft.text_en

    await staff.send("/notices")
    assert "Planned" in staff.text()
    await staff.click("Stop sending")
    await staff.click("Yes, stop it")
    assert "has been stopped" in staff.text()
    async with kit.db.transaction() as session:
        assert (await notices.get(session, notice.id)).status is notices.NoticeStatus.CANCELLED  # type: ignore[union-attr]
    # Nothing is planned for a stopped notice.
    assert await delivery.notice_jobs_for_tests(kit.db, Env(clock=lambda: AFTERNOON)) == []
    assert emma  # the recipient never got anything
    assert not [m for m in await emma.inbox()]


async def test_noticeboard_shows_sent_notices_in_the_readers_language(kit: Kit) -> None:
    staff = await _staff(kit)
    (emma,) = await _residents(kit, 1, lang="en")
    await emma.send("/noticeboard")
    assert "no recent notices" in emma.text() and emma.buttons()
    await staff.send("/notice")
    await staff.send("周六上午社区义诊")
    await staff.click("不配图")
    await staff.send("Free health check on Saturday")
    await staff.click("春和社区")
    await staff.click("整个社区")
    await staff.click("所有人")
    await staff.click("便民服务")
    await staff.click("普通")
    await staff.click("立即发送")
    await staff.click("确认发送")
    await _run_jobs(kit, Env(clock=lambda: AFTERNOON))
    await emma.send("/noticeboard")
    assert "Free health check on Saturday" in emma.text()
    assert emma.buttons()


async def test_cancel_while_sending_cancels_pending_rows_and_reports(kit: Kit) -> None:
    staff = await _staff(kit)
    await _residents(kit, 3)
    await _compose_zh(staff)
    await staff.click("确认发送")
    await _run_jobs(kit, Env(clock=lambda: AFTERNOON))
    rows = await _notice_rows(kit)
    async with kit.db.transaction() as session:
        (await session.get(OutboxMessage, rows[0].id)).status = "sent"  # type: ignore[union-attr]
    await staff.send("/notices")
    await staff.click("取消发送")
    await staff.click("确定取消")
    statuses = sorted(r.status for r in await _notice_rows(kit))
    assert statuses == ["cancelled"] * 8 + ["sent"]
    report = [m for m in await staff.inbox() if "已取消" in m.text]
    assert len(report) == 1 and "已送达 1 人" in report[0].text and "未发送 8 人" in report[0].text


def test_feature_is_listed() -> None:
    assert any(f.name == "notices" for f in FEATURES)
