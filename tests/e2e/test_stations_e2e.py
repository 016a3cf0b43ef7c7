"""Rest stations end to end: the real aiogram Bot over HTTP against the fake Bot API,
with ``run_telegram`` polling, on SQLite and PostgreSQL: share a location → the list
→ a station's venue (map pin) with navigation links → a kind filter → the next page;
then a typed pinyin place."""

from __future__ import annotations

from tests.conftest import STAFF_ID  # noqa: F401  (the same settings as the other e2e tests)
from tests.e2e.test_rides_e2e import linked  # noqa: F401  (fixture)
from tests.e2e.test_telegram_e2e import Client, Linked, onboard_zh


async def test_location_venue_filter_next_page_and_pinyin(linked: Linked) -> None:  # noqa: F811
    tg = linked.tg
    rider = Client(tg, tg.user(2001, "郭", last_name="小哥"))
    await onboard_zh(rider)

    ask = await rider.say("/stations", "想在哪附近找驿站")
    keyboard = tg.reply_keyboard(rider.user)
    assert keyboard is not None and "发送我的位置" in keyboard[0][0], keyboard

    since = len(tg.sent)
    tg.send_location(rider.user, 30.5058, 114.3987)
    page = await tg.wait_for_text(rider.user, "您的位置附近的驿站（第 1 页）", since=since)
    assert "1. 光谷广场户外劳动者驿站" in (page.text or "") and "骑车约" in (page.text or "")
    pins = [
        d for label, d in page.buttons if label.startswith("📍") and d and d.startswith("a:station_show:")
    ]
    assert len(pins) == 5
    assert ask is not page

    # A station as a venue (a map pin), after its details with navigation links.
    since = len(tg.sent)
    tg.press(rider.user, page, pins[0])
    venue = await tg.wait_for(lambda m: m.method == "sendVenue" and m.chat_id == rider.user.id, since=since)
    assert venue.fields["title"] == "光谷广场户外劳动者驿站"
    assert abs(float(venue.fields["latitude"]) - 30.5058) < 1e-6
    details = await tg.wait_for_text(rider.user, "高德地图导航", since=since)
    assert "callnative=1" in (details.text or "") and "openstreetmap.org" in (details.text or "")

    # The pressed list lost its buttons; the pin leads back to it.
    since = len(tg.sent)
    tg.press(rider.user, venue, next(d for label, d in venue.buttons if "返回列表" in label and d))
    page = await tg.wait_for_text(rider.user, "您的位置附近的驿站（第 1 页）", since=since)

    # Filter by kind: a new screen of kinds, then the list again, filtered.
    since = len(tg.sent)
    tg.press(rider.user, page, next(d for label, d in page.buttons if "类型" in label and d))
    kinds = await tg.wait_for_text(rider.user, "要找哪类地方", since=since)
    tg.press(rider.user, kinds, next(d for label, d in kinds.buttons if label == "户外劳动者驿站" and d))
    await tg.wait_for(lambda m: m is kinds and any(b == "✓ 户外劳动者驿站" for b, _ in m.buttons))
    since = len(tg.sent)
    tg.press(rider.user, kinds, next(d for label, d in kinds.buttons if "查看结果" in label and d))
    filtered = await tg.wait_for_text(rider.user, "筛选：户外劳动者驿站", since=since)
    assert "（小哥食堂）" not in (filtered.text or "")

    # The next page edits the list in place.
    more = next(d for label, d in filtered.buttons if "更多" in label and d)
    tg.press(rider.user, filtered, more)
    await tg.wait_for(lambda m: m is filtered and "第 2 页" in (m.text or ""))
    assert "筛选：户外劳动者驿站" in (filtered.text or "")

    # A typed place, in pinyin, on the list: a new search there.
    since = len(tg.sent)
    tg.send_text(rider.user, "jianghanlu")
    near = await tg.wait_for_text(rider.user, "江汉路附近的驿站（第 1 页）", since=since)
    assert "江汉路步行街户外劳动者驿站" in (near.text or "")
