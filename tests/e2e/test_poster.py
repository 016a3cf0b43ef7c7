"""`linli admin poster`: the signed deep link for a community's poster and its QR code."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from bot import deeplinks
from bot.settings import Settings

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def linli(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *args,
        env={**os.environ, **env},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_poster_prints_a_signed_link_and_writes_a_qr_code(database_url: str, tmp_path: Path) -> None:
    env = {"LINLI_DATABASE_URL": database_url, "LINLI_LINK_SECRET": "keep-me", "LINLI_TELEGRAM_TOKEN": ""}
    assert (await linli("demo-data", env=env, cwd=tmp_path))[0] == 0
    code, out = await linli(
        "admin", "poster", "春和社区", "--bot", "@linli_bot", "-o", "p.png", env=env, cwd=tmp_path
    )
    assert code == 0, out
    link = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("春和社区: "))
    assert link.startswith("https://t.me/linli_bot?start=c")
    payload = link.rsplit("=", 1)[1]
    key = deeplinks.link_key(Settings(link_secret="keep-me"))  # type: ignore[arg-type]
    community_id = deeplinks.verify(key, payload)
    assert community_id is not None and len(payload) <= 64
    assert deeplinks.start_text(key, payload) == f"community:{community_id}"
    assert deeplinks.start_text(key, payload[:-1] + ("A" if payload[-1] != "A" else "B")) == ""
    assert "https://t.me/linli_bot?startgroup=drivers" in out
    png = (tmp_path / "p.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")

    code, out = await linli("admin", "poster", "nowhere-at-all", "--bot", "linli_bot", env=env, cwd=tmp_path)
    assert code == 1 and "0 communities match" in out
    code, out = await linli(
        "admin",
        "poster",
        "春和社区",
        "--bot",
        "linli_bot",
        env={**env, "LINLI_LINK_SECRET": ""},
        cwd=tmp_path,
    )
    assert code == 1 and "LINLI_LINK_SECRET" in out
