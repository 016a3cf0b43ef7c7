"""Telegram updates → Incoming, built from real aiogram types (as parsed from Bot API JSON)."""

from __future__ import annotations

from typing import Any

import pytest
from aiogram.types import Update
from hypothesis import given
from hypothesis import strategies as st

from bot.telegram.api import InlineButton, InlineKeyboard, RemoveKeyboard, RequestKeyboard
from bot.telegram.convert import to_incoming
from bot.telegram.render import inline_keyboard, reply_keyboard, split_text
from dialogs.messages import Ask, ChatKind, Choice, Incoming, Kind, Outgoing

BOT = "linli_test_bot"
ALICE = {
    "id": 1001,
    "is_bot": False,
    "first_name": "Alice",
    "last_name": "Wang",
    "username": "alicew",
    "language_code": "en-GB",
}
PRIVATE = {"id": 1001, "type": "private", "first_name": "Alice"}
GROUP = {"id": -100123, "type": "supergroup", "title": "Drivers"}


def update(body: dict[str, Any], update_id: int = 7) -> Update:
    return Update.model_validate({"update_id": update_id, **body})


def message(chat: dict[str, Any] = PRIVATE, sender: dict[str, Any] = ALICE, **body: Any) -> Update:
    return update({"message": {"message_id": 5, "date": 1_700_000_000, "chat": chat, "from": sender, **body}})


def command(text: str, chat: dict[str, Any] = PRIVATE) -> Update:
    length = len(text.split()[0].encode("utf-16-le")) // 2
    return message(chat, text=text, entities=[{"type": "bot_command", "offset": 0, "length": length}])


def convert(u: Update) -> Incoming:
    incoming = to_incoming(u, bot_username=BOT)
    assert incoming is not None
    return incoming


def test_text_carries_sender_and_chat() -> None:
    got = convert(message(text="我要打车"))
    assert got.kind is Kind.TEXT and got.text == "我要打车"
    assert got.channel == "telegram" and got.update_id == "7" and got.update_key == "telegram:7"
    assert got.chat_id == "1001" and got.chat_kind is ChatKind.PRIVATE
    assert got.sender.external_id == "1001"
    assert got.sender.display_name == "Alice Wang"
    assert got.sender.username == "alicew" and got.sender.language_code == "en-GB"


def test_name_without_last_name() -> None:
    bob = {"id": 5, "is_bot": False, "first_name": "Bob"}
    assert convert(message(sender=bob, text="hi")).sender.display_name == "Bob"


def test_command_lower_case_with_args() -> None:
    got = convert(command("/Driver  鄂A12345 "))
    assert got.kind is Kind.COMMAND and got.command == "driver" and got.text == "鄂A12345"


def test_command_addressed_to_us_in_a_group() -> None:
    got = convert(command(f"/help@{BOT.upper()}", GROUP))
    assert got.kind is Kind.COMMAND and got.command == "help" and got.text == ""
    assert got.chat_kind is ChatKind.GROUP and got.chat_id == "-100123"


def test_command_for_another_bot_in_a_group_is_ignored() -> None:
    assert to_incoming(command("/help@other_bot", GROUP), bot_username=BOT) is None


def test_command_with_a_bot_name_in_private_is_ours() -> None:
    assert convert(command("/start@linli_old_bot")).command == "start"


def test_slash_without_command_entity_is_text() -> None:
    got = convert(message(text="/ not a command"))
    assert got.kind is Kind.TEXT and got.text == "/ not a command"


def test_command_entity_not_at_start_is_text() -> None:
    u = message(text="see /help", entities=[{"type": "bot_command", "offset": 4, "length": 5}])
    assert convert(u).kind is Kind.TEXT


def test_command_after_emoji_counts_utf16() -> None:
    # "/start" then an argument with an astral-plane emoji: offsets are UTF-16 units.
    got = convert(command("/start 😀邻里"))
    assert got.command == "start" and got.text == "😀邻里"


