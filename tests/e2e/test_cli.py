"""The `linli` command: migrations, demo data and the admin bootstrap tasks."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main


@pytest.fixture
def db_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("LINLI_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)  # no stray .env from the working folder
    return url


def test_db_upgrade_demo_data_and_admin(db_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade"]) == 0
    assert "schema revision: 0009" in capsys.readouterr().out
    assert main(["demo-data"]) == 0
    assert main(["demo-data"]) == 0  # idempotent
    assert main(["admin", "users"]) == 0
    listing = capsys.readouterr().out
    assert "王奶奶" in listing and "terminal:staff" in listing

    assert main(["admin", "grant", "resident", "driver"]) == 0
    assert "王奶奶: grant driver" in capsys.readouterr().out
    assert main(["admin", "users", "王奶奶"]) == 0
    assert "driver" in capsys.readouterr().out
    assert main(["admin", "revoke", "resident", "driver"]) == 0
    assert main(["admin", "grant", "nobody-like-this", "staff"]) == 1
    assert "0 people match" in capsys.readouterr().out

    assert main(["db", "downgrade", "base"]) == 0
    assert "(empty)" in capsys.readouterr().out


def test_bad_admin_ids_are_refused(db_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("LINLI_ADMINS", "12345, @someone")
    with pytest.raises(ValidationError, match="Telegram user ids"):
        main(["db", "current"])
