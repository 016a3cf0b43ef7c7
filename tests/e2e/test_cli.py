"""The `linli` command: migrations, demo data and the admin bootstrap tasks."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main


def _head() -> str:
    """The newest migration, whichever it is."""
    from alembic.script import ScriptDirectory

    from storage.schema import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


@pytest.fixture
def db_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("LINLI_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)  # no stray .env from the working folder
    return url


def test_db_upgrade_demo_data_and_admin(db_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade"]) == 0
    assert f"schema revision: {_head()}" in capsys.readouterr().out
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


def test_revoking_an_env_admin_sticks_and_is_audited(
    db_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """LINLI_ADMINS makes people staff, but `linli admin revoke` is recorded and wins
    (it used to be undone by the person's next message); grant gives it back."""
    import asyncio

    from sqlalchemy import select
    from sqlmodel import col

    from dialogs.features import FEATURES
    from handlers.entry import Handler
    from handlers.registry import Registry
    from storage.engine import Database
    from storage.models import AuditEntry
    from tests.kit import Kit

    monkeypatch.setenv("LINLI_ADMINS", "4242")
    assert main(["db", "upgrade"]) == 0
    assert main(["demo-data"]) == 0

    async def talk(text: str) -> str:
        db = Database(db_env)
        try:
            kit = Kit(db, Handler(db, Registry.build(FEATURES), staff_ids=["4242"]))
            boss = kit.person("4242", "主任")
            if not (await boss.data()).onboarded:
                await kit.onboard(boss)
            await boss.send(text)
            return boss.text()
        finally:
            await db.dispose()

    async def audit_rows() -> list[tuple[str, str]]:
        db = Database(db_env)
        try:
            async with db.transaction() as session:
                rows = await session.execute(
                    select(col(AuditEntry.action), col(AuditEntry.detail)).order_by(col(AuditEntry.id))
                )
                return [(a, d) for a, d in rows.all() if a.startswith("admin_")]
        finally:
            await db.dispose()

    assert "没有待审核" in asyncio.run(talk("/pending"))  # staff from the environment
    capsys.readouterr()
    assert main(["admin", "revoke", "4242", "staff"]) == 0
    assert "LINLI_ADMINS" in capsys.readouterr().out
    assert "只有相应身份" in asyncio.run(talk("/pending"))  # the revocation sticks
    assert "只有相应身份" in asyncio.run(talk("/pending"))
    assert main(["admin", "grant", "4242", "staff"]) == 0
    assert "没有待审核" in asyncio.run(talk("/pending"))
    actions = asyncio.run(audit_rows())
    assert [a for a, _ in actions] == ["admin_revoke:staff", "admin_grant:staff"]
    assert all(d.startswith("by ") and "linli admin" in d for _, d in actions)