def test_group_chat_kinds() -> None:
    group = {"id": -42, "type": "group", "title": "Building 3"}
    assert convert(message(group, text="hi")).chat_kind is ChatKind.GROUP
    assert convert(message(GROUP, text="hi")).chat_kind is ChatKind.GROUP


def test_location_and_venue() -> None:
    got = convert(message(location={"latitude": 30.48, "longitude": 114.41}))
    assert got.kind is Kind.LOCATION and got.location is not None
    assert (got.location.latitude, got.location.longitude) == (30.48, 114.41)
    venue = {
        "location": {"latitude": 30.5, "longitude": 114.3},
        "title": "驿站",
        "address": "武汉",
    }
    got = convert(message(venue=venue, location=venue["location"]))
    assert got.kind is Kind.LOCATION and got.location is not None and got.location.latitude == 30.5


def test_own_contact_and_someone_elses() -> None:
    own = convert(message(contact={"phone_number": "+8613812345678", "first_name": "A", "user_id": 1001}))
    assert own.kind is Kind.CONTACT and own.contact is not None
    assert own.contact.phone == "+8613812345678" and own.contact.owner_external_id == "1001"
    other = convert(message(contact={"phone_number": "13900001111", "first_name": "B"}))
    assert other.contact is not None and other.contact.owner_external_id is None


def test_photo_takes_the_largest_size_and_caption() -> None:
    sizes = [
        {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 68},
        {"file_id": "large", "file_unique_id": "l", "width": 1280, "height": 960},
        {"file_id": "medium", "file_unique_id": "m", "width": 320, "height": 240},
    ]
    got = convert(message(photo=sizes, caption="井盖坏了"))
    assert got.kind is Kind.PHOTO and got.photo_ref == "large" and got.text == "井盖坏了"


@pytest.mark.parametrize(
    "body",
    [
        {
            "sticker": {
                "file_id": "s",
                "file_unique_id": "s",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            }
        },
        {"voice": {"file_id": "v", "file_unique_id": "v", "duration": 3}},
        {"document": {"file_id": "d", "file_unique_id": "d", "file_name": "a.pdf"}},
        {"video": {"file_id": "v", "file_unique_id": "v", "width": 1, "height": 1, "duration": 1}},
        {
            "animation": {
                "file_id": "a",
                "file_unique_id": "a",
                "width": 1,
                "height": 1,
                "duration": 1,
            }
        },
        {"dice": {"emoji": "🎲", "value": 3}},
        {
            "poll": {
                "id": "p",
                "question": "?",
                "options": [
                    {"persistent_id": "1", "text": "a", "voter_count": 0},
                    {"persistent_id": "2", "text": "b", "voter_count": 0},
                ],
                "total_voter_count": 0,
                "is_closed": False,
                "is_anonymous": True,
                "type": "regular",
                "allows_multiple_answers": False,
                "allows_revoting": False,
                "members_only": False,
            }
        },
    ],
    ids=["sticker", "voice", "document", "video", "animation", "dice", "poll"],
)
def test_what_linli_cannot_read_is_unsupported(body: dict[str, Any]) -> None:
    assert convert(message(**body)).kind is Kind.UNSUPPORTED


@pytest.mark.parametrize(
    "body",
    [
        {"new_chat_members": [ALICE]},
        {"left_chat_member": ALICE},
        {"new_chat_title": "Renamed"},
        {"pinned_message": {"message_id": 1, "date": 0, "chat": GROUP}},
    ],
    ids=["joined", "left", "title", "pinned"],
)
def test_service_messages_are_ignored(body: dict[str, Any]) -> None:
    assert to_incoming(message(GROUP, **body), bot_username=BOT) is None


def test_other_bots_and_channel_posts_are_ignored() -> None:
    robot = {"id": 77, "is_bot": True, "first_name": "Robot"}
    assert to_incoming(message(sender=robot, text="beep")) is None
    channel = {"id": -1009, "type": "channel"}
    post = update({"channel_post": {"message_id": 1, "date": 0, "chat": channel, "text": "x"}})
    assert to_incoming(post) is None


