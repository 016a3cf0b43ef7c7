"""What people type, cleaned and checked: invisible text, phone numbers inside free text."""

from __future__ import annotations

import pytest

from dialogs.validate import clean_text, mask_phones_in


@pytest.mark.parametrize(
    "raw",
    ["\u200b", "\ufeff", "\u2060\u2060", " \u200b\u200c\u200d ", "\u202e\u2066\u2069", "\u2061\u2062"],
)
def test_invisible_characters_alone_are_no_answer(raw: str) -> None:
    assert clean_text(raw, max_len=100) is None


def test_invisible_characters_are_removed_around_real_text() -> None:
    assert clean_text("\ufeff春和\u200b社区\u2060", max_len=100) == "春和社区"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("到了打13812345678", "到了打138****5678"),
        ("电话 138 1234 5678 找我", "电话 138****5678 找我"),
        ("+86-139-1234-5678", "139****5678"),
        ("8613912345678", "139****5678"),
        ("座机027-88886666", "座机027-88886666"),  # a landline is the community's, not masked
        ("订单号12345678901234", "订单号12345678901234"),  # longer digit runs are not phones
        ("3栋2单元", "3栋2单元"),
    ],
)
def test_mobile_numbers_inside_free_text_are_masked(text: str, shown: str) -> None:
    assert mask_phones_in(text) == shown
