"""Button data: one codec builds and parses every button's data from a declared shape.

Like aiogram's ``CallbackData``, without aiogram. A stateless action's button is a
small frozen dataclass declared once::

    class RateRide(ActionData, action="ride_rate"):
        ride: int
        stars: int

    RateRide(ride=17, stars=5).pack()      # "a:ride_rate:17:5"
    RateRide.unpack("17:5")                # RateRide(ride=17, stars=5)
    RateRide.unpack("17:٥")                # None: forged or outdated

Fields are ``int`` (ASCII digits, at most 9, so any id column holds them) or ``str``
(a short token of ``[A-Za-z0-9_-]``); trailing fields with defaults may be left out.
The longest possible data is computed when the class is declared, so a shape that
could exceed Telegram's 64 bytes fails at import, not when someone presses it.

Data a button carries is hostile until the server checked who may act on it: the
codec only guarantees the shape, never the permission.

The other kinds of data (``f:<flow>:<step>:<value>`` answers to a step, ``m:<flow>``
menu entries, ``n:back``/``n:cancel``) are built and parsed here too.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from typing import Any, ClassVar, Self, dataclass_transform

MAX_BUTTON_DATA = 64  # Telegram's callback_data limit, in bytes
MAX_INT_DIGITS = 9  # below 2**31: fits every id column on both databases
MAX_TOKEN = 16
# The longest value a flow step's button may carry (checked where flows are declared).
MAX_STEP_VALUE = 24

_INT = re.compile(rf"[0-9]{{1,{MAX_INT_DIGITS}}}")
_TOKEN = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_TOKEN}}}")
_STEP_VALUE = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_STEP_VALUE}}}")
_NAME = re.compile(r"[a-z][a-z0-9_]*")

BACK = "n:back"
CANCEL = "n:cancel"


class ButtonError(ValueError):
    """A shape that cannot be declared, or a value that does not fit its shape."""


def parse_int(raw: str) -> int | None:
    """An id from button data: ASCII digits only, small enough for any id column.

    ``str.isdigit`` accepts "²" and "٣", and huge numbers overflow the database
    drivers; forged data must get a kind answer, not an exception.
    """
    return int(raw) if _INT.fullmatch(raw) else None


def _fits(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and 0 <= value < 10**MAX_INT_DIGITS
    return isinstance(value, str) and _TOKEN.fullmatch(value) is not None


def _check(data: str) -> str:
    if len(data.encode()) > MAX_BUTTON_DATA:
        raise ButtonError(f"button data over {MAX_BUTTON_DATA} bytes: {data!r}")
    return data


@dataclass_transform(frozen_default=True)
class ActionData:
    """Base of every stateless action's button shape (see the module docstring)."""

    action: ClassVar[str]
    _kinds: ClassVar[tuple[tuple[str, type, bool], ...]]  # (name, int|str, has a default)

    def __init_subclass__(cls, *, action: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not _NAME.fullmatch(action):
            raise ButtonError(f"action name {action!r} must be lower_snake_case")
        dataclasses.dataclass(frozen=True)(cls)
        cls.action = action
        hints = typing.get_type_hints(cls)
        kinds: list[tuple[str, type, bool]] = []
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            kind = hints[f.name]
            if kind not in (int, str):
                raise ButtonError(f"{cls.__name__}.{f.name}: fields are int or str, not {kind}")
            has_default = f.default is not dataclasses.MISSING
            if kinds and kinds[-1][2] and not has_default:
                raise ButtonError(f"{cls.__name__}.{f.name}: fields with defaults come last")
            kinds.append((f.name, kind, has_default))
        cls._kinds = tuple(kinds)
        longest = len(f"a:{action}") + sum(
            1 + (MAX_INT_DIGITS if kind is int else MAX_TOKEN) for _, kind, _ in kinds
        )
        if longest > MAX_BUTTON_DATA:
            raise ButtonError(f"{cls.__name__} may need {longest} bytes; Telegram allows {MAX_BUTTON_DATA}")

    def pack(self) -> str:
        parts = [f"a:{self.action}"]
        values = [(getattr(self, name), kind, has_default) for name, kind, has_default in self._kinds]
        # Trailing fields still at their default are left out: shorter data, same meaning.
        while values and values[-1][2] and values[-1][0] == self._default(len(values) - 1):
            values.pop()
        for value, kind, _ in values:
            if not _fits(value, kind):
                raise ButtonError(f"{type(self).__name__}: {value!r} does not fit {kind.__name__}")
            parts.append(str(value))
        return _check(":".join(parts))

    @classmethod
    def _default(cls, index: int) -> Any:
        return dataclasses.fields(cls)[index].default  # type: ignore[arg-type]

    @classmethod
    def unpack(cls, raw: str) -> Self | None:
        """The arguments after ``a:<action>:``, or None when they do not fit the shape."""
        parts = raw.split(":") if raw else []
        required = sum(1 for _, _, has_default in cls._kinds if not has_default)
        if not required <= len(parts) <= len(cls._kinds):
            return None
        values: dict[str, Any] = {}
        for (name, kind, _), part in zip(cls._kinds, parts, strict=False):
            if kind is int:
                number = parse_int(part)
                if number is None:
                    return None
                values[name] = number
            elif _TOKEN.fullmatch(part):
                values[name] = part
            else:
                return None
        return cls(**values)


def split_action(data: str) -> tuple[str, str] | None:
    """``a:<action>:<args>`` → (action, args); None if it is not action data."""
    if not data.startswith("a:"):
        return None
    name, _, args = data[2:].partition(":")
    return name, args


def step_data(flow: str, step: str, value: str) -> str:
    """An answer to a flow step: ``f:<flow>:<step>:<value>``."""
    if not _STEP_VALUE.fullmatch(value):
        raise ButtonError(f"step value {value!r} is not a token of at most {MAX_STEP_VALUE} characters")
    return _check(f"f:{flow}:{step}:{value}")


def parse_step(data: str) -> tuple[str, str, str] | None:
    """``f:<flow>:<step>:<value>`` → (flow, step, value); None if malformed."""
    parts = data.split(":", 3)
    if len(parts) != 4 or parts[0] != "f" or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2], parts[3]


def check_step_names(flow: str, step: str) -> None:
    """Called where flows are declared: the longest answer to this step must fit."""
    if not (_NAME.fullmatch(flow) and _NAME.fullmatch(step)):
        raise ButtonError(f"flow and step names are lower_snake_case: {flow!r}, {step!r}")
    longest = len(f"f:{flow}:{step}:") + MAX_STEP_VALUE
    if longest > MAX_BUTTON_DATA:
        raise ButtonError(f"answers to {flow}.{step} may need {longest} bytes")


def menu_data(flow: str) -> str:
    return _check(f"m:{flow}")


def parse_menu(data: str) -> str | None:
    return data[2:] if data.startswith("m:") else None


def prefixed_id(value: str | None, prefix: str) -> int | None:
    """A step value like ``u17`` (prefix "u", id 17) → 17; None if it is not one."""
    if value is None or not value.startswith(prefix):
        return None
    return parse_int(value[len(prefix) :])
