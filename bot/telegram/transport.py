"""The outbox sender's Transport for Telegram: deliver one item, or say why not."""

from __future__ import annotations

import logging

from bot.telegram import render
from bot.telegram.api import TelegramApi
from bot.telegram.errors import BadRequest, ChatMigrated, EntityTooLarge, Forbidden, RetryAfter
from dialogs.messages import Outgoing
from scheduler.delivery import PermanentFailure, RecipientGone, RetryLater
from storage.outbox import OutboxItem

log = logging.getLogger("linli.telegram")

# 400s that mean the chat itself is unreachable, not that the message is wrong.
_GONE_400 = ("chat not found", "user not found", "peer_id_invalid", "group chat was deactivated")


class TelegramTransport:
    """Renders an outbox item into its chat; network errors propagate (retried by the sender)."""

    def __init__(self, bot: TelegramApi) -> None:
        self.bot = bot

    async def deliver(self, item: OutboxItem) -> str | None:
        try:
            chat_id = int(item.chat_id)
        except ValueError:
            raise PermanentFailure(f"not a Telegram chat id: {item.chat_id!r}") from None
        try:
            ids = await render.send(self.bot, chat_id, [Outgoing.from_dict(item.payload)])
        except RetryAfter as e:
            raise RetryLater(e.retry_after) from e
        except Forbidden as e:  # blocked, deactivated, kicked from the group
            raise RecipientGone(e.message) from e
        except ChatMigrated as e:
            # The group became a supergroup with a new id: this one takes no more messages.
            raise RecipientGone(f"group moved to {e.new_chat_id}") from e
        except BadRequest as e:
            if any(e.mentions(marker) for marker in _GONE_400):
                raise RecipientGone(e.message) from e
            raise PermanentFailure(e.message) from e
        except EntityTooLarge as e:  # retrying won't help
            raise PermanentFailure(e.message) from e
        # The id of the last part: the one carrying the buttons, which later edits target.
        return str(ids[-1]) if ids else None
