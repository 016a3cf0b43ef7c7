"""The fake Telegram server, driven by the real aiogram Bot over HTTP.

If aiogram accepts the fake's answers (it validates every object strictly) and raises the
same exceptions as against Telegram, end-to-end tests built on the fake mean something.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import CommandStart
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from tests.fakes import telegram_api
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegramServer, FakeUser

# Re-exported under its own name so pytest registers the shared fixture for this module.
fake_telegram = telegram_api.fake_telegram

KEYBOARD = InlineKeyboardMarkup(
    inline_keyboard=[
        [
            InlineKeyboardButton(text="是", callback_data="ride:yes"),
            InlineKeyboardButton(text="否", callback_data="ride:no"),
        ]
    ]
)


@pytest.fixture
async def tg(fake_telegram: FakeTelegramServer) -> FakeTelegramServer:
    return fake_telegram


@pytest.fixture
async def bot(tg: FakeTelegramServer) -> AsyncIterator[Bot]:
    bot = tg.make_bot()
    yield bot
    await bot.session.close()


@pytest.fixture
def alice(tg: FakeTelegramServer) -> FakeUser:
    return tg.user(1001, "Alice")


async def test_get_me_with_stock_aiohttp_session(tg: FakeTelegramServer) -> None:
    session = AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url))
    bot = Bot(DEFAULT_TOKEN, session=session)
    try:
        me = await bot.get_me()
    finally:
        await session.close()
    assert (me.id, me.is_bot, me.username) == (123456, True, "linli_test_bot")
    assert tg.base_url.startswith("http://127.0.0.1:")


async def test_raw_http_protocol(tg: FakeTelegramServer, alice: FakeUser) -> None:
    api = f"{tg.base_url}/bot{tg.token}"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{tg.base_url}/bot1:WRONG/getMe") as resp:
            assert resp.status == 401
            assert await resp.json() == {
                "ok": False,
                "error_code": 401,
                "description": "Unauthorized",
            }
        async with http.post(f"{api}/noSuchMethod") as resp:
            assert resp.status == 404
            assert (await resp.json())["description"] == "Not Found: method not found"
        async with http.get(f"{api}/GETME") as resp:  # GET and any case work, like Telegram
            assert (await resp.json())["result"]["id"] == tg.bot_id
        body = {
            "chat_id": alice.id,
            "text": "json body",
            "reply_markup": {"inline_keyboard": [[{"text": "a", "callback_data": "x"}]]},
        }
        async with http.post(f"{api}/sendMessage", json=body) as resp:
            result = (await resp.json())["result"]
            assert result["text"] == "json body"
        async with http.get(f"{tg.base_url}/file/bot{tg.token}/photos/missing.jpg") as resp:
            assert resp.status == 404
    assert tg.requests[-1].content_type == "application/json"
    assert tg.sent[-1].buttons == [("a", "x")]

    wrong = tg.make_bot(token="42:WRONG")
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await wrong.get_me()
    finally:
        await wrong.session.close()


async def test_inline_keyboard_and_press(tg: FakeTelegramServer, bot: Bot, alice: FakeUser) -> None:
    msg = await bot.send_message(alice.id, "需要接送吗？", reply_markup=KEYBOARD)
    assert msg.from_user is not None
    assert msg.from_user.id == tg.bot_id
    assert msg.chat.id == alice.id
    assert msg.chat.type == "private"
    assert msg.reply_markup is not None
    assert msg.reply_markup.model_dump() == KEYBOARD.model_dump()
    sent = tg.messages_to(alice)[-1]
    assert sent.buttons == tg.inline_buttons(sent) == [("是", "ride:yes"), ("否", "ride:no")]

    with pytest.raises(AssertionError, match="no inline button"):
        tg.press(alice, sent, "ride:maybe")
    update = tg.press(alice, sent, "ride:yes")

    updates = await bot.get_updates()
    assert [u.update_id for u in updates] == [update["update_id"]]
    query = updates[0].callback_query
    assert query is not None
    assert query.data == "ride:yes"
    assert query.from_user.id == alice.id
    assert query.chat_instance
    assert isinstance(query.message, Message)
    assert query.message.message_id == msg.message_id

    assert await bot.answer_callback_query(query.id, text="好的")
    answer = await tg.wait_callback_answer(update)
    assert (answer.text, answer.data, answer.user_id) == ("好的", "ride:yes", alice.id)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query.id)

    forged = tg.press(alice, sent, "admin:wipe", forge=True)  # a modified client
    assert forged["callback_query"]["data"] == "admin:wipe"


async def test_edit_and_not_modified(tg: FakeTelegramServer, bot: Bot, alice: FakeUser) -> None:
    msg = await bot.send_message(alice.id, "v1", reply_markup=KEYBOARD)
    edited = await bot.edit_message_text(
        text="v2", chat_id=alice.id, message_id=msg.message_id, reply_markup=KEYBOARD
    )
    assert isinstance(edited, Message)
    assert edited.text == "v2"
    assert edited.edit_date
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            text="v2", chat_id=alice.id, message_id=msg.message_id, reply_markup=KEYBOARD
        )
    sent = tg.sent[-1]
    assert (sent.text, [e["text"] for e in sent.edits]) == ("v2", ["v2"])

    # Like Telegram, an edit without reply_markup removes the inline keyboard.
    await bot.edit_message_text(text="v3", chat_id=alice.id, message_id=msg.message_id)
    assert sent.buttons == []
    await bot.edit_message_reply_markup(chat_id=alice.id, message_id=msg.message_id, reply_markup=KEYBOARD)
    assert sent.buttons
    assert sent.text == "v3"

    assert await bot.delete_message(alice.id, msg.message_id)
    assert sent.deleted
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(text="v4", chat_id=alice.id, message_id=msg.message_id)
    with pytest.raises(AssertionError, match="deleted"):
        tg.press(alice, sent, "ride:yes")


async def test_injected_failures(tg: FakeTelegramServer, bot: Bot, alice: FakeUser) -> None:
    bob = tg.user(1002, "Bob", language_code="en")
    tg.fail_next("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)
    with pytest.raises(TelegramRetryAfter) as exc:
        await bot.send_message(alice.id, "x")
    assert exc.value.retry_after == 7
    await bot.send_message(alice.id, "x")  # only the next call failed

    tg.fail_next("sendMessage", 500, "Internal Server Error", chat_id=bob.id)
    await bot.send_message(alice.id, "unaffected")
    with pytest.raises(TelegramServerError):
        await bot.send_message(bob.id, "y")

    update = tg.block(alice)
    assert update is not None
    assert update["my_chat_member"]["new_chat_member"]["status"] == "kicked"
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(alice.id, "z")
    tg.deactivate(bob)
    with pytest.raises(TelegramForbiddenError, match="user is deactivated"):
        await bot.send_message(bob.id, "z")
    (member_update,) = await bot.get_updates()
    assert member_update.my_chat_member is not None  # aiogram parses the ChatMemberUpdated


async def test_validation_and_formatting(tg: FakeTelegramServer, bot: Bot, alice: FakeUser) -> None:
    await bot.send_message(alice.id, "长" * 4096)
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(alice.id, "长" * 4097)
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(alice.id, "")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(999, "hello?")
    too_long = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="x", callback_data="数" * 22)]]  # 66 bytes
    )
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(alice.id, "x", reply_markup=too_long)
    with pytest.raises(TelegramBadRequest, match="caption is too long"):
        await bot.send_photo(alice.id, BufferedInputFile(b"img", "a.jpg"), caption="c" * 1025)

    html = await bot.send_message(alice.id, "<b>粗体</b> &lt;3", parse_mode="HTML")
    assert html.text == "粗体 <3"
    assert html.entities is not None
    assert html.entities[0].type == "bold"
    assert (html.entities[0].offset, html.entities[0].length) == (0, 2)
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(alice.id, "1 < 2 <b>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match=r"Character '\.' is reserved"):
        await bot.send_message(alice.id, "v1.5", parse_mode="MarkdownV2")
    md = await bot.send_message(alice.id, r"*粗* v1\.5", parse_mode="MarkdownV2")
    assert md.text == "粗 v1.5"

    keyboard = ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text="发送位置", request_location=True)]])
    shown = await bot.send_message(alice.id, "在哪里？", reply_markup=keyboard)
    assert shown.reply_markup is None  # Message.reply_markup is only ever inline
    assert tg.reply_keyboard(alice) == [["发送位置"]]
    await bot.send_message(alice.id, "好", reply_markup=ReplyKeyboardRemove())
    assert tg.reply_keyboard(alice) is None

    with pytest.raises(AssertionError, match="messages to chat 1001"):
        await tg.wait_for_text(alice, "never sent", timeout=0.05)


async def test_get_updates_offset(tg: FakeTelegramServer, bot: Bot, alice: FakeUser) -> None:
    ids = [tg.send_text(alice, text)["update_id"] for text in ("/start", "一", "二")]

    first = await bot.get_updates()
    assert [u.update_id for u in first] == ids
    assert first[0].message is not None
    assert first[0].message.entities is not None
    assert first[0].message.entities[0].type == "bot_command"
    # Unconfirmed updates come back, e.g. to a bot restarted after a crash.
    assert [u.update_id for u in await bot.get_updates()] == ids
    assert [u.update_id for u in await bot.get_updates(limit=1)] == ids[:1]

    assert [u.update_id for u in await bot.get_updates(offset=ids[1])] == ids[1:]
    await tg.wait_confirmed(ids[0])
    assert await bot.get_updates(offset=ids[2] + 1) == []
    assert tg.pending_updates == []

    # Duplicate delivery: the same update (same update_id) arrives again.
    tg.push_raw(tg.updates[0])
    again = await bot.get_updates(offset=ids[2] + 1)
    assert [u.update_id for u in again] == ids[:1]
    assert await bot.get_updates(offset=ids[0] + 1) == []
    await tg.wait_confirmed(ids[0])
    assert tg.deliveries.count(ids[0]) == 4

    # Update types the bot did not ask for are never delivered.
    sent = await bot.send_message(alice.id, "?", reply_markup=KEYBOARD)
    press = tg.press(alice, tg.sent[-1], "ride:no")
    assert sent.message_id == tg.sent[-1].message_id
    assert await bot.get_updates(allowed_updates=["message"]) == []
    await tg.wait_confirmed(press)
    assert tg.dropped_updates == [press]


async def test_long_poll(tg: FakeTelegramServer, bot: Bot, alice: FakeUser) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await tg.wait_polling()
    update = tg.send_text(alice, "在吗")
    updates = await asyncio.wait_for(poll, timeout=5)
    assert [u.update_id for u in updates] == [update["update_id"]]
    assert not tg.polling

    # Nothing arrives: the poll ends empty when its timeout elapses.
    assert await bot.get_updates(offset=update["update_id"] + 1, timeout=1) == []


async def test_conflict_and_dropped_poller(tg: FakeTelegramServer, bot: Bot, alice: FakeUser) -> None:
    other = tg.make_bot()
    try:
        first = asyncio.create_task(bot.get_updates(timeout=30))
        await tg.wait_polling()
        with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
            await other.get_updates()

        # The first client goes away mid-poll (like a SIGKILLed process): it must not
        # keep counting as the poller.
        first.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first
        update = tg.send_text(alice, "还在吗")
        assert [u.update_id for u in await other.get_updates()] == [update["update_id"]]
    finally:
        await other.session.close()


async def test_sigkilled_poller_is_forgotten(tg: FakeTelegramServer, bot: Bot, alice: FakeUser) -> None:
    url = f"{tg.base_url}/bot{tg.token}/getUpdates?timeout=30"
    code = f"import urllib.request; urllib.request.urlopen({url!r}, timeout=60)"
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", code)
    try:
        await tg.wait_polling()
    finally:
        process.kill()
        await process.wait()
    # The dead socket alone ends the poll; no new request is needed to notice.
    await tg.wait_polling(active=False)
    update = tg.send_text(alice, "重启后")
    assert [u.update_id for u in await bot.get_updates()] == [update["update_id"]]


async def test_photo_upload_and_download(tg: FakeTelegramServer, bot: Bot, alice: FakeUser) -> None:
    content = b"\xff\xd8\xff fake jpeg " * 50
    msg = await bot.send_photo(alice.id, BufferedInputFile(content, "route.jpg"), caption="路线图")
    request = tg.requests[-1]
    assert (request.method, request.content_type) == ("sendPhoto", "multipart/form-data")
    assert request.fields["photo"].startswith("attach://")
    assert [f.data for f in request.files.values()] == [content]

    assert msg.photo is not None
    assert len(msg.photo) >= 2
    assert msg.caption == "路线图"
    assert msg.photo[-1].width > msg.photo[0].width
    assert tg.sent[-1].text == "路线图"
    file = await bot.get_file(msg.photo[-1].file_id)
    assert file.file_path
    downloaded = await bot.download(msg.photo[-1].file_id)
    assert downloaded is not None
    assert downloaded.read() == content

    again = await bot.send_photo(alice.id, msg.photo[-1].file_id)  # resend by file_id
    assert again.photo is not None
    assert again.photo[-1].file_id == msg.photo[-1].file_id
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(alice.id, "no-such-file-id")

    update = tg.send_photo(alice, b"pothole", caption="坑")
    sizes = update["message"]["photo"]
    assert sizes[-1]["width"] > sizes[0]["width"]
    for size in sizes:
        got = await bot.download(size["file_id"])
        assert got is not None
        assert got.read() == b"pothole"


async def test_form_encoded_request_is_recorded(tg: FakeTelegramServer, bot: Bot, alice: FakeUser) -> None:
    await bot.send_message(alice.id, "hi", reply_markup=KEYBOARD)
    request = tg.requests[-1]
    assert (request.method, request.http_method) == ("sendMessage", "POST")
    assert request.content_type == "application/x-www-form-urlencoded"
    assert request.fields["chat_id"] == str(alice.id)
    assert isinstance(request.fields["reply_markup"], str)
    assert json.loads(request.fields["reply_markup"]) == KEYBOARD.model_dump(exclude_none=True)
    assert request.status == 200


async def test_commands_per_language(tg: FakeTelegramServer, bot: Bot, alice: FakeUser) -> None:
    bob = tg.user(1002, "Bob", language_code="en")
    carol = tg.user(1003, "Carol", language_code="fr")
    await bot.set_my_commands([BotCommand(command="start", description="开始")], language_code="zh")
    await bot.set_my_commands([BotCommand(command="start", description="Start")], language_code="en")

    assert [c.description for c in await bot.get_my_commands(language_code="zh")] == ["开始"]
    assert tg.get_commands(language_code="en") == [{"command": "start", "description": "Start"}]
    assert set(tg.commands) == {('{"type":"default"}', "zh"), ('{"type":"default"}', "en")}
    assert tg.commands_for(alice)[0]["description"] == "开始"  # zh-hans app → zh
    assert tg.commands_for(bob)[0]["description"] == "Start"
    assert tg.commands_for(carol) == []

    private = BotCommandScopeAllPrivateChats()
    await bot.set_my_commands([BotCommand(command="help", description="帮助")], scope=private)
    assert tg.commands_for(carol) == [{"command": "help", "description": "帮助"}]
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Not Valid", description="x")])

    assert await bot.delete_my_commands(language_code="en")
    assert await bot.get_my_commands(language_code="en") == []


async def test_user_inputs_and_other_sends(tg: FakeTelegramServer, bot: Bot, alice: FakeUser) -> None:
    group = tg.group(-1001234567890, "幸福里")
    tg.send_location(alice, 31.23, 121.47)
    tg.send_contact(alice, "+8613800138000")
    tg.send_sticker(alice)
    tg.send_voice(alice)
    tg.send_text(alice, "/report@linli_test_bot 路灯坏了", chat=group)

    location, contact, sticker, voice, command = await bot.get_updates()
    assert location.message
    assert location.message.location
    assert location.message.location.latitude == 31.23
    assert contact.message
    assert contact.message.contact
    assert contact.message.contact.user_id == alice.id
    assert sticker.message
    assert sticker.message.sticker
    assert voice.message
    assert voice.message.voice
    assert command.message
    assert command.message.chat.type == "supergroup"
    assert command.message.entities
    assert command.message.entities[0].length == 22

    chat = await bot.get_chat(group.id)
    assert chat.title == "幸福里"
    assert await bot.send_chat_action(alice.id, "typing")
    assert tg.chat_actions == [(alice.id, "typing")]
    venue = await bot.send_venue(alice.id, 31.2, 121.5, "休息站", "幸福里 12 号")
    assert venue.venue is not None
    assert venue.venue.title == "休息站"
    sent_location = await bot.send_location(group.id, 31.2, 121.5)
    assert sent_location.location is not None
    shared = await bot.send_contact(alice.id, "+8613800138000", "王律师")
    assert shared.contact is not None
    assert shared.contact.first_name == "王律师"
    assert [m.method for m in tg.messages_to(group)] == ["sendLocation"]


async def test_flood_limits(tg: FakeTelegramServer, bot: Bot, alice: FakeUser) -> None:
    now = [1000.0]
    tg.clock = lambda: now[0]
    tg.enforce_limits = True
    for i in range(3):  # a short burst is fine
        await bot.send_message(alice.id, f"{i}")
    with pytest.raises(TelegramRetryAfter) as exc:
        await bot.send_message(alice.id, "one too many")
    assert exc.value.retry_after >= 1
    now[0] += exc.value.retry_after
    await bot.send_message(alice.id, "after waiting")
    assert tg.flood_violations == 1

    tg.enforce_limits = False  # still counted, but delivered
    for text in ("fast", "faster", "fastest"):
        await bot.send_message(alice.id, text)
    assert tg.flood_violations == 2
    assert tg.sent[-1].text == "fastest"


async def test_chat_quota_counts_not_time(tg: FakeTelegramServer, bot: Bot, alice: FakeUser) -> None:
    bob = tg.user(2002, "Bob")
    tg.limit_chat(alice, allow=2, retry_after=3)
    await bot.send_message(alice.id, "1")
    await bot.send_message(alice.id, "2")
    for _ in range(2):  # refused however long the bot waits: it is a count
        with pytest.raises(TelegramRetryAfter) as exc:
            await bot.send_message(alice.id, "3")
        assert exc.value.retry_after == 3
    await bot.send_message(bob.id, "others are not limited")
    tg.unlimit_chat(alice)
    await bot.send_message(alice.id, "3")
    assert [m.text for m in tg.messages_to(alice)] == ["1", "2", "3"]
    assert tg.refused(alice) == 2
    assert tg.send_log == [
        ("sent", alice.id),
        ("sent", alice.id),
        ("429", alice.id),
        ("429", alice.id),
        ("sent", bob.id),
        ("sent", alice.id),
    ]


async def test_dispatcher_round_trip(tg: FakeTelegramServer, bot: Bot, alice: FakeUser) -> None:
    dp = Dispatcher()
    ping = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="ping", callback_data="ping")]])

    @dp.message(CommandStart())
    async def start(message: Message) -> None:
        assert message.from_user is not None
        await message.answer(f"你好，{message.from_user.first_name}", reply_markup=ping)

    @dp.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}")

    @dp.callback_query(F.data == "ping")
    async def on_ping(query: CallbackQuery) -> None:
        await query.answer("pong")
        assert isinstance(query.message, Message)
        await query.message.edit_text("pong!")

    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=5))
    try:
        tg.send_text(alice, "/start")
        hello = await tg.wait_for_text(alice, "你好，Alice")
        mark = len(tg.sent)
        tg.send_text(alice, "买菜")
        echoed = await tg.wait_for_text(alice, "echo: 买菜", since=mark)
        assert echoed.index >= mark

        press = tg.press(alice, hello, "ping")
        assert (await tg.wait_callback_answer(press)).text == "pong"
        await tg.wait_for(lambda m: m.message_id == hello.message_id and m.text == "pong!")
        await tg.wait_confirmed(press)
    finally:
        await dp.stop_polling()
        await polling
    assert not tg.polling
