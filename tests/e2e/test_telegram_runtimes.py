"""The two Telegram runtimes keep one contract: each ``TelegramApi`` call, made by aiogram's
Bot or by python-telegram-bot's against the fake Bot API, puts the same request on the
wire and turns the same Telegram answer into the same ``bot.telegram.errors`` class.
Everything above (polling, rendering, the outbox) relies on exactly this."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pydantic import SecretStr

from bot.settings import Settings, TelegramRuntime
from bot.telegram import errors
from bot.telegram.api import (
    InlineButton,
    InlineKeyboard,
    RemoveKeyboard,
    RequestKeyboard,
    Scope,
    TelegramApi,
)
from bot.telegram.runner import make_bot
from tests.fakes.telegram_api import FakeTelegramServer, RecordedRequest


@pytest_asyncio.fixture
async def api(
    fake_telegram: FakeTelegramServer, telegram_runtime: TelegramRuntime
) -> AsyncIterator[TelegramApi]:
    bot = make_bot(
        Settings(
            telegram_token=SecretStr(fake_telegram.token),
            telegram_api_base=fake_telegram.base_url,
            telegram_runtime=telegram_runtime,
        )
    )
    assert bot.runtime == telegram_runtime
    try:
        yield bot
    finally:
        await bot.close()


def last(tg: FakeTelegramServer, method: str) -> RecordedRequest:
    return next(r for r in reversed(tg.requests) if r.method == method)


def field(request: RecordedRequest, name: str) -> Any:
    """A request field as JSON, however the runtime encoded it (multipart, form, JSON)."""
    value = request.fields.get(name)
    return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value


async def test_markups_on_the_wire(fake_telegram: FakeTelegramServer, api: TelegramApi) -> None:
    tg = fake_telegram
    alice = tg.user(1001, "Alice")
    buttons = InlineKeyboard(
        (
            (InlineButton("是", "f:x:y:yes"), InlineButton("否", "f:x:y:no")),
            (InlineButton("返回", "f:x:y:back"),),
        )
    )
    message_id = await api.send_message(alice.id, "好吗？", buttons)
    assert tg.messages_to(alice)[-1].message_id == message_id
    assert field(last(tg, "sendMessage"), "reply_markup") == {
        "inline_keyboard": [
            [{"text": "是", "callback_data": "f:x:y:yes"}, {"text": "否", "callback_data": "f:x:y:no"}],
            [{"text": "返回", "callback_data": "f:x:y:back"}],
        ]
    }
    assert "parse_mode" not in last(tg, "sendMessage").fields  # plain text, always

    for wants in ("contact", "location"):
        await api.send_message(alice.id, "?", RequestKeyboard("📱", wants))
        markup = field(last(tg, "sendMessage"), "reply_markup")
        assert markup["keyboard"] == [[{"text": "📱", f"request_{wants}": True}]]
        assert markup["resize_keyboard"] is True and markup["one_time_keyboard"] is True
        assert tg.reply_keyboard(alice) == [["📱"]]
    await api.send_message(alice.id, "好", RemoveKeyboard())
    assert field(last(tg, "sendMessage"), "reply_markup") == {"remove_keyboard": True}
    assert tg.reply_keyboard(alice) is None

    await api.edit_message_text(
        alice.id, message_id, "改了", InlineKeyboard(((InlineButton("OK", "f:ok"),),))
    )
    assert tg.messages_to(alice)[0].text == "改了" and tg.messages_to(alice)[0].buttons == [("OK", "f:ok")]
    await api.edit_message_reply_markup(alice.id, message_id)
    assert tg.messages_to(alice)[0].buttons == []
    venue = await api.send_venue(alice.id, 30.5, 114.3, "春和驿站", "武汉市", buttons)
    sent = tg.messages_to(alice)[-1]
    assert sent.message_id == venue and sent.method == "sendVenue" and len(sent.buttons) == 3


async def test_files_menus_profile_webhook(
    fake_telegram: FakeTelegramServer, api: TelegramApi, tmp_path: Path
) -> None:
    tg = fake_telegram
    me = await api.get_me()
    assert me.username == tg.bot_username
    alice = tg.user(1001, "Alice")

    # A photo a person sent comes back byte for byte; one larger than allowed is refused.
    jpeg = b"\xff\xd8\xff" + bytes(range(256)) * 8
    file_id = tg.send_photo(alice, jpeg)["message"]["photo"][-1]["file_id"]
    assert await api.download(file_id, 20 * 1024 * 1024) == jpeg
    with pytest.raises(ValueError):
        await api.download(file_id, 100)

    # Sent back by id, and uploaded from a file (a photo Linli stored).
    await api.send_photo(alice.id, file_id, "这张")
    assert last(tg, "sendPhoto").fields["caption"] == "这张"
    stored = tmp_path / "fixed.jpg"
    stored.write_bytes(jpeg[::-1])
    await api.send_photo(alice.id, stored, None)
    assert [f.data for f in last(tg, "sendPhoto").files.values()] == [jpeg[::-1]]

    # Menus by scope and language, and their removal.
    commands = [("ride", "约车"), ("help", "帮助")]
    await api.set_my_commands(commands, Scope("chat", alice.id), "zh")
    assert tg.get_commands({"type": "chat", "chat_id": alice.id}, "zh") == [
        {"command": "ride", "description": "约车"},
        {"command": "help", "description": "帮助"},
    ]
    await api.set_my_commands(commands, Scope("all_private_chats"), None)
    assert tg.get_commands({"type": "all_private_chats"}) is not None
    await api.delete_my_commands(Scope("all_private_chats"), None)
    assert not tg.get_commands({"type": "all_private_chats"})

    await api.set_my_description("您好", "zh")
    await api.set_my_short_description("邻里", None)
    assert tg.bot_settings_by_language[("description", "zh")]["description"] == "您好"
    assert tg.bot_settings_by_language[("short_description", "")]["short_description"] == "邻里"

    await api.set_webhook(
        url="https://linli.example.org/telegram",
        secret_token="s3cret",
        allowed_updates=["message", "callback_query"],
        max_connections=40,
        drop_pending_updates=False,
    )
    assert tg.webhook is not None and tg.webhook["url"] == "https://linli.example.org/telegram"
    with pytest.raises(errors.Conflict):  # getUpdates while a webhook is set
        await api.get_updates(offset=None, limit=10, wait=0, allowed_updates=None, request_timeout=5)
    await api.delete_webhook(drop_pending_updates=False)
    assert tg.webhook is None


async def test_updates_read_into_one_model(fake_telegram: FakeTelegramServer, api: TelegramApi) -> None:
    tg = fake_telegram
    alice = tg.user(1001, "Alice", username="alice")
    sent = tg.send_text(alice, "/start 你好")
    tg.send_location(alice, 30.5, 114.3)
    batch = await api.get_updates(offset=None, limit=10, wait=0, allowed_updates=None, request_timeout=5)
    assert [u.update_id for u in batch] == [sent["update_id"], sent["update_id"] + 1]
    first = batch[0].message
    assert first is not None and first.from_user is not None
    assert (first.text, first.from_user.username, first.chat.id) == ("/start 你好", "alice", alice.id)
    assert first.entities is not None and first.entities[0].type == "bot_command"
    second = batch[1].message
    assert second is not None and second.location is not None and second.location.latitude == 30.5

    # Unconfirmed, both come again; the one already in hand is left out unread.
    again = await api.get_updates(
        offset=None, limit=10, wait=0, allowed_updates=None, request_timeout=5, known_below=batch[1].update_id
    )
    assert [u.update_id for u in again] == [batch[1].update_id]


@pytest.mark.parametrize(
    ("status", "description", "retry_after", "expected"),
    [
        (429, "Too Many Requests: retry after 3", 3, errors.RetryAfter),
        (403, "Forbidden: bot was blocked by the user", None, errors.Forbidden),
        (400, "Bad Request: message text is empty", None, errors.BadRequest),
        (401, "Unauthorized", None, errors.Unauthorized),
        (413, "Request Entity Too Large", None, errors.EntityTooLarge),
        # aiogram names a 5xx a server error, python-telegram-bot a network error: both
        # are waited out the same way.
        (502, "Bad Gateway", None, (errors.ServerError, errors.NetworkError)),
    ],
)
async def test_errors_mean_the_same(
    fake_telegram: FakeTelegramServer,
    api: TelegramApi,
    status: int,
    description: str,
    retry_after: int | None,
    expected: type[Exception] | tuple[type[Exception], ...],
) -> None:
    alice = fake_telegram.user(1001, "Alice")
    fake_telegram.fail_next("sendMessage", status, description, retry_after=retry_after)
    with pytest.raises(expected) as raised:
        await api.send_message(alice.id, "hi")
    assert isinstance(raised.value, errors.TelegramError)
    if retry_after is not None:
        assert isinstance(raised.value, errors.RetryAfter) and raised.value.retry_after == 3.0


async def test_group_moved_and_chat_not_found(fake_telegram: FakeTelegramServer, api: TelegramApi) -> None:
    tg = fake_telegram
    admin = tg.user(1001, "Admin")
    group = tg.group(-100, "司机群")
    tg.migrate_group(group, -1001234, by=admin)
    with pytest.raises(errors.ChatMigrated) as moved:
        await api.send_message(group.id, "hi")
    assert moved.value.new_chat_id == -1001234
    with pytest.raises(errors.BadRequest) as missing:
        await api.send_message(424242, "hi")
    # The runtimes word it differently; ``mentions`` reads both.
    assert missing.value.mentions("chat not found")


async def test_no_answer_is_a_network_error(telegram_runtime: TelegramRuntime) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bot = make_bot(
        Settings(
            telegram_token=SecretStr("123:abc"),
            telegram_api_base=f"http://127.0.0.1:{port}",
            telegram_runtime=telegram_runtime,
        )
    )
    try:
        with pytest.raises(errors.NetworkError):
            await bot.get_me()
    finally:
        await bot.close()
