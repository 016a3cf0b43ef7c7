"""Ctrl-C in the terminal chat is not left to asyncio's main-task cancellation."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from bot import terminal


async def test_ctrl_c_ends_the_chat_even_when_a_cancellation_is_absorbed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On Python 3.11 a cancellation that arrives as an awaited call completes can be
    absorbed (asyncio.wait_for), and the chat would go on waiting for input: Ctrl-C must
    still end it, and the app must still stop."""
    started, absorbed = asyncio.Event(), asyncio.Event()

    async def stubborn_chat(_app: object, _person: str, _language: str | None) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            absorbed.set()  # swallowed, as that race does
        await asyncio.Event().wait()  # and back to waiting for a line

    class App:
        stopped = False

        async def stop(self) -> None:
            App.stopped = True

    monkeypatch.setattr(terminal, "_chat", stubborn_chat)
    running = asyncio.create_task(terminal.run_terminal(App(), person="me", language="zh"))  # type: ignore[arg-type]
    await started.wait()
    os.kill(os.getpid(), signal.SIGINT)  # the loop's handler takes it, not pytest
    assert await asyncio.wait_for(running, 30) is True
    assert absorbed.is_set() and App.stopped
