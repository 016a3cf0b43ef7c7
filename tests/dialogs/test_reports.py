"""Problem reports through the handler (no transport): the rider's five actions, kind
answers to bad input, duplicates and following, routing, staff-only actions (forged
data included), hidden identity, the loop, /mydata and /forget, and the jobs under a
controllable clock surviving restarts."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlmodel import SQLModel, col

from dialogs.feature import Config, Env
from dialogs.features import FEATURES
from dialogs.messages import ChatKind, Kind
from handlers.entry import Handler
from handlers.registry import Registry
from scheduler.jobs import Jobs
from storage import communities, reports, users
from storage.models import AuditEntry
from storage.reports import Report, ReportStatus
from tests.conftest import STAFF_ID
from tests.kit import Kit, Person

CHUNHE = (30.4806, 114.4103)  # 春和社区's centre (demo data)
JPEG = b"\xff\xd8\xff\xe1\x00\x12Exif\x00\x00GPS-SECRET\xff\xdb\x00\x03\x01\xff\xda\x00\x02image-data\xff\xd9"


@pytest.fixture(autouse=True)
def _no_failed_jobs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    yield
    failed = [r for r in caplog.records if r.name == "linli.scheduler" and r.levelno >= logging.ERROR]
    assert not failed, [r.getMessage() for r in failed]


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


async def _fetch(ref: str) -> bytes:
    return JPEG


def _env(clock: Clock, media: Path, **config: object) -> Env:
    env = Env(config=Config(media_dir=str(media), **config), clock=clock)  # type: ignore[arg-type]
    env.photos.register("telegram", _fetch)
    return env


async def _kit(kit: Kit, clock: Clock, media: Path, **config: object) -> Kit:
    kit.handler = Handler(
        kit.db, Registry.build(FEATURES), env=_env(clock, media, **config), staff_ids=[STAFF_ID]
    )
    return kit


def _jobs(kit: Kit, clock: Clock, media: Path) -> Jobs:
    jobs = Jobs(kit.db, now=clock)
    Registry.build(FEATURES).install_jobs(jobs, kit.handler.env)
    return jobs


def _group(kit: Kit, sender: Person, chat: str) -> Person:
    member = kit.person(sender.external_id, sender.name)
    member.chat_id, member.chat_kind = chat, ChatKind.GROUP
    return member


async def _photo(person: Person, ref: str = "AgAC-photo-1", caption: str = "") -> None:
    await person.deliver(person.incoming(Kind.PHOTO, photo_ref=ref, text=caption))


async def _staff(kit: Kit) -> Person:
    staff = kit.person(STAFF_ID, "周网格员")
    await kit.onboard(staff, phone="13700000000")
    return staff


async def _bind(kit: Kit, staff: Person, chat: str, args: str) -> None:
    in_group = _group(kit, staff, chat)
    await in_group.send(f"/bind_report_group {args}")
    assert "✅" in in_group.text(), in_group.text()


async def _report(person: Person, *, lat: float, lon: float, words: str = "井盖坏了") -> int:
    await person.send(words)
    await person.click("是，")
    await _photo(person)
    await person.share_location(lat, lon)
    await person.click("确认提交")
    number = next(w for w in person.text().split() if "WH-" in w)
    return int(number.split("WH-")[1][:6])


async def _get(kit: Kit, report_id: int) -> reports.ReportData:
    async with kit.db.transaction() as session:
        report = await reports.get(session, report_id)
    assert report is not None
    return report


async def test_rider_files_a_hazard_in_five_actions(kit: Kit, tmp_path: Path) -> None:
    clock = Clock()
    await _kit(kit, clock, tmp_path)
    staff = await _staff(kit)
    await _bind(kit, staff, "chunhe-staff", "春和社区")
    rider = kit.person("501", "郭小哥")
    await kit.onboard(rider)
    actions = 0
    await rider.send("/report")
    actions += 1
    assert "是什么问题" in rider.text()
    await rider.click("井盖")
    actions += 1
    await _photo(rider, caption="东门井盖丢了")
    actions += 1
    assert "发送位置" in rider.text()
    await rider.share_location(*CHUNHE)
    actions += 1
    assert "请核对" in rider.text() and "东门井盖丢了" in rider.text() and "照片：1 张" in rider.text()
    await rider.click("确认提交")
    actions += 1
    assert actions <= 5 and "WH-" in rider.text(), rider.text()
    async with kit.db.transaction() as session:
        (row,) = (await session.execute(select(Report))).scalars()
        assert row.category == "manhole" and row.resolve_due - row.created_at == timedelta(hours=24)
        assert row.accept_due - row.created_at == timedelta(hours=2)
    card = [m for c, m in await kit.outbox() if c == "chunhe-staff"]
    assert card and "井盖" in card[0].text and "a:report_take:" in str(card[0].choices)


async def test_kind_answers_to_bad_input(kit: Kit, tmp_path: Path) -> None:
    await _kit(kit, Clock(), tmp_path)
    alice = kit.person("502", "王阿姨")
    await kit.onboard(alice)
    await alice.send("路灯不亮了")
    assert "路灯" in alice.text() and "是" in " ".join(alice.buttons())
    await alice.send_unsupported()  # a sticker
    assert "看不懂" in alice.text()
    await alice.click("是，")
    for n in range(3):
        await _photo(alice, f"p{n}")
    await _photo(alice, "p3")
    assert "最多只能发 3 张" in alice.text()
    await alice.share_location(91.0, 114.0)
    assert "位置不对" in alice.text()
    assert alice.replies[-1].choices  # still something to tap
    await alice.share_location(*CHUNHE)
    assert "照片：3 张" in alice.text()


async def test_duplicate_offered_and_followed(kit: Kit, tmp_path: Path) -> None:
    await _kit(kit, Clock(), tmp_path)
    staff = await _staff(kit)
    await _bind(kit, staff, "chunhe-staff", "春和社区")
    first = kit.person("503", "张三")
    second = kit.person("504", "李四", lang="en")
    await kit.onboard(first)
    await kit.onboard(second, lang="en")
    report_id = await _report(first, lat=CHUNHE[0], lon=CHUNHE[1])
    await second.send("the manhole cover is missing")
    await second.click("Yes,")
    await _photo(second, "AgAC-other")
    await second.share_location(CHUNHE[0] + 0.0004, CHUNHE[1])  # ~45 m away
    assert "Similar problems" in second.text()
    await second.click(f"WH-{report_id:06d}")
    assert "You now follow" in second.text()
    async with kit.db.transaction() as session:
        assert len((await session.execute(select(Report))).all()) == 1
        assert (await users.find_by_external(session, channel="telegram", external_id="504")) is not None
        assert len(await reports.followers(session, report_id)) == 1
    # Staff take it: the follower hears it in English, the reporter in Chinese.
    in_group = _group(kit, staff, "chunhe-staff")
    await in_group.press(f"a:report_take:{report_id}")
    assert any("was accepted" in m.text for m in await second.inbox())
    assert any("已受理" in m.text for m in await first.inbox())
    # A forged "same problem" pointing anywhere else is refused kindly.
    await second.send("manhole")
    await second.click("Yes,")
    await second.click("skip")
    await second.share_location(CHUNHE[0] + 0.0004, CHUNHE[1])
    await second.press("f:report:summary:d999")
    assert "no longer in the list" in second.text()


async def test_routing_by_polygon_centre_and_fallback(kit: Kit, tmp_path: Path) -> None:
    await _kit(kit, Clock(), tmp_path)
    staff = await _staff(kit)
    await _bind(kit, staff, "chunhe-staff", "春和社区")
    await _bind(kit, staff, "nanhu-staff", "南湖社区")
    await _bind(kit, staff, "city-staff", "全市")
    async with kit.db.transaction() as session:
        nanhu = (await communities.search_communities(session, "南湖社区", limit=1))[0]
        # 南湖社区's area reaches far to the east, over a point nearer to 春和's centre.
        await reports.set_area(
            session, nanhu.id, [(30.47, 114.39), (30.47, 114.42), (30.49, 114.42), (30.49, 114.39)]
        )
    alice = kit.person("505", "王阿姨")
    await kit.onboard(alice)
    in_polygon = await _report(alice, lat=30.4810, lon=114.4100)
    near_centre = await _report(alice, lat=30.5765, lon=114.3625, words="路灯坏了")  # 保利心语, no group
    nowhere = await _report(alice, lat=31.2, lon=121.4, words="垃圾没人收")  # Shanghai
    outbox = await kit.outbox()

    def chat_of(report_id: int) -> set[str]:
        return {c for c, m in outbox if f"WH-{report_id:06d}" in m.text}

    assert chat_of(in_polygon) == {"nanhu-staff"}
    assert (await _get(kit, near_centre)).community_id is not None
    assert chat_of(near_centre) == {"city-staff"}  # its community has no group: fallback
    assert (await _get(kit, nowhere)).community_id is None and chat_of(nowhere) == {"city-staff"}


async def test_staff_only_actions_refused_and_hidden_identity(kit: Kit, tmp_path: Path) -> None:
    await _kit(kit, Clock(), tmp_path)
    staff = await _staff(kit)
    await _bind(kit, staff, "chunhe-staff", "春和社区")
    alice = kit.person("506", "王秀英")
    await kit.onboard(alice, phone="13811112222")
    await alice.send("井盖丢了")
    await alice.click("是，")
    await _photo(alice)
    await alice.share_location(*CHUNHE)
    await alice.click("匿名报告")
    assert "只有工作人员能看到您是谁" in alice.text()
    await alice.click("确认提交")
    async with kit.db.transaction() as session:
        (row,) = (await session.execute(select(Report))).scalars()
    report_id = row.id
    assert report_id is not None and row.reporter_hidden
    group_texts = [m.text for c, m in await kit.outbox() if c == "chunhe-staff"]
    assert group_texts and all("王秀英" not in t and "13811112222" not in t for t in group_texts)
    assert any("匿名" in t for t in group_texts)

    # A resident in the group presses (or forges) staff buttons: refused, audited, nothing changes.
    bob = kit.person("507", "Bob")
    await kit.onboard(bob)
    bob_in_group = _group(kit, bob, "chunhe-staff")
    for data in (
        f"a:report_take:{report_id}",
        f"a:report_who:{report_id}",
        f"a:report_assign_to:{report_id}:{(await bob.data()).id}",
        f"a:report_resolve:{report_id}",
        f"a:report_reject:{report_id}",
    ):
        await bob_in_group.press(data)
        assert "只有相应身份" in bob_in_group.text() and bob_in_group.replies[0].toast
        assert "王秀英" not in bob_in_group.text()
    await bob.press(f"a:report_view:{report_id}")
    await bob.press(f"a:report_confirm:{report_id}")
    assert (await _get(kit, report_id)).status is ReportStatus.SUBMITTED
    async with kit.db.transaction() as session:
        refused = (
            (await session.execute(select(AuditEntry).where(col(AuditEntry.allowed).is_(False))))
            .scalars()
            .all()
        )
    assert len(refused) >= 7

    # Staff see who reported, as a note for them alone.
    in_group = _group(kit, staff, "chunhe-staff")
    await in_group.press(f"a:report_who:{report_id}")
    assert "王秀英" in in_group.text() and "+8613811112222" in in_group.text() and in_group.replies[0].toast
    # Assigning to someone who is not staff is refused even for staff (forged data).
    await staff.press(f"a:report_assign_to:{report_id}:{(await bob.data()).id}")
    assert "只能指派给社区工作人员" in staff.text()


async def test_the_loop_reopen_rating_points_and_forget(kit: Kit, tmp_path: Path) -> None:
    clock = Clock()
    await _kit(kit, clock, tmp_path)
    staff = await _staff(kit)
    await _bind(kit, staff, "chunhe-staff", "春和社区")
    rider = kit.person("rider", "郭小哥")
    rider.channel = "terminal"  # the demo gig worker
    rider_user = await rider.data()
    assert rider_user.has(users.Role.GIG_WORKER)
    report_id = await _report(rider, lat=CHUNHE[0], lon=CHUNHE[1])
    await staff.press(f"a:report_take:{report_id}")
    assert "已受理" in staff.text()
    await staff.press(f"a:report_start:{report_id}")
    await staff.press(f"a:report_resolve:{report_id}")
    assert "修好后的照片" in staff.text()
    await staff.send("hi")  # a note of two letters is a note
    report = await _get(kit, report_id)
    assert report.status is ReportStatus.RESOLVED
    news = [m for m in await rider.inbox() if "已处理：hi" in m.text]
    assert news and "a:report_confirm:" in str(news[-1].choices)
    await rider.press(f"a:report_reopen:{report_id}")
    assert (await _get(kit, report_id)).status is ReportStatus.ACCEPTED
    await staff.press(f"a:report_resolve:{report_id}")
    await _photo(staff, "AgAC-fix")
    await rider.press(f"a:report_confirm:{report_id}")
    assert "打个分" in rider.text()
    await rider.press(f"a:report_rate:{report_id}:5")
    assert "谢谢您的评价" in rider.text()
    report = await _get(kit, report_id)
    assert (report.status, report.rating, report.points) == (ReportStatus.CLOSED, 5, 20)
    await staff.send("/stats")
    assert "按时 100%" in staff.text() and "郭小哥：20 分" in staff.text()
    await rider.send("/mydata")
    assert f"WH-{report_id:06d}" in rider.text() and "积分 20" in rider.text()

    # /forget: the problem stays, the person does not.
    await rider.send("/forget")
    await rider.click("确定删除")
    report = await _get(kit, report_id)
    assert report.reporter_user_id is None and report.status is ReportStatus.CLOSED
    async with kit.db.transaction() as session:
        for table in SQLModel.metadata.sorted_tables:
            if not table.name.startswith("report"):
                continue
            for row in (await session.execute(select(table))).all():
                flat = " ".join(str(v) for v in row)
                assert "郭小哥" not in flat and "13800000003" not in flat, (table.name, flat)
        payloads = (
            await session.execute(text("select payload from outbox where dedupe_key like 'report:%'"))
        ).all()
        assert payloads and all("郭小哥" not in p[0] for p in payloads)


async def test_jobs_remind_escalate_close_and_store_photos_across_restarts(kit: Kit, tmp_path: Path) -> None:
    clock = Clock()
    await _kit(kit, clock, tmp_path, report_escalation=("terminal:staff",))
    staff = await _staff(kit)
    await _bind(kit, staff, "chunhe-staff", "春和社区")
    alice = kit.person("508", "王阿姨")
    await kit.onboard(alice)
    start = clock.now
    report_id = await _report(alice, lat=CHUNHE[0], lon=CHUNHE[1])

    # The photo is fetched, stored without its EXIF, and shown to the group from the file.
    jobs = _jobs(kit, clock, tmp_path)
    await jobs.rebuild()
    await jobs.run_due()
    async with kit.db.transaction() as session:
        (photo,) = await reports.photos(session, report_id)
    assert photo.path is not None
    stored = (tmp_path / photo.path).read_bytes()
    assert b"GPS-SECRET" not in stored and b"image-data" in stored
    assert any(m.photo_ref == f"file:{(tmp_path / photo.path).resolve()}" for c, m in await kit.outbox())

    def sent(chat: str, needle: str) -> int:
        return sum(1 for c, m in outbox if c == chat and needle in m.text)

    # 80 % of the 2-hour acceptance deadline: the group is reminded, once, across restarts.
    clock.now = start + timedelta(minutes=95)
    await jobs.run_due()
    outbox = await kit.outbox()
    assert sent("chunhe-staff", "还没人受理") == 0
    clock.now = start + timedelta(minutes=97)
    for _ in range(2):
        jobs = _jobs(kit, clock, tmp_path)
        await jobs.rebuild()
        await jobs.run_due()
    outbox = await kit.outbox()
    assert sent("chunhe-staff", "还没人受理") == 1
    # The deadline passes: the configured next level hears it, once.
    clock.now = start + timedelta(hours=2, seconds=1)
    for _ in range(2):
        jobs = _jobs(kit, clock, tmp_path)
        await jobs.rebuild()
        await jobs.run_due()
    outbox = await kit.outbox()
    assert sent("staff", "超过受理时限") == 1
    assert (await _get(kit, report_id)).escalated_accept_at is not None
    await staff.send("/overdue")
    assert f"WH-{report_id:06d}" in staff.text()

    # Taken late; the assignee is reminded at 80 % of 24 h, then it escalates again.
    await staff.press(f"a:report_take:{report_id}")
    clock.now = start + timedelta(hours=19, minutes=13)
    jobs = _jobs(kit, clock, tmp_path)
    await jobs.rebuild()
    await jobs.run_due()
    outbox = await kit.outbox()
    assert sent(STAFF_ID, "应在") >= 1 and sent(STAFF_ID, "提醒") == 1
    clock.now = start + timedelta(hours=24, seconds=1)
    await jobs.run_due()
    await (jobs := _jobs(kit, clock, tmp_path)).rebuild()
    await jobs.run_due()
    outbox = await kit.outbox()
    assert sent("staff", "超过处理时限") == 1

    # Fixed, and nobody answers for 72 hours: closed, the reporter told.
    await staff.press(f"a:report_resolve:{report_id}")
    await staff.send("已补装新井盖")
    resolved_at = (await _get(kit, report_id)).resolved_at
    assert resolved_at is not None
    clock.now = resolved_at + timedelta(hours=71)
    await (jobs := _jobs(kit, clock, tmp_path)).rebuild()
    await jobs.run_due()
    assert (await _get(kit, report_id)).status is ReportStatus.RESOLVED
    clock.now = resolved_at + timedelta(hours=72, seconds=1)
    await (jobs := _jobs(kit, clock, tmp_path)).rebuild()
    await jobs.run_due()
    assert (await _get(kit, report_id)).status is ReportStatus.CLOSED
    assert any("自动办结" in m.text for m in await alice.inbox())
