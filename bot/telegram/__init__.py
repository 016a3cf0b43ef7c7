"""The Telegram channel: updates in, channel-neutral Incoming; Outgoing back out.

- ``api``: the Bot API calls Linli makes (``TelegramApi``), in plain values; ``errors``:
  what their failures mean. ``runtime_aiogram`` and ``runtime_ptb`` implement them on
  aiogram's and python-telegram-bot's ``Bot`` (``LINLI_TELEGRAM_RUNTIME``).
- ``convert``: Update → Incoming (pure, no I/O).
- ``render``: Outgoing → Bot API calls (keyboards, venues, photos, edits, long texts).
- ``transport``: the outbox sender's Transport, mapping Telegram errors to outcomes.
- ``runner``: start-up, command menus and the crash-safe long-polling loop; ``webhook``:
  the same handling behind a webhook.
"""

CHANNEL = "telegram"
