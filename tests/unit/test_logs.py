"""Log set-up: JSON lines when configured, quiet libraries, text by default."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot import logs


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    chatty = {name: logging.getLogger(name).level for name in logs.CHATTY}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in chatty.items():
        logging.getLogger(name).setLevel(old)


def test_json_lines_with_extra_fields_and_exceptions() -> None:
    out = io.StringIO()
    logs.setup("INFO", "json", stream=out)
    log = logging.getLogger("linli.test")
    log.info("update handled", extra={"update_id": 42, "chat": "春和"})
    try:
        raise ValueError("bad")
    except ValueError:
        log.exception("it failed")
    logging.getLogger("alembic.runtime.migration").info("Running upgrade 0001 -> 0002")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # Alembic's chatter is held back
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "update handled" and first["level"] == "INFO"
    assert first["logger"] == "linli.test" and first["update_id"] == 42 and first["chat"] == "春和"
    assert "time" in first and "pid" in first
    assert second["level"] == "ERROR" and "ValueError: bad" in second["exc_info"]


def test_text_by_default_and_debug_lets_libraries_speak() -> None:
    out = io.StringIO()
    logs.setup("DEBUG", stream=out)
    logging.getLogger("apscheduler.scheduler").debug("Added job")
    logging.getLogger("linli").info("plain")
    text = out.getvalue()
    assert "Added job" in text and " INFO linli plain" in text
    assert not text.lstrip().startswith("{")
