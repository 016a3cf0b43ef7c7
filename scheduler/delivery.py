"""The contract between the outbox sender and a channel: deliver one item, or say why not.

A channel's Transport turns its platform's errors into these exceptions:

- ``RetryLater(seconds)``: the platform asked us to wait (Telegram 429 ``retry_after``);
  ``all_chats=True`` when the wait applies to the whole bot, not just this chat.
- ``RecipientGone(reason)``: the person blocked the bot, was deactivated, the bot was
  kicked, or the chat does not exist (Telegram 403, 400 "chat not found").
  Nothing more is sent to that chat.
- ``PermanentFailure(reason)``: the message itself is wrong (other 400s); retrying
  would fail again.
- any other ``Exception``: transient (network, 5xx); retried with backoff.

A ``BaseException`` that is not an ``Exception`` (cancellation, shutdown) is not an
outcome: the item stays pending and is delivered again later.
"""

from __future__ import annotations

from typing import Protocol

from storage.outbox import OutboxItem


class Transport(Protocol):
    async def deliver(self, item: OutboxItem) -> str | None:
        """Send the item; return the platform's message id when it has one."""
        ...


class DeliveryError(Exception):
    """Base of the failures a Transport reports."""


class RetryLater(DeliveryError):
    def __init__(self, seconds: float, *, all_chats: bool = False) -> None:
        super().__init__(f"retry after {seconds:g}s" + (" (whole bot)" if all_chats else ""))
        self.seconds = seconds
        self.all_chats = all_chats


class RecipientGone(DeliveryError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PermanentFailure(DeliveryError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
