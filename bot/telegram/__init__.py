"""The Telegram channel: aiogram updates in, channel-neutral Incoming; Outgoing back out.

- ``convert``: Update → Incoming (pure, no I/O).
- ``render``: Outgoing → Bot API calls (keyboards, venues, photos, edits, long texts).
- ``transport``: the outbox sender's Transport, mapping Telegram errors to outcomes.
- ``runner``: start-up, command menus and the crash-safe long-polling loop.
"""

CHANNEL = "telegram"
