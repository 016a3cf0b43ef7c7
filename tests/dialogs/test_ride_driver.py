"""The driver side of rides at dialog level (no transport), on SQLite and PostgreSQL:
driver groups, the claim, status buttons, release, no-shows, ratings, staff assignment,
and forged button presses refused and audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest_asyncio
from sqlalchemy import select
from sqlmodel import col

from dialogs.messages import ChatKind, Kind, Outgoing
from dialogs.rides import news
from storage import applications, rides
from storage.data import Role
from storage.engine import Database
from storage.models import AuditEntry, utcnow
from storage.rides import NewRide, Ride, RideData, RideStatus
from tests.conftest import STAFF_ID
from tests.kit import Kit, Person

GROUP = "-100777"
RIDER_PHONE = "+8613812345678"
RIDER_PHONE_SHOWN = "138 1234 5678"  # how people read it


@pytest_asyncio.fixture
async def rkit(db: Database) -> Kit:
    return await Kit.create(db, staff_ids=[STAFF_ID])


def in_group(person: Person) -> Person:
    """The same person, writing in the driver group."""
    return Person(person.kit, person.external_id, person.name, chat_id=GROUP, chat_kind=ChatKind.GROUP)


async def approve_driver(kit: Kit, person: Person, plate: str, car: str) -> None:
    me = await person.data()
    async with kit.db.transaction() as session:
        app = await applications.submit(
            session, user_id=me.id, role=Role.DRIVER, details={"plate": plate, "car_model": car}
        )
        assert app is not None
        await applications.decide(session, application_id=app.id, approve=True, staff_user_id=me.id)
    assert (await person.data()).has(Role.DRIVER)


async def audits(kit: Kit, *, allowed: bool = False) -> list[AuditEntry]:
    async with kit.db.transaction() as session:
        stmt = select(AuditEntry).where(col(AuditEntry.allowed).is_(allowed)).order_by(col(AuditEntry.id))
        return list((await session.execute(stmt)).scalars())


async def group_posts(kit: Kit) -> list[Outgoing]:
    return [m for chat, m in await kit.outbox() if chat == GROUP]


def toast(person: Person) -> str:
    return " ".join(m.text for m in person.replies if m.toast)


@dataclass
class World:
    kit: Kit
    staff: Person
    rider: Person
    family: Person
    d1: Person
    d2: Person

    async def ride(self, *, booker: Person | None = None, minutes: int = 60) -> RideData:
        """A ride for 王奶奶, posted in the driver group as the booking flow would."""
        rider = await self.rider.data()
        booked_by = await (booker or self.rider).data()
        async with self.kit.db.transaction() as session:
            group = await rides.group_for(session, rider.community_id)
            assert group is not None
            ride = await rides.create(
                session,
                NewRide(
                    booker_user_id=booked_by.id,
                    rider_user_id=rider.id,
                    rider_name="王奶奶",
                    rider_phone=RIDER_PHONE,
                    relation="self" if booker is None else "family",
                    community_id=rider.community_id,
                    pickup_text="春和社区3栋",
                    dest_text="武汉市中心医院",
                    pickup_at=utcnow() + timedelta(minutes=minutes),
                ),
                group_id=group.id,
            )
            await news.announce(session, ride)
        return ride

    async def ride_without_group(self) -> RideData:
        """A ride no driver group serves: only staff hear of it."""
        rider = await self.rider.data()
        async with self.kit.db.transaction() as session:
            ride = await rides.create(
                session,
                NewRide(
                    booker_user_id=rider.id,
                    rider_user_id=rider.id,
                    rider_name="王奶奶",
                    rider_phone=RIDER_PHONE,
                    community_id=rider.community_id,
                    pickup_text="春和社区3栋",
                    dest_text="武汉市中心医院",
                    pickup_at=utcnow() + timedelta(minutes=60),
                ),
                group_id=None,
            )
            await news.announce(session, ride)
        return ride

    async def claimed(self, ride: RideData, driver: Person | None = None) -> None:
        await in_group(driver or self.d1).press(
            f"a:claim:{ride.id}", message_ref=await self.kit.post_ref(ride.id)
        )

    async def waited(self, ride_id: int, minutes: int = 6) -> None:
        """The driver has been at the pickup point for ``minutes``."""
        async with self.kit.db.transaction() as session:
            row = await session.get(Ride, ride_id)
            assert row is not None and row.arrived_at is not None
            row.arrived_at -= timedelta(minutes=minutes)

    async def status(self, ride_id: int) -> RideStatus:
        async with self.kit.db.transaction() as session:
            found = await rides.get(session, ride_id)
            assert found is not None
            return found.status


@pytest_asyncio.fixture
async def world(rkit: Kit) -> World:
    kit = rkit
    staff = kit.person(STAFF_ID, "周网格员")
    rider = kit.person("101", "王奶奶")
    family = kit.person("102", "王小明")
    d1 = kit.person("201", "赵师傅")
    d2 = kit.person("202", "钱师傅")
    for person, phone in (
        (staff, None),
        (rider, "13812345678"),
        (family, "13812340000"),
        (d1, "13900000001"),
        (d2, "13900000002"),
    ):
        await kit.onboard(person, phone=phone)
    await approve_driver(kit, d1, "鄂A12345", "白色大众朗逸")
    await approve_driver(kit, d2, "鄂A54321", "黑色丰田卡罗拉")
    group_staff = in_group(staff)
    await group_staff.send("/bind_driver_group")
    assert "所有社区" in group_staff.text()
    return World(kit, staff, rider, family, d1, d2)


# -- driver groups --------------------------------------------------------------------


async def test_binding_a_group_is_for_staff_in_the_group(rkit: Kit) -> None:
    staff = rkit.person(STAFF_ID, "周网格员")
    await rkit.onboard(staff)
    resident = rkit.person("101", "王奶奶")
    await rkit.onboard(resident)

    # Anyone can add the bot to a group: a resident cannot make it a driver group.
    pest = in_group(resident)
    await pest.send("/bind_driver_group")
    assert "只有相应身份" in pest.text()
    refused = await audits(rkit)
    assert [(a.action, a.actor_user_id) for a in refused] == [
        ("/bind_driver_group", (await resident.data()).id)
    ]
    async with rkit.db.transaction() as session:
        assert await rides.group_for(session, None) is None

    # In a private chat the command explains where it belongs.
    await staff.send("/bind_driver_group")
    assert "群里" in staff.text()

    group_staff = in_group(staff)
    await group_staff.send("/bind_driver_group 火星社区")
    assert "没有找到这些社区：火星社区" in group_staff.text()
    await group_staff.send("/bind_driver_group 春和，qinghe")
    assert "春和社区" in group_staff.text() and "青和居社区" in group_staff.text()
    async with rkit.db.transaction() as session:
        group = await rides.group_for(session, (await resident.data()).community_id)
        assert group is not None and group.chat_id == GROUP and len(group.community_ids) == 2
    await group_staff.send("/bind_driver_group")
    assert "所有社区" in group_staff.text()
    assert [a.action for a in await audits(rkit, allowed=True)][-2:] == [
        "bind_driver_group",
        "bind_driver_group",
    ]

    await group_staff.send("/unbind_driver_group")
    assert "不再接收" in group_staff.text()
    await group_staff.send("/unbind_driver_group")  # once is enough: said so, nothing audited
    assert "不再接收" not in group_staff.text() and "不是司机群" in group_staff.text()
    assert [a.action for a in await audits(rkit, allowed=True)].count("unbind_driver_group") == 1
    async with rkit.db.transaction() as session:
        assert await rides.group_for(session, None) is None


# -- claim ----------------------------------------------------------------------------


async def test_first_claim_wins_and_details_go_both_ways_only_then(world: World) -> None:
    kit = world.kit
    ride = await world.ride()
    (post,) = await group_posts(kit)
    # The group sees a masked phone and one claim button.
    assert "138****5678" in post.text and "13812345678" not in post.text
    assert [c.data for c in post.all_choices()] == [f"a:claim:{ride.id}"]
    # Nobody knows anybody yet.
    assert await world.rider.inbox() == []
    assert await world.d1.inbox() == []

    g1, g2 = in_group(world.d1), in_group(world.d2)
    ref = await kit.post_ref(ride.id)
    await g1.press(f"a:claim:{ride.id}", message_ref=ref)
    assert "接单成功" in toast(g1)
    (edit,) = [m for m in g1.replies if not m.toast]
    assert edit.edit_ref == ref and edit.choices == []
    assert "已由 赵师傅 接单" in edit.text and "138****5678" in edit.text

    await g2.press(f"a:claim:{ride.id}", message_ref=ref)
    assert toast(g2) == "已被其他司机接走，谢谢您！"
    # The post is (again) shown as taken, by the winner, without a button.
    (edit2,) = [m for m in g2.replies if not m.toast]
    assert "已由 赵师傅 接单" in edit2.text and edit2.choices == []

    # The winner privately: full phone, Amap links, status buttons.
    (details,) = await world.d1.inbox()
    assert RIDER_PHONE_SHOWN in details.text and "uri.amap.com" in details.text
    assert [c.data for c in details.all_choices()] == [
        f"a:ride_on_way:{ride.id}",
        f"a:ride_arrived:{ride.id}",
        f"a:ride_picked_up:{ride.id}",
        f"a:ride_release:{ride.id}",
    ]
    assert await world.d2.inbox() == []
    # The rider: the driver's name, car, plate and phone.
    (card,) = await world.rider.inbox()
    assert "已有司机接单" in card.text
    for part in ("赵师傅", "白色大众朗逸", "鄂A12345", "139 0000 0001"):
        assert part in card.text
    assert await world.status(ride.id) is RideStatus.CLAIMED

    # The winner pressing again, or the booker claiming their own ride.
    await g1.press(f"a:claim:{ride.id}", message_ref=ref)
    assert "已被其他司机接走" in toast(g1)
    assert len(await world.d1.inbox()) == 1


async def test_own_ride_closed_and_missing_rides(world: World) -> None:
    kit = world.kit
    ride = await world.ride(booker=world.d1)  # 赵师傅 booked it for his neighbour
    g1 = in_group(world.d1)
    ref = await kit.post_ref(ride.id)
    await g1.press(f"a:claim:{ride.id}", message_ref=ref)
    assert "不能自己接单" in toast(g1)
    async with kit.db.transaction() as session:
        await rides.cancel(session, ride_id=ride.id, by_user_id=(await world.rider.data()).id)
    g2 = in_group(world.d2)
    await g2.press(f"a:claim:{ride.id}", message_ref=ref)
    assert "已经取消或结束" in toast(g2)
    (edit,) = [m for m in g2.replies if not m.toast]
    assert edit.edit_ref == ref and "已取消" in edit.text and not edit.choices
    await g2.press("a:claim:999999")
    assert "找不到" in toast(g2)
    await g2.press("a:claim:１２")  # forged: full-width digits
    assert "过期" in toast(g2)


async def test_resident_claiming_is_refused_and_audited(world: World) -> None:
    ride = await world.ride()
    pest = in_group(world.family)
    await pest.press(f"a:claim:{ride.id}")
    assert "只有相应身份" in pest.text()
    (entry,) = await audits(world.kit)
    assert entry.action == "a:claim" and entry.target == str(ride.id)
    assert entry.actor_user_id == (await world.family.data()).id
    assert await world.status(ride.id) is RideStatus.POSTED


# -- status ---------------------------------------------------------------------------


async def test_status_sequence_tells_rider_and_booker(world: World) -> None:
    kit = world.kit
    ride = await world.ride(booker=world.family)  # 王小明 books for his grandmother
    await world.claimed(ride)
    assert len(await world.family.inbox()) == 1  # the booker gets the driver's card too

    d1 = world.d1
    await d1.press(f"a:ride_on_way:{ride.id}", message_ref="31")
    (shown,) = d1.replies
    assert shown.edit_ref == "31" and "司机在路上" in shown.text
    assert [c.data for c in shown.all_choices()] == [
        f"a:ride_arrived:{ride.id}",
        f"a:ride_picked_up:{ride.id}",
        f"a:ride_release:{ride.id}",
    ]  # no "rider not there" before "arrived at pickup"
    for person in (world.rider, world.family):
        news = (await person.inbox())[-1]
        assert "司机已出发" in news.text and "鄂A12345" in news.text

    await d1.press(f"a:ride_picked_up:{ride.id}", message_ref="31")
    assert [c.data for c in d1.replies[0].all_choices()] == [f"a:ride_completed:{ride.id}"]
    assert "已接到乘客" in (await world.family.inbox())[-1].text
    assert "已接到乘客" not in (await world.rider.inbox())[-1].text  # she is in the car

    # A double press: nothing changes, the message is refreshed.
    await d1.press(f"a:ride_picked_up:{ride.id}", message_ref="31")
    assert "不能这样操作" in toast(d1)

    await d1.press(f"a:ride_completed:{ride.id}", message_ref="31")
    assert "已完成" in d1.replies[0].text and d1.replies[0].choices == []
    for person in (world.rider, world.family):
        done = (await person.inbox())[-1]
        assert "平安送达" in done.text
        assert [c.data for c in done.all_choices()] == [f"a:ride_rate:{ride.id}:{n}" for n in range(1, 6)]
    assert await world.status(ride.id) is RideStatus.COMPLETED
    assert len(await world.rider.inbox()) == 3  # claimed, on the way, completed
    assert not await audits(kit)


async def test_forged_status_presses_are_refused_and_audited(world: World) -> None:
    ride = await world.ride()
    await world.claimed(ride)
    await world.d2.press(f"a:ride_on_way:{ride.id}")
    assert "不是您接的行程" in toast(world.d2)
    await world.d2.press(f"a:ride_completed:{ride.id}")
    await world.d2.press(f"a:ride_release:{ride.id}")
    # A resident has no driver role at all: the router refuses before the action runs.
    await world.rider.press(f"a:ride_no_show:{ride.id}")
    assert "只有相应身份" in world.rider.text()
    refused = [(a.action, a.actor_user_id) for a in await audits(world.kit)]
    d2, rider = (await world.d2.data()).id, (await world.rider.data()).id
    assert refused == [
        ("a:ride_on_the_way", d2),
        ("a:ride_completed", d2),
        ("a:ride_release", d2),
        ("a:ride_no_show", rider),
    ]
    assert await world.status(ride.id) is RideStatus.CLAIMED


async def test_release_goes_back_to_the_group(world: World) -> None:
    kit = world.kit
    ride = await world.ride()
    await world.claimed(ride)
    d1 = world.d1
    await d1.press(f"a:ride_release:{ride.id}", message_ref="40")
    assert "是什么原因" in d1.text()
    await d1.click("其他")
    await d1.send("孩子发烧了，要去医院")
    assert "已退回司机群" in d1.text()
    note = next(m for m in d1.replies if m.edit_ref == "40")
    assert note.choices == []

    _first, again = await group_posts(kit)
    assert "还没有司机接单" in again.text and [c.data for c in again.all_choices()] == [f"a:claim:{ride.id}"]
    assert "正在重新找司机" in (await world.rider.inbox())[-1].text
    async with kit.db.transaction() as session:
        row = await session.get(Ride, ride.id)
        assert row is not None and row.status == "posted" and row.driver_user_id is None

    # Someone else takes it; the rider hears about the new driver.
    await world.claimed(ride, world.d2)
    assert "钱师傅" in (await world.rider.inbox())[-1].text
    assert await world.status(ride.id) is RideStatus.CLAIMED

    # A reason by button, on a second ride.
    other = await world.ride()
    await world.claimed(other)
    await d1.press(f"a:ride_release:{other.id}")
    await d1.click("车出问题了")
    assert "已退回司机群" in d1.text()
    assert await world.status(other.id) is RideStatus.POSTED


async def test_repeated_no_shows_are_flagged_to_staff(world: World) -> None:
    alerts: list[Outgoing] = []
    for n in (1, 2):
        ride = await world.ride(booker=world.family)
        await world.claimed(ride)
        await world.d1.press(f"a:ride_on_way:{ride.id}")
        await world.d1.press(f"a:ride_arrived:{ride.id}")
        await world.waited(ride.id)
        await world.d1.press(f"a:ride_no_show:{ride.id}")
        await world.d1.click("确认，乘客没出现")
        assert "乘客未出现" in world.d1.text()
        told = (await world.family.inbox())[-1].text
        assert "没有接到乘客" in told and "027-8800 0001" in told  # how to reach staff
        alerts = [m for m in await world.staff.inbox() if "未出现" in m.text]
        assert len(alerts) == n - 1
    (alert,) = alerts
    assert "90 天内已有 2 次" in alert.text and RIDER_PHONE_SHOWN in alert.text


# -- ratings --------------------------------------------------------------------------


async def test_rating_once_by_rider_or_booker_with_a_comment(world: World) -> None:
    kit = world.kit
    ride = await world.ride()
    await world.claimed(ride)
    for step in ("on_way", "picked_up", "completed"):
        await world.d1.press(f"a:ride_{step}:{ride.id}")

    stranger = world.d2
    await stranger.press(f"a:ride_rate:{ride.id}:1")
    assert "只有乘车人或预约人" in stranger.text()
    (entry,) = await audits(kit)
    assert entry.action == "a:ride_rate" and entry.actor_user_id == (await stranger.data()).id

    rider = world.rider
    await rider.press(f"a:ride_rate:{ride.id}:9")
    assert "过期" in rider.text()
    await rider.press(f"a:ride_rate:{ride.id}:5", message_ref="66")
    assert "谢谢您的评价（5⭐）" in rider.text() and rider.replies[0].edit_ref == "66"
    await rider.press(f"a:ride_rate:{ride.id}:1")
    assert "已经评价过了" in rider.text()
    await rider.press(f"a:ride_rate:{ride.id}:5")
    assert "已经评价过了" in rider.text()
    await rider.press(f"a:ride_comment:{ride.id}")
    await rider.send("赵师傅很耐心，还扶我上楼")
    assert "已收到" in rider.text()
    async with kit.db.transaction() as session:
        row = await session.get(Ride, ride.id)
        assert row is not None and row.rating == 5 and row.rating_comment == "赵师傅很耐心，还扶我上楼"

    # Staff see per-driver figures.
    await world.staff.send("/drivers")
    line = next(x for x in world.staff.text().splitlines() if x.startswith("赵师傅"))
    assert line == "赵师傅：完成 1 次，乘客未到 0 次，评价 1 次，平均 5.0"
    assert "钱师傅：完成 0 次" in world.staff.text()
    await rider.send("/drivers")
    assert "只有相应身份" in rider.text()


async def test_rating_before_completion_and_skipping_the_comment(world: World) -> None:
    ride = await world.ride()
    await world.claimed(ride)
    await world.rider.press(f"a:ride_rate:{ride.id}:4")
    assert "行程结束后才能评价" in world.rider.text()
    await world.d1.press(f"a:ride_picked_up:{ride.id}")
    await world.d1.press(f"a:ride_completed:{ride.id}")
    await world.rider.press(f"a:ride_rate:{ride.id}:4")
    await world.rider.click("不用了")
    assert world.rider.text() == "谢谢您的评价（4⭐）！"


# -- staff assignment -----------------------------------------------------------------


async def test_staff_assign_a_driver(world: World) -> None:
    kit = world.kit
    ride = await world.ride()
    staff = world.staff
    await staff.press(f"a:ride_assign:{ride.id}", message_ref="70")
    labels = staff.buttons()
    assert "赵师傅" in labels and "钱师傅" in labels
    await staff.click("钱师傅")
    assert "已指派给 钱师傅" in staff.text()
    (details,) = await world.d2.inbox()
    assert "工作人员把这个行程指派给了您" in details.text and RIDER_PHONE_SHOWN in details.text
    assert "钱师傅" in (await world.rider.inbox())[-1].text
    assert "已由工作人员指派给 钱师傅" in (await group_posts(kit))[-1].text
    # Too late for a second assignment, and for a claim.
    await staff.press(f"a:ride_assign_to:{ride.id}:{(await world.d1.data()).id}")
    assert "不能再指派" in staff.text()
    g1 = in_group(world.d1)
    await g1.press(f"a:claim:{ride.id}", message_ref=await kit.post_ref(ride.id))
    assert "已被其他司机接走" in toast(g1)

    # Forgeries: a resident assigning; staff "assigning" to someone who isn't a driver.
    other = await world.ride()
    await world.family.press(f"a:ride_assign_to:{other.id}:{(await world.family.data()).id}")
    await staff.press(f"a:ride_assign_to:{other.id}:{(await world.family.data()).id}")
    assert "不是已审核的司机" in staff.text()
    assert [a.action for a in await audits(kit)] == ["a:ride_assign_to", "a:ride_assign_to"]
    assert await world.status(other.id) is RideStatus.POSTED


async def test_a_claim_counts_only_on_the_post_in_the_group_it_was_offered_to(world: World) -> None:
    """Ride ids are guessable: a driver must not win a ride by sending a claim's data from a
    private chat, from another group, or on another message (issue: attack findings)."""
    kit = world.kit
    ride = await world.ride()
    ref = await kit.post_ref(ride.id)
    d1 = world.d1
    # From the private chat, with the right message id even.
    await d1.press(f"a:claim:{ride.id}", message_ref=ref)
    assert "司机群" in d1.text()
    # From a group that is not the ride's driver group.
    elsewhere = Person(kit, d1.external_id, d1.name, chat_id="-100555", chat_kind=ChatKind.GROUP)
    await elsewhere.press(f"a:claim:{ride.id}", message_ref=ref)
    # In the right group, pressed on another message (the group's welcome, say).
    await in_group(d1).press(f"a:claim:{ride.id}", message_ref="777777")
    assert await world.status(ride.id) is RideStatus.POSTED
    refused = await audits(kit)
    assert [(a.action, a.target) for a in refused] == [("a:claim", str(ride.id))] * 3
    assert [a.detail for a in refused] == [
        "pressed outside a driver group",
        "not offered to this group",
        "not pressed on the ride's post",
    ]
    # Nothing reached the driver privately; the rider heard nothing.
    assert await d1.inbox() == []
    assert await world.rider.inbox() == []
    # A ride only staff were told about (no group serves it) cannot be claimed either.
    async with kit.db.transaction() as session:
        await rides.unbind_group(session, channel="telegram", chat_id=GROUP)
    hidden = await world.ride_without_group()
    await in_group(d1).press(f"a:claim:{hidden.id}", message_ref=ref)
    assert await world.status(hidden.id) is RideStatus.POSTED
    # The real press on the post still works.
    async with kit.db.transaction() as session:
        await rides.bind_group(
            session, channel="telegram", chat_id=GROUP, title="司机群", community_ids=[], bound_by=1
        )
    g1 = in_group(d1)
    await g1.press(f"a:claim:{ride.id}", message_ref=ref)
    assert "接单成功" in toast(g1)
    assert await world.status(ride.id) is RideStatus.CLAIMED


async def test_a_ride_given_back_after_its_group_removed_linli_goes_to_staff(world: World) -> None:
    """The group a ride was posted in removes Linli; a driver who had claimed the ride gives
    it back: it is not posted into that chat again (Linli can't post there) but to staff."""
    ride = await world.ride()
    await world.claimed(ride)
    removed = Person(world.kit, world.d2.external_id, world.d2.name, chat_id=GROUP, chat_kind=ChatKind.GROUP)
    await removed.deliver(removed.incoming(Kind.BOT_REMOVED, text="kicked"))
    before = len(await group_posts(world.kit))
    await world.d1.press(f"a:ride_release:{ride.id}")
    await world.d1.click("车出问题了")
    assert await world.status(ride.id) is RideStatus.POSTED
    assert len(await group_posts(world.kit)) == before
    alerts = [
        m for m in await world.staff.inbox() if f"#{ride.id}" in m.text and "没有可发布的司机群" in m.text
    ]
    assert alerts and any(c.data.startswith("a:ride_assign:") for c in alerts[-1].all_choices())


async def test_no_show_needs_arrival_a_wait_and_a_confirmation(world: World) -> None:
    """Issue 8: "rider not there" only after "arrived at pickup", a 5-minute wait and a
    confirmation; rider and booker are told how to reach staff."""
    ride = await world.ride(booker=world.family)
    await world.claimed(ride)
    await world.d1.press(f"a:ride_no_show:{ride.id}")  # forged early: not arrived yet
    assert "请先点“已到上车点”" in world.d1.text()
    await world.d1.press(f"a:ride_arrived:{ride.id}")
    assert "5 分钟" in world.d1.text()
    assert "司机已到上车点" in (await world.rider.inbox())[-1].text
    await world.d1.press(f"a:ride_no_show:{ride.id}")
    assert "再等一等" in world.d1.text()
    assert await world.status(ride.id) is RideStatus.ARRIVED
    await world.waited(ride.id)
    await world.d1.press(f"a:ride_no_show:{ride.id}")
    assert "确定乘客没有出现吗" in world.d1.text()
    assert await world.status(ride.id) is RideStatus.ARRIVED  # nothing yet without the confirmation
    await world.d1.click("确认，乘客没出现")
    assert await world.status(ride.id) is RideStatus.NO_SHOW
    for person in (world.rider, world.family):
        assert "027-8800 0001" in (await person.inbox())[-1].text


async def test_driver_myrides_release_reason_and_low_rating_reach_staff(world: World) -> None:
    ride = await world.ride(booker=world.family)
    await world.claimed(ride)
    await world.d1.send("/myrides")
    assert "您接的行程" in world.d1.text()
    assert f"a:ride_on_way:{ride.id}" in [c.data for m in world.d1.replies for c in m.all_choices()]
    await world.d1.press(f"a:ride_release:{ride.id}")
    await world.d1.click("车出问题了")
    released = [m for m in await world.staff.inbox() if "放弃了行程" in m.text]
    assert len(released) == 1 and "车出问题了" in released[0].text and "预约人：王小明" in released[0].text

    other = await world.ride()
    await world.claimed(other)
    for step in ("on_way", "picked_up", "completed"):
        await world.d1.press(f"a:ride_{step}:{other.id}")
    await world.rider.press(f"a:ride_rate:{other.id}:2")
    await world.rider.click("写几句")
    await world.rider.send("司机迟到了半小时")
    low = [m.text for m in await world.staff.inbox() if f"#{other.id}" in m.text and "⭐" in m.text]
    assert any("低分" in t for t in low) and any("司机迟到了半小时" in t for t in low)
