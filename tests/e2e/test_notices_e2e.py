"""A notice end to end: real aiogram against the fake Bot API, `run_telegram` polling, the
scheduler expanding the audience and the outbox sender delivering it; the author gets the
progress in /notices. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.conftest import STAFF_ID
from tests.e2e.test_rides_e2e import linked, onboard  # noqa: F401  (fixture)
from tests.e2e.test_telegram_e2e import Client, Linked

pytestmark = pytest.mark.slow  # real-time rate limits: seconds per test, outside the fast loop


async def test_staff_sends_an_urgent_notice_residents_get_it_once(
    linked: Linked,  # noqa: F811
) -> None:
    tg = linked.tg
    # LINLI_ADMINS: city-wide staff.
    staff = Client(tg, tg.user(int(STAFF_ID), "周", last_name="网格员"))
    alice = Client(tg, tg.user(1001, "王", last_name="奶奶"))
    await onboard(staff, "13800000011")
    await onboard(alice, "13800000012")

    await staff.say("/notice", "通知内容")
    await staff.say("燃气管道抢修，请勿使用明火。", "配一张图片")
    await staff.press("不配图", "英文版")
    await staff.press("不需要英文版", "哪个社区")
    await staff.press("春和社区", "某一栋楼")
    await staff.press("整个社区", "哪些人")
    await staff.press("所有人", "哪一类")
    await staff.press("停水停电", "紧急通知")
    await staff.press("紧急", "什么时候")
    await staff.press("立即发送", "预计接收人数")
    await staff.press("确认发送", "已开始发送")

    got = await tg.wait_for_text(alice.user, "燃气管道抢修", timeout=30)
    assert "紧急通知" in (got.text or "")
    assert any("通知设置" in label for label, _ in got.buttons)
    await tg.wait_for_text(staff.user, "紧急通知 · 春和社区", timeout=30)
    # Alice and the staff member on Telegram; the five demo people live in the terminal
    # channel, which this process does not serve: their rows wait for it.
    await staff.say("/notices", "/7")  # the "sent" mark follows the delivery closely
    await staff.say("/notices", "2/7")
    assert len([m for m in tg.messages_to(alice.user) if "燃气管道抢修" in (m.text or "")]) == 1