def test_edits_and_member_updates_are_not_messages() -> None:
    body = {"message_id": 5, "date": 0, "edit_date": 1, "chat": PRIVATE, "from": ALICE, "text": "x"}
    edited = update({"edited_message": body})
    assert to_incoming(edited) is None
    member = update(
        {
            "my_chat_member": {
                "chat": PRIVATE,
                "from": ALICE,
                "date": 0,
                "old_chat_member": {"status": "member", "user": {"id": 1, "is_bot": True, "first_name": "L"}},
                "new_chat_member": {
                    "status": "kicked",
                    "until_date": 0,
                    "user": {"id": 1, "is_bot": True, "first_name": "L"},
                },
            }
        }
    )
    assert to_incoming(member) is None


def callback(message_body: dict[str, Any], data: str | None = "a:approve:3") -> Update:
    query: dict[str, Any] = {"id": "q1", "from": ALICE, "chat_instance": "ci", "message": message_body}
    if data is not None:
        query["data"] = data
    return update({"callback_query": query}, update_id=9)


def test_button_press() -> None:
    sent = {"message_id": 12, "date": 1_700_000_000, "chat": PRIVATE, "text": "Approve?"}
    got = convert(callback(sent))
    assert got.kind is Kind.CHOICE and got.choice == "a:approve:3" and got.message_ref == "12"
    assert got.chat_id == "1001" and got.chat_kind is ChatKind.PRIVATE and got.update_id == "9"
    assert got.sender.display_name == "Alice Wang"


def test_button_under_an_inaccessible_message_still_works() -> None:
    got = convert(callback({"message_id": 3, "date": 0, "chat": GROUP}))
    assert got.kind is Kind.CHOICE and got.message_ref == "3"
    assert got.chat_id == "-100123" and got.chat_kind is ChatKind.GROUP


def test_callback_without_data_or_message_is_ignored() -> None:
    sent = {"message_id": 12, "date": 1, "chat": PRIVATE, "text": "x"}
    assert to_incoming(callback(sent, data=None)) is None
    query = {"id": "q", "from": ALICE, "chat_instance": "c", "inline_message_id": "i", "data": "x"}
    inline = update({"callback_query": query})
    assert to_incoming(inline) is None


# -- rendering helpers (pure) ----------------------------------------------------------


def test_split_prefers_paragraphs_then_lines() -> None:
    para = "甲" * 3000
    assert split_text(f"{para}\n\n{para}") == [para, para]
    line = "b" * 3000
    assert split_text(f"{line}\n{line}\n{line}") == [line, line, line]
    assert split_text("short") == ["short"]


def test_split_hard_cuts_a_single_long_word() -> None:
    parts = split_text("x" * 9000)
    assert [len(p) for p in parts] == [4096, 4096, 808]


@given(st.text(alphabet=st.sampled_from("ab邻 \n"), min_size=1, max_size=400), st.integers(5, 60))
def test_split_keeps_every_visible_character(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    assert all(0 < len(p) <= limit for p in parts)
    assert "".join(parts).replace(" ", "").replace("\n", "") == text.replace(" ", "").replace("\n", "")


def test_keyboards() -> None:
    out = Outgoing("?", choices=[[Choice("Yes", "f:x:y:yes"), Choice("No", "f:x:y:no")], []])
    assert inline_keyboard(out) == InlineKeyboard(
        ((InlineButton("Yes", "f:x:y:yes"), InlineButton("No", "f:x:y:no")),)  # the empty row is dropped
    )
    ask = reply_keyboard(Outgoing("phone?", ask=Ask.CONTACT, ask_label="📱 Share"))
    assert ask == RequestKeyboard("📱 Share", "contact")
    assert reply_keyboard(Outgoing("where?", ask=Ask.LOCATION)) == RequestKeyboard("📍", "location")
    assert reply_keyboard(Outgoing("ok", remove_keyboard=True)) == RemoveKeyboard()
    assert reply_keyboard(Outgoing("plain")) is None and inline_keyboard(Outgoing("plain")) is None
