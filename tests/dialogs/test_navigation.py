"""Back, cancel, stale buttons, commands mid-flow, language changes, bad input."""

from __future__ import annotations

from dialogs.feature import Feature, Intent
from dialogs.features import FEATURES
from handlers.registry import Registry
from storage.engine import Database
from tests.kit import Kit


async def test_back_and_cancel(kit: Kit) -> None:
    bob = kit.person("401", "Bob", lang="en")
    await bob.send("/start")
    await bob.click("I agree")
    await bob.click("English")
    await bob.click("Call me")
    await bob.send("chunhe")  # one clear match: picked at once
    assert "Found it: 春和社区" in bob.text() and "Which building" in bob.text()
    await bob.click("Back")
    assert "Which community" in bob.text()
    await bob.click("Cancel")
    assert "Cancelled" in bob.text()
    await bob.send("/cancel")
    assert "nothing in progress" in bob.text()
    # /start resumes after consent instead of asking it again (the name is asked again).
    await bob.send("/start")
    assert "address you" in bob.text()


async def test_stale_buttons_restart_politely(kit: Kit) -> None:
    bob = kit.person("402", "Bob", lang="en")
    await kit.onboard(bob, lang="en")
    await bob.send("/driver")
    await bob.share_contact("13900000009")
    # A button from an earlier step of this flow: re-ask the current question.
    await bob.press("f:driver:phone:whatever")
    assert "earlier question" in bob.text() and "plate" in bob.text()
    await bob.send("/cancel")
    # A button from a flow that has ended: start it again.
    await bob.press("f:driver:confirm:yes")
    assert "start it again" in bob.text()
    # Garbage and unknown flows: a kind answer.
    for data in ("zzz", "f:nosuchflow:x:y", "a:nosuchaction:1", "n:back", "m:nosuchflow"):
        await bob.press(data)
        assert bob.replies and all(r.text for r in bob.replies), data


async def test_commands_mid_flow_and_language_switch(kit: Kit) -> None:
    alice = kit.person("403", "Alice", lang="zh-hans")
    await kit.onboard(alice)
    await alice.send("/driver")
    await alice.send("/help")
    assert "/cancel" in alice.text() and "手机号" in alice.text()  # help, then the question again
    await alice.send("/nosuchcommand")
    assert "没有 /nosuchcommand" in alice.text()
    await alice.send("/language")
    await alice.click("English")
    assert "English from now on" in alice.text()
    await alice.send("/help")
    assert "Commands" in alice.text()


async def test_unsupported_and_huge_input(kit: Kit) -> None:
    alice = kit.person("404", "Alice")
    await kit.onboard(alice)
    await alice.send_unsupported()
    assert "看不懂" in alice.text()
    await alice.send("嗯" * 100_000)
    assert "没听懂" in alice.text()
    await alice.send("\u202e\u200b")
    assert alice.replies
    await alice.share_location(999, 999)
    assert alice.replies


async def test_free_text_routes_to_flows(kit: Kit) -> None:
    alice = kit.person("405", "Alice")
    await kit.onboard(alice)
    await alice.send("我想当司机")
    assert "车牌" in alice.text() or "手机号" in alice.text()
    await alice.send("/cancel")
    await alice.send("我要打车")
    assert "谁坐车" in alice.text()
    await alice.send("/cancel")
    await alice.send("找驿站")
    assert "想在哪附近找驿站" in alice.text()
    await alice.send("/cancel")
    await alice.send("法律咨询")
    assert "免费法律咨询" in alice.text()
    await alice.send("/cancel")
    await alice.send("今天天气不错")
    assert "没听懂" in alice.text()
    assert alice.buttons()  # the menu comes with it


async def test_services_need_onboarding_first(kit: Kit) -> None:
    new = kit.person("406", "New")
    await new.send("/start")
    await new.click("同意")
    await new.send("/driver")
    assert "请先完成" in new.text() and "语言" in new.text()


async def test_an_announced_service_not_built_yet_is_coming_soon(db: Database) -> None:
    """A phrase of a service no feature offers yet is recognised: "coming soon", not
    "I don't understand" (dialogs/soon/ holds such phrases until the feature lands)."""
    without_legal = [f for f in FEATURES if f.name != "legal"]
    announced = Feature(name="announced", intents=(Intent("legal", ("法律咨询",)),))
    kit = await Kit.create(db, registry=Registry.build([*without_legal, announced]))
    alice = kit.person("407", "Alice")
    await kit.onboard(alice)
    await alice.send("法律咨询")
    assert "即将开通" in alice.text() and "法律咨询" in alice.text()
    assert alice.buttons()


async def test_typing_a_buttons_label_answers_as_if_tapped(kit: Kit) -> None:
    """People who type what a button says ("跳过", "中文") instead of tapping it must not be
    told their answer is wrong (found walking onboarding in the terminal chat)."""
    bob = kit.person("408", "Bob")
    await bob.send("/start")
    await bob.send("同意，开始使用")
    assert "语言" in bob.text()
    await bob.send("中文")
    assert "称呼" in bob.text()
    await bob.send("就叫我“Bob”")
    assert "哪个社区" in bob.text()
    await bob.send("春和")
    assert "哪一栋" in bob.text()
    await bob.send("3栋")
    assert "手机号" in bob.text()
    await bob.send("跳过")
    assert (await bob.data()).onboarded
    assert "号码好像不对" not in bob.text()
