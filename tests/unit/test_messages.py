"""Outgoing messages: JSON round trip and folding plain lines into the next message."""

from __future__ import annotations

from dialogs.messages import Ask, Choice, Outgoing, Place, coalesce


def test_json_round_trip() -> None:
    message = Outgoing(
        "你好",
        choices=[[Choice("是", "f:x:y:yes")]],
        ask=Ask.CONTACT,
        ask_label="📱",
        place=Place(30.5, 114.3, "驿站", "武汉"),
        edit_ref="12",
        remove_keyboard=True,
    )
    assert Outgoing.from_json(message.to_json()) == message


def test_plain_lines_fold_into_the_question() -> None:
    error = Outgoing("车牌号格式不对。")
    question = Outgoing("请输入车牌号。", choices=[[Choice("取消", "n:cancel")]])
    (merged,) = coalesce([error, question])
    assert merged.text == "车牌号格式不对。\n\n请输入车牌号。"
    assert merged.choices == question.choices


def test_what_must_stay_apart_stays_apart() -> None:
    buttons = [[Choice("A", "a")]]
    with_buttons = Outgoing("pick", choices=buttons)
    edit = Outgoing("edited", edit_ref="5")
    place = Outgoing("here", place=Place(1, 2, "t", "a"))
    removal = Outgoing("✓", remove_keyboard=True)
    ask = Outgoing("share", ask=Ask.LOCATION)
    assert len(coalesce([with_buttons, Outgoing("next")])) == 2  # buttons belong to their text
    assert len(coalesce([edit, Outgoing("next")])) == 2
    assert len(coalesce([Outgoing("lead"), place])) == 2
    assert len(coalesce([removal, Outgoing("q", choices=buttons)])) == 2  # one keyboard per message
    assert len(coalesce([Outgoing("lead"), ask])) == 1
    assert coalesce([removal, Outgoing("done")])[0].remove_keyboard
    assert len(coalesce([Outgoing("x" * 3000), Outgoing("y" * 2000)])) == 2  # over 4096 together
