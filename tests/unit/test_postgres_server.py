"""The throwaway PostgreSQL server fixtures: start, isolate tests, skip or fail honestly."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import tests.postgres_server as pg

# Until tests/conftest.py re-exports the fixtures they are imported here; pytest injects them
# as parameters of the same name, which ruff reports as redefinitions (F811) on the tests.
from tests.postgres_server import postgres_server, postgres_url  # noqa: F401

BOGUS_SEARCH_PATH = ["/nonexistent/linli/postgresql/*/bin"]


@pytest.mark.postgres
async def test_connects_and_reports_version(postgres_url: str) -> None:  # noqa: F811
    assert postgres_url.startswith("postgresql+asyncpg://")
    engine = create_async_engine(postgres_url)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
            version = (await conn.execute(text("SHOW server_version"))).scalar_one()
            assert int(version.split(".")[0]) >= 13  # DROP DATABASE ... WITH (FORCE)
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_databases_are_isolated(
    postgres_server: pg.PostgresAdmin,  # noqa: F811
    postgres_url: str,  # noqa: F811
) -> None:
    # A second database made the same way the postgres_url fixture makes its own.
    with postgres_server.temporary_database() as other_url:
        assert other_url != postgres_url
        first = create_async_engine(postgres_url)
        second = create_async_engine(other_url)
        try:
            async with first.begin() as conn:
                await conn.execute(text("CREATE TABLE marker (id integer PRIMARY KEY)"))
                await conn.execute(text("INSERT INTO marker VALUES (1)"))
            async with first.connect() as conn:
                assert (await conn.execute(text("SELECT count(*) FROM marker"))).scalar_one() == 1
            async with second.connect() as conn:
                found = await conn.execute(text("SELECT to_regclass('public.marker')"))
                assert found.scalar_one() is None
        finally:
            await first.dispose()
            await second.dispose()


@pytest.mark.postgres
def test_server_does_not_run_as_root(postgres_server: pg.PostgresAdmin) -> None:  # noqa: F811
    if not isinstance(postgres_server, pg.PostgresServer):
        pytest.skip("external server")
    assert os.stat(postgres_server.data_dir).st_uid != 0


@pytest.mark.postgres
def test_second_server_starts_beside_the_first_and_cleans_up(
    postgres_server: pg.PostgresAdmin,  # noqa: F811
) -> None:
    bindir = pg.find_pg_bindir()
    if bindir is None:
        pytest.skip("external server without local binaries")
    server = pg.PostgresServer(bindir)
    server.start()
    try:
        base_dir = server.base_dir
        assert base_dir is not None
        assert base_dir.is_dir()
        if isinstance(postgres_server, pg.PostgresServer):
            assert server.port != postgres_server.port
            assert base_dir != postgres_server.base_dir
        url = server.create_database("linli_second")
        assert url.endswith(f"@127.0.0.1:{server.port}/linli_second")
    finally:
        server.stop()
    assert not base_dir.exists()
    server.stop()  # idempotent


def test_finder_returns_none_for_a_bogus_search_path() -> None:
    assert pg.find_pg_bindir(BOGUS_SEARCH_PATH) is None


def test_missing_postgres_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(pg.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL not installed"):
        pg.locate_pg_bindir_or_skip(BOGUS_SEARCH_PATH)


def test_missing_postgres_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(pg.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL not installed"):
        pg.locate_pg_bindir_or_skip(BOGUS_SEARCH_PATH)


def test_external_dsn_gives_async_urls() -> None:
    server = pg.ExternalPostgres("postgresql+asyncpg://linli:secret@db.invalid:5433/postgres")
    assert server.admin_dsn == "postgresql://linli:secret@db.invalid:5433/postgres"
    assert server.url_for("t1") == "postgresql+asyncpg://linli:secret@db.invalid:5433/t1"


def test_unsafe_database_names_are_refused() -> None:
    # Checked before any connection is made, so no server is needed.
    server = pg.ExternalPostgres("postgresql://postgres@127.0.0.1:1/postgres")
    with pytest.raises(ValueError, match="unsafe database name"):
        server.create_database('x"; DROP DATABASE postgres; --')
