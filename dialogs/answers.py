"""The typed-answer step: ask a question, read the typed text with a parser, keep it.

Like aiogram_dialog's ``TextInput(type_factory=...)``: one declaration instead of an
ask/handle pair per question. Button presses and non-text messages are not answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from dialogs.core import Context, Done, Next, Result, Retry, Step
from dialogs.messages import Kind
from dialogs.validate import clean_text

T = TypeVar("T")


def text(*, max_len: int, min_len: int = 1) -> Callable[[str], str | None]:
    """A parser for free text: cleaned (see validate.clean_text), within these lengths."""

    def read(raw: str) -> str | None:
        value = clean_text(raw, max_len=max_len)
        return value if value is not None and len(value) >= min_len else None

    return read


def text_step(
    name: str,
    question: str,
    *,
    read: Callable[[str], T | None],
    error: str,
    save: str | Callable[[Context, T], None],
    then: str | None,
    fields: Callable[[Context], dict[str, Any]] | None = None,
    can_go_back: bool = True,
) -> Step:
    """A step asking ``question`` (a catalog key) and keeping what ``read`` makes of the
    answer under ``ctx.data[save]`` (or through ``save(ctx, value)``); ``error`` is said
    when it cannot be read. ``then`` is the next step (None ends the flow)."""

    async def ask(ctx: Context) -> None:
        ctx.say(ctx.t(question, **(fields(ctx) if fields else {})))

    async def handle(ctx: Context) -> Result:
        value = read(ctx.incoming.text) if ctx.incoming.kind is Kind.TEXT and ctx.value is None else None
        if value is None:
            return Retry(error)
        if isinstance(save, str):
            ctx.data[save] = value
        else:
            save(ctx, value)
        return Next(then) if then is not None else Done()

    return Step(name, ask, handle, can_go_back=can_go_back, goes_to=(then,) if then else ())
