"""Shared fixtures: databases on SQLite and PostgreSQL, and the dialog test kit."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.settings import TelegramRuntime
from bot.telegram.api import RUNTIMES
from storage.engine import Database
from storage.schema import create_schema
from tests.fakes.telegram_api import fake_telegram  # noqa: F401  (fixture)
from tests.kit import Kit
from tests.postgres_server import PostgresAdmin, postgres_server, postgres_url  # noqa: F401

STAFF_ID = "9001"
LAYERS = ("unit", "dialogs", "storage", "e2e")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each test is marked with the folder it lives in: `pytest -m dialogs` runs those.

    Tests on PostgreSQL are also "slow": the fast loop (`pytest -m "not slow"`) runs every
    scenario once, on SQLite; CI and a plain `pytest` run them on both databases.
    """
    for item in items:
        folder = item.path.parent.name
        if folder in LAYERS:
            item.add_marker(folder)
        uses_server = {"postgres_url", "postgres_server"} & set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("postgres") is not None or uses_server:
            item.add_marker("slow")
    # A channel's second variant (python-telegram-bot as the Telegram runtime, WeChat's
    # encrypted safe mode) changes only the wire beneath the same code, which the database
    # does not meet: it runs every scenario on SQLite, and on PostgreSQL too only where a
    # test asks (crash-resume and the claim race: marker ``variants_on_postgres``).
    skipped = [
        item
        for item in items
        if _variant_on_postgres(item) and not item.get_closest_marker("variants_on_postgres")
    ]
    if skipped:
        config.hook.pytest_deselected(items=skipped)
        items[:] = [item for item in items if item not in skipped]


def _variant_on_postgres(item: pytest.Item) -> bool:
    params = getattr(getattr(item, "callspec", None), "params", {})
    variant = params.get("telegram_runtime") == "ptb" or params.get("wechat_mode") == "safe"
    return variant and "postgres" in (params.get("database_url"), params.get("schema_url"))


@pytest.fixture(scope="session")
def postgres_template(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database holding Linli's schema, built once per run; each test gets a copy."""
    server: PostgresAdmin = request.getfixturevalue("postgres_server")
    name = f"linli_template_{os.getpid()}"
    url = server.create_database(name)

    async def build() -> None:
        database = Database(url)
        try:
            await create_schema(database)
        finally:
            await database.dispose()

    asyncio.run(build())
    try:
        yield name
    finally:
        server.drop_database(name)


@pytest.fixture(params=RUNTIMES)
def telegram_runtime(request: pytest.FixtureRequest) -> TelegramRuntime:
    """Each Telegram end-to-end test using this runs on both runtimes
    (``LINLI_TELEGRAM_RUNTIME``): aiogram's Bot and python-telegram-bot's."""
    runtime: TelegramRuntime = request.param
    return runtime


# The PostgreSQL half of every two-database test carries the "postgres" marker.
BOTH = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BOTH)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test using this runs twice: on a SQLite file and on a fresh, empty PostgreSQL
    database (for tests of migrations and of `linli run`, which builds its own schema)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'linli.db'}"
    else:
        server: PostgresAdmin = request.getfixturevalue("postgres_server")
        with server.temporary_database() as url:
            yield url


@pytest.fixture(params=BOTH)
def schema_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Like ``database_url``, with Linli's schema in place: a new SQLite file gets it
    from the models, a PostgreSQL database is copied from the template built once."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'linli.db'}"
    else:
        server: PostgresAdmin = request.getfixturevalue("postgres_server")
        template: str = request.getfixturevalue("postgres_template")
        with server.temporary_database(template=template) as url:
            yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'linli.db'}"


@pytest_asyncio.fixture
async def db(schema_url: str) -> AsyncIterator[Database]:
    database = Database(schema_url)
    if database.is_sqlite:  # PostgreSQL databases are copies of the schema template
        await create_schema(database)
    try:
        yield database
    finally:
        await database.dispose()


@pytest_asyncio.fixture
async def sqlite_db(sqlite_url: str) -> AsyncIterator[Database]:
    database = Database(sqlite_url)
    await create_schema(database)
    try:
        yield database
    finally:
        await database.dispose()


@pytest_asyncio.fixture
async def kit(db: Database) -> Kit:
    """A dialog kit on both databases, with demo communities loaded."""
    return await Kit.create(db, staff_ids=[STAFF_ID])


@pytest_asyncio.fixture
async def sqlite_kit(sqlite_db: Database) -> Kit:
    return await Kit.create(sqlite_db, staff_ids=[STAFF_ID])
