"""Onboarding through the dialog core, without any transport, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.kit import Kit


async def test_onboarding_in_chinese(kit: Kit) -> None:
    alice = kit.person("101", "王奶奶", lang="zh-hans")
    await alice.send("/start")
    assert "同意" in alice.text()
    # Nothing personal before consent: the name is not stored yet.
    assert (await alice.data()).display_name == ""
    await alice.click("同意")
    assert (await alice.data()).display_name == "王奶奶"
    assert "语言" in alice.text()
    await alice.click("中文")
    # How to address her: the chat name offered, or typed.
    assert "称呼" in alice.text() and any("王奶奶" in b for b in alice.buttons())
    await alice.send("13812345678")
    assert "不要输入电话号码" in alice.text()
    await alice.send("王阿婆")
    assert (await alice.data()).display_name == "王阿婆"
    assert "社区" in alice.text()
    await alice.send("chunhe")  # one clear match: no "which one?"
    assert "找到了：春和社区" in alice.text() and "哪一栋" in alice.text()
    await alice.send("3栋")
    assert "手机号" in alice.text()
    await alice.send("138 1234 5678")
    assert "138****5678" in alice.text()
    assert "设置完成" in alice.text()
    me = await alice.data()
    assert me.onboarded and me.phone == "+8613812345678" and me.language == "zh"


async def test_onboarding_in_english(kit: Kit) -> None:
    bob = kit.person("102", "Bob", lang="en-GB")
    await bob.send("hello")
    assert "Do you agree?" in bob.text()
    await bob.click("I agree")
    await bob.click("English")
    await bob.click("Call me Bob")
    await bob.send("Qinghe")
    await bob.click("青和居社区")
    await bob.send("东区2栋")
    await bob.share_contact("+86 139 0000 1111")
    assert "All set" in bob.text()
    me = await bob.data()
    assert me.language == "en" and me.phone == "+8613900001111" and me.building_id is not None


async def test_building_answers_never_save_the_wrong_building(kit: Kit) -> None:
    """Issue 8 and 7: 西区6栋 is never 东区6栋; 3栋 among 东区3栋/西区3栋 asks which; "0" is
    not 10栋; a number in markup or a long sentence is not picked out."""
    bob = kit.person("103", "Bob", lang="zh-hans")
    await bob.send("/start")
    await bob.click("同意")
    await bob.click("中文")
    await bob.click("就叫我")
    await bob.send("青和居")
    await bob.send("3栋")
    assert "哪一栋" in bob.text() and {"东区3栋", "西区3栋"} <= set(bob.buttons())
    assert "东区6栋" not in bob.buttons()  # only the two 3栋 are offered
    await bob.send("西区6栋")
    assert "手机号" in bob.text()
    me = await bob.data()
    async with kit.db.transaction() as session:
        from storage import communities

        assert me.building_id is not None
        building = await communities.get_building(session, me.building_id)
        assert building is not None and building.name == "西区6栋"

    carol = kit.person("104", "Carol", lang="zh-hans")
    await carol.send("/start")
    await carol.click("同意")
    await carol.click("中文")
    await carol.click("就叫我")
    await carol.send("春和")
    for answer in ("0", "<b>10</b>", "我家住在10栋旁边那个小区后面一点点的位置"):
        await carol.send(answer)
        assert "手机号" not in carol.text(), answer
    assert (await carol.data()).building_id is None


async def test_language_chosen_on_the_first_screen_is_not_asked_again(kit: Kit) -> None:
    """Issue 8: a person who switched to English on the consent screen is not asked the
    language again (a tap saved)."""
    dan = kit.person("105", "Dan", lang="zh-hans")
    await dan.send("/start")
    await dan.click("English")
    assert "Do you agree?" in dan.text()
    await dan.click("I agree")
    assert "address you" in dan.text() and "language" not in dan.text().lower()
    await dan.click("Call me Dan")
    assert "Which community" in dan.text()
