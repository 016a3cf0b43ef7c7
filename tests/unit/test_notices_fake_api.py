"""The fake Bot API's opt-in Telegram limits, which the notices tests and bench rely on."""

from __future__ import annotations

import pytest
from aiogram.exceptions import TelegramForbiddenError, TelegramRetryAfter

from tests.fakes.telegram_api import FakeTelegramServer


async def test_telegram_limits_mode_answers_429_over_30_per_second_and_1_per_chat() -> None:
    """The 31st message within a second, or a second message to one chat within a
    second, gets 429 with retry_after; a blocked user gets 403."""
    async with FakeTelegramServer() as tg:
        frozen = [0.0]
        tg.telegram_limits()
        tg.clock = lambda: frozen[0]
        people = [tg.user(5000 + i, f"P{i}") for i in range(32)]
        tg.block(people[31], notify=False)
        bot = tg.make_bot()
        try:
            for person in people[:30]:
                await bot.send_message(person.id, "hi")
            with pytest.raises(TelegramRetryAfter) as over:
                await bot.send_message(people[30].id, "hi")
            assert over.value.retry_after >= 1
            frozen[0] = 1.0
            await bot.send_message(people[30].id, "hi")
            with pytest.raises(TelegramRetryAfter):
                await bot.send_message(people[30].id, "again")  # 1 per second per chat
            with pytest.raises(TelegramForbiddenError):
                await bot.send_message(people[31].id, "hi")
            assert tg.refusals() == 2
        finally:
            await bot.session.close()
