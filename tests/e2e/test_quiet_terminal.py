"""The terminal chat keeps the screen for the conversation: no migration or scheduler
chatter, and Ctrl-C ends it without a traceback."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def env_for(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LINLI_LOG_LEVEL"}
    return {**env, "LINLI_DATABASE_URL": database_url, "LINLI_TELEGRAM_TOKEN": ""}


async def test_run_without_a_token_is_a_quiet_chat(database_url: str, tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        env=env_for(database_url),
        cwd=tmp_path,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(b":quit\n"), 120)
    screen = out.decode() + err.decode()
    assert "您同意吗" in screen
    for chatter in ("alembic", "apscheduler", " INFO ", "Running upgrade", "Traceback"):
        assert chatter not in screen, screen


async def test_ctrl_c_leaves_no_traceback(database_url: str, tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "chat",
        env=env_for(database_url),
        cwd=tmp_path,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    async with asyncio.timeout(120):
        while b"[1]" not in await proc.stdout.readline():
            pass
    proc.send_signal(signal.SIGINT)
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert "Traceback" not in err.decode() and "KeyboardInterrupt" not in err.decode(), err.decode()
    assert proc.returncode == 130


async def test_ctrl_c_during_start_up_stops_cleanly(database_url: str, tmp_path: Path) -> None:
    """Ctrl-C while the database is being set up (before the first screen) ends the chat
    with 130 and no traceback, as it does later."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "chat",
        env={**env_for(database_url), "LINLI_LOG_LEVEL": "INFO"},
        cwd=tmp_path,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    seen = b""
    async with asyncio.timeout(120):
        while b"loaded demo data" not in (line := await proc.stderr.readline()):
            seen += line
            assert line, seen.decode()
    proc.send_signal(signal.SIGINT)
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert "Traceback" not in err.decode() and "KeyboardInterrupt" not in err.decode(), err.decode()
    assert proc.returncode == 130
