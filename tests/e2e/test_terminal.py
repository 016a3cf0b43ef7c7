"""The terminal chat: numbered buttons, acting as other people, outbox messages printed."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

from bot.app import Linli
from bot.settings import Settings
from bot.terminal import CHANNEL, TerminalChat, TerminalTransport
from storage.outbox import OutboxItem


class NotifyingTransport(TerminalTransport):
    """Prints like the real one and says when something was delivered."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.delivered = asyncio.Event()

    async def deliver(self, item: OutboxItem) -> str | None:
        result = await super().deliver(item)
        self.delivered.set()
        return result


async def test_terminal_onboarding_and_staff_approval(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 't.db'}", _env_file=None)  # type: ignore[call-arg]
    app = Linli(settings)
    out = io.StringIO()
    chat = TerminalChat(app, person="me", language="en", out=out)
    await app.prepare()
    transport = NotifyingTransport(chat.screen, chat.name)
    await app.start({CHANNEL: transport})
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    script = [
        "1",  # I agree
        "2",  # English
        "1",  # call me by my chat name
        "chunhe",  # one clear match: 春和社区
        "3",  # 3栋
        ":contact 13812345678",
        "/driver",
        "鄂A12345",
        "white VW Lavida",
        "1",  # submit
    ]
    try:
        for line in script:
            lines.put_nowait(line)
        lines.put_nowait(None)
        await chat.run(lines)
        async with asyncio.timeout(10):
            await transport.delivered.wait()  # the application reached the staff member's screen
        text = out.getvalue()
        assert "Do you agree?" in text and "All set" in text
        assert "📨 Linli → 周网格员" in text and "鄂A12345" in text

        # Become the staff member and approve with the number shown to them.
        chat.person = "staff"
        approve = next(
            i + 1 for i, c in enumerate(chat.screen.choices["staff"]) if c.data.startswith("a:approve:")
        )
        await chat.send(chat.parse(str(approve), people=""))  # type: ignore[arg-type]
        assert "您已通过" in out.getvalue()
    finally:
        await app.stop()
