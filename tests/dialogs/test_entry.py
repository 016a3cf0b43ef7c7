"""The entry's guarantees: idempotency, per-chat order, several workers, all-or-nothing."""

from __future__ import annotations

import asyncio

import pytest

from dialogs.features import FEATURES
from dialogs.messages import Kind
from handlers.entry import Handler
from handlers.registry import Registry
from storage import applications, conversations, users
from tests.kit import Kit


async def test_duplicate_update_has_one_effect(kit: Kit) -> None:
    alice = kit.person("501", "Alice")
    await kit.onboard(alice)
    await alice.send("/lawyer")
    await alice.send("某律所")
    await alice.send("12345678901234567")
    toggle = alice.incoming(Kind.CHOICE, choice="f:lawyer:specialties:labour", message_ref="1")
    first = await alice.deliver(toggle)
    assert "✓ 劳动纠纷" in [c.label for m in first for c in m.all_choices()]
    # Telegram delivers the same update again, twice at once (as after a crash between
    # our commit and our reply): the same answer again, and nothing else happens.
    again = await asyncio.gather(alice.deliver(toggle), alice.deliver(toggle))
    assert again == [first, first]
    async with kit.db.transaction() as session:
        state = await conversations.load(session, toggle.conversation_key)
    assert state.data["specialties"] == ["labour"]  # toggled once, not three times


async def test_quick_messages_from_one_chat_keep_their_order(kit: Kit) -> None:
    alice = kit.person("502", "Alice")
    await kit.onboard(alice, phone="13800003333")
    await alice.send("/driver")
    messages = [
        alice.incoming(Kind.TEXT, text="鄂A12345"),
        alice.incoming(Kind.TEXT, text="白色朗逸"),
        alice.incoming(Kind.CHOICE, choice="f:driver:confirm:yes", message_ref="1"),
    ]
    # Started in order, all at once: serialisation per chat must keep the order.
    await asyncio.gather(*(alice.deliver(m) for m in messages))
    async with kit.db.transaction() as session:
        (app,) = await applications.pending(session)
    assert app.details == {"plate": "鄂A12345", "car_model": "白色朗逸"}


async def test_two_workers_on_one_conversation_lose_nothing(kit: Kit) -> None:
    """Two handlers (two processes' worth) updating one conversation at the same moment."""
    other = Handler(kit.db, Registry.build(FEATURES))
    alice = kit.person("503", "Alice")
    await kit.onboard(alice)
    await alice.send("/lawyer")
    await alice.send("某律所")
    await alice.send("12345678901234567")
    choices = ["labour", "family", "injury", "elder"]
    incoming = [
        alice.incoming(Kind.CHOICE, choice=f"f:lawyer:specialties:{c}", message_ref="1") for c in choices
    ]
    await asyncio.gather(
        *(
            (kit.handler if i % 2 else other).handle(m)  # alternate the two workers
            for i, m in enumerate(incoming)
        )
    )
    async with kit.db.transaction() as session:
        state = await conversations.load(session, incoming[0].conversation_key)
    assert sorted(state.data["specialties"]) == sorted(choices)


async def test_failure_mid_step_rolls_back_and_redelivery_succeeds(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = kit.person("504", "Alice")
    await alice.send("/start")
    await alice.click("同意")
    await alice.click("中文")
    await alice.click("就叫我")
    await alice.send("春和")
    await alice.send("3栋")
    real = users.mark_onboarded
    calls = 0

    async def flaky(session: object, user_id: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("disk on fire")
        await real(session, user_id)  # type: ignore[arg-type]

    monkeypatch.setattr(users, "mark_onboarded", flaky)
    phone = alice.incoming(Kind.TEXT, text="13800004444")
    await alice.deliver(phone)
    assert "出了点问题" in alice.text()
    me = await alice.data()
    # All or nothing: the phone saved earlier in the same step was rolled back too.
    assert me.phone is None and not me.onboarded
    await alice.deliver(phone)  # the platform redelivers the same update
    assert "设置完成" in alice.text()
    me = await alice.data()
    assert me.phone == "+8613800004444" and me.onboarded


async def test_stored_answers_are_erased_by_forget(kit: Kit) -> None:
    from storage import updates

    alice = kit.person("505", "Alice")
    await kit.onboard(alice, phone="13800006666")
    mydata = alice.incoming(Kind.COMMAND, command="mydata")
    await alice.deliver(mydata)
    assert "+8613800006666" in alice.text()
    async with kit.db.transaction() as session:
        assert "+8613800006666" in (await updates.stored_replies(session, mydata.update_key or ""))[0]["text"]
    await alice.send("/forget")
    await alice.click("确定删除")
    async with kit.db.transaction() as session:
        assert await updates.stored_replies(session, mydata.update_key or "") == []
