"""Photos people sent on Telegram, fetched for the features that keep them (getFile, then
the file URL). Registered with ``Env.photos`` at start-up; dialogs only ever see the
channel name and the file id."""

from __future__ import annotations

from bot.telegram.api import TelegramApi

# Telegram's Bot API serves files up to 20 MB; photos are far smaller.
MAX_BYTES = 20 * 1024 * 1024


class TelegramPhotos:
    def __init__(self, bot: TelegramApi) -> None:
        self.bot = bot

    async def fetch(self, file_id: str) -> bytes:
        return await self.bot.download(file_id, MAX_BYTES)
