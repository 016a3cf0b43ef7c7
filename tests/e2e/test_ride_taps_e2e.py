"""Issue 8: taps counted through Telegram (real aiogram against the fake Bot API), buttons
only, after onboarding. A first ride "now, from my home to a hospital" for oneself takes at
most 6 taps and no typing; "again, like last time" at most 3. In Chinese and English, on
SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col

from storage.rides import Ride
from tests.conftest import STAFF_ID
from tests.e2e.test_rides_e2e import linked, onboard  # noqa: F401 - linked is the fixture
from tests.e2e.test_telegram_e2e import Client, Linked, onboard_en
from tests.fakes.telegram_api import FakeTelegramServer

FIRST_RIDE_TAPS = 6
REPEAT_TAPS = 3


class Counted(Client):
    """A client that counts its taps and typed characters."""

    def __init__(self, client: Client) -> None:
        super().__init__(client.tg, client.user)
        self.taps = 0
        self.typed = 0

    async def press(self, label: str, expect: str):  # type: ignore[no-untyped-def]
        self.taps += 1
        return await super().press(label, expect)

    async def say(self, text: str, expect: str):  # type: ignore[no-untyped-def]
        self.typed += len(text)
        return await super().say(text, expect)


async def _bind(tg: FakeTelegramServer, staff: Client) -> None:
    group = tg.group(-100123, "春和志愿司机群")
    since = len(tg.sent)
    tg.send_text(staff.user, "/bind_driver_group", chat=group)
    await tg.wait_for_text(group, "本群已设为", since=since)


async def _finish_rides(app: Linked) -> None:
    """The earlier ride happened (a driver took her and it is over)."""
    async with app.app.db.transaction() as session:
        await session.execute(update(Ride).where(col(Ride.status) == "posted").values(status="completed"))


async def test_first_ride_six_taps_and_again_in_three_chinese(linked: Linked) -> None:  # noqa: F811 - the fixture
    tg = linked.tg
    staff = Client(tg, tg.user(int(STAFF_ID), "周", last_name="网格员"))
    await onboard(staff, "+8613700000000")
    await _bind(tg, staff)
    plain = Client(tg, tg.user(1001, "王", last_name="奶奶"))
    await onboard(plain, "+8613812345678")
    await tg.wait_for_text(plain.user, "点一下就行")  # onboarding ends at the main menu

    alice = Counted(plain)  # counting starts after onboarding, at the main menu
    await alice.press("预约用车", "谁坐车")
    await alice.press("我自己", "也可以直接打字写地址")
    await alice.press("从家出发", "常去的医院点一下")
    await alice.press("协和医院", "什么时候出发")
    await alice.press("现在", "请核对行程信息")
    since = len(tg.sent)
    await alice.press("确认发布", "已发布")
    assert (alice.taps, alice.typed) == (FIRST_RIDE_TAPS, 0)
    post = await tg.wait_for_text(tg.group(-100123, "春和志愿司机群"), "新的用车请求", since=since)
    assert "协和医院" in (post.text or "") and "138****5678" in (post.text or "")

    await _finish_rides(linked)
    again = Counted(plain)
    await again.press("预约用车", "谁坐车")
    await again.press("再约一次", "选好时间就直接发布")
    await again.press("现在出发", "已发布")
    assert (again.taps, again.typed) == (REPEAT_TAPS, 0)
    async with linked.app.db.transaction() as session:
        from sqlalchemy import select

        rows = (await session.execute(select(Ride).order_by(col(Ride.id)))).scalars().all()
    first, second = rows
    assert (second.rider_name, second.pickup_text, second.dest_text, second.needs) == (
        first.rider_name,
        first.pickup_text,
        first.dest_text,
        first.needs,
    )
    assert second.status == "posted" and second.is_now


async def test_first_ride_six_taps_and_again_in_three_english(linked: Linked) -> None:  # noqa: F811 - the fixture
    tg = linked.tg
    staff = Client(tg, tg.user(int(STAFF_ID), "周", last_name="网格员"))
    await onboard(staff, "+8613700000000")
    await _bind(tg, staff)
    plain = Client(tg, tg.user(1002, "Bob", language_code="en"))
    await onboard_en(plain)
    await tg.wait_for_text(plain.user, "Just tap")

    bob = Counted(plain)
    await bob.press("Book a ride", "Who is this ride for?")
    await bob.press("Myself", "Or type the address")
    home = bob.button("From home")[0]
    assert "Qinghe Residence Community" in str(home.buttons)  # English names where they exist
    await bob.press("From home", "Tap a hospital")
    await bob.press("Union Hospital", "When?")
    summary = await bob.press("Now", "Please check the ride")
    assert "、" not in (summary.text or "") and "Union Hospital" in (summary.text or "")
    await bob.press("Confirm and post", "Posted")
    assert (bob.taps, bob.typed) == (FIRST_RIDE_TAPS, 0)

    await _finish_rides(linked)
    again = Counted(plain)
    await again.press("Book a ride", "Who is this ride for?")
    await again.press("Again", "Choosing a time posts the ride")
    await again.press("Now", "Posted")
    assert (again.taps, again.typed) == (REPEAT_TAPS, 0)
