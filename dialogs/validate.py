"""Validation of what people type: phone numbers, car plates, licence numbers, free text."""

from __future__ import annotations

import re
import unicodedata

import phonenumbers

# Province abbreviations used on mainland plates.
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# Ordinary plates: 鄂A12345; new-energy plates have six characters after the letter: 鄂AD12345.
_PLATE = re.compile(rf"^[{_PROVINCES}][A-HJ-NP-Z][A-HJ-NP-Z0-9]{{4,5}}[A-HJ-NP-Z0-9挂学警港澳]$")
_LICENCE = re.compile(r"^\d{17}$")
# Control characters, zero-width and direction-override characters, word joiners and
# the BOM: none of them is something a person meant to write.
_CONTROL = re.compile(
    r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
# A mainland mobile number inside free text: 1[3-9] and nine more digits, however spaced.
_MOBILE_IN_TEXT = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")


# Only digits and the marks people put between them: a number, not words.
_PHONE_CHARS = re.compile(r"[0-9０-９\s\-+()（）.]+")

_ID = re.compile(r"[0-9]{1,9}")


def parse_id(raw: str) -> int | None:
    """A database id from button data: ASCII digits only, small enough for any id column.

    ``str.isdigit`` accepts "²" and "٣", and huge numbers overflow the database
    drivers; forged button data must get a kind answer, not an exception.
    """
    return int(raw) if _ID.fullmatch(raw) else None


def mainland_mobile(raw: str) -> str | None:
    """A valid mainland China mobile number as +86XXXXXXXXXXX, or None."""
    text = raw.strip()
    if not text or len(text) > 30:
        return None
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        return None
    if number.country_code != 86 or not phonenumbers.is_valid_number(number):
        return None
    if phonenumbers.number_type(number) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def callable_phone(raw: str) -> str | None:
    """A number a driver can call: a mainland mobile, or a landline with its area code
    (027-87654321, (027) 8765 4321), as E.164 (+862787654321); None otherwise."""
    mobile = mainland_mobile(raw)
    if mobile is not None:
        return mobile
    text = raw.strip()
    if not text or len(text) > 30 or not _PHONE_CHARS.fullmatch(text):
        return None
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        return None
    if number.country_code != 86 or not phonenumbers.is_valid_number(number):
        return None
    if phonenumbers.number_type(number) is not phonenumbers.PhoneNumberType.FIXED_LINE:
        return None
    national = str(number.national_number)
    if len(national) < 9:  # a landline without its area code cannot be called from a mobile
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def show_phone(phone: str | None) -> str:
    """A stored number as people read it: 139 1234 5678, 027-8765 4321."""
    if not phone:
        return ""
    if not phone.startswith("+86"):  # as typed (community data): read it first
        phone = callable_phone(phone) or phone
    digits = phone[3:] if phone.startswith("+86") else phone
    if len(digits) == 11 and digits.startswith("1"):
        return f"{digits[:3]} {digits[3:7]} {digits[7:]}"
    if phone.startswith("+86") and digits[:1] != "1":  # a landline: area code, then the line
        area = 2 if digits[0] in "12" else 3
        line = digits[area:]
        return f"0{digits[:area]}-{line[:4]} {line[4:]}".rstrip()
    return phone


def looks_like_phone(text: str) -> bool:
    """A phone number or a bare number: never an address."""
    if _PHONE_CHARS.fullmatch(text.strip()):
        return True
    # A number with a word or two around it ("电话13812345678") is still no address.
    rest = _MOBILE_IN_TEXT.sub("", text)
    return rest != text and len(re.sub(r"[\W\d_]", "", rest)) < 3


def mask_phone(phone: str | None) -> str:
    """+8613812345678 → 138****5678: enough to recognise, not to dial."""
    if not phone:
        return ""
    digits = phone[3:] if phone.startswith("+86") else phone
    return f"{digits[:3]}****{digits[-4:]}" if len(digits) >= 8 else "****"


def mask_phones_in(text: str) -> str:
    """Mask every mainland mobile number written inside free text (a pickup note, a name
    typed as a number): what a group may read must not carry a full number."""
    return _MOBILE_IN_TEXT.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


def car_plate(raw: str) -> str | None:
    plate = re.sub(r"[\s·•\-.]", "", raw).upper()
    return plate if _PLATE.match(plate) else None


def lawyer_licence(raw: str) -> str | None:
    digits = re.sub(r"\s", "", raw)
    return digits if _LICENCE.match(digits) else None


def strip_controls(raw: str) -> str:
    """Remove control and direction-override characters (PostgreSQL refuses NUL in text)."""
    return _CONTROL.sub("", raw)


def clean_text(raw: str, *, max_len: int) -> str | None:
    """Normalise free text: NFC, no control or direction-override characters, trimmed.

    Returns None if nothing is left or it is longer than ``max_len``.
    """
    text = _CONTROL.sub("", unicodedata.normalize("NFC", raw)).strip()
    if not text or len(text) > max_len:
        return None
    return text
