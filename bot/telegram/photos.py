"""Photos people sent on Telegram, fetched for the features that keep them (getFile, then
the file URL). Registered with ``Env.photos`` at start-up; dialogs only ever see the
channel name and the file id."""

from __future__ import annotations

import io

from aiogram import Bot

# Telegram's Bot API serves files up to 20 MB; photos are far smaller.
MAX_BYTES = 20 * 1024 * 1024


class TelegramPhotos:
    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def fetch(self, file_id: str) -> bytes:
        file = await self.bot.get_file(file_id)
        if file.file_path is None:
            raise LookupError(f"telegram has no file path for {file_id!r}")
        if file.file_size is not None and file.file_size > MAX_BYTES:
            raise ValueError(f"file of {file.file_size} bytes")
        buffer = io.BytesIO()
        await self.bot.download_file(file.file_path, destination=buffer)
        return buffer.getvalue()
