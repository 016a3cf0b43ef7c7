"""Logging set-up: plain text for people, JSON lines for log collectors.

``LINLI_LOG_FORMAT=json`` writes one JSON object a line (python-json-logger) with
``time``, ``level``, ``logger``, ``message``, the process id and anything passed as
``extra=``; exceptions arrive as one ``exc_info`` string, never as extra lines a
collector would split. Plain text is the default.

Libraries that narrate their work (Alembic's migration steps and plugin set-up,
APScheduler adding and running jobs, aiohttp's access log) are held at WARNING
unless ``LINLI_LOG_LEVEL=DEBUG``: an operator wants Linli's own lines, and the
terminal chat shares its screen with the log.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Loggers that are chatter at INFO.
CHATTY = ("alembic", "apscheduler", "aiohttp.access", "aiogram.event", "aiogram.dispatcher")
# HTTP clients that log each request's URL, which carries the bot token
# (python-telegram-bot's httpx): warnings only, at every level.
SECRET_BEARING = ("httpx", "httpcore")


def setup(level: str = "INFO", fmt: str = "text", *, stream: TextIO | None = None) -> None:
    """Configure the root logger once; safe to call again (it replaces its handler)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(process)d",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"},
                json_ensure_ascii=False,
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    quiet = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    for name in CHATTY:
        logging.getLogger(name).setLevel(quiet)
    for name in SECRET_BEARING:
        logging.getLogger(name).setLevel(logging.WARNING)
