"""Two processes starting at once on a fresh PostgreSQL database: only one migrates."""

from __future__ import annotations

import asyncio

from alembic.script import ScriptDirectory

from storage import schema
from storage.engine import Database


async def test_concurrent_upgrades_both_succeed(postgres_url: str) -> None:
    first, second = Database(postgres_url), Database(postgres_url)
    try:
        # Both start together on an empty database, as two workers started by one deploy.
        await asyncio.gather(schema.upgrade(first), schema.upgrade(second))
        head = ScriptDirectory.from_config(schema.alembic_config(postgres_url)).get_current_head()
        assert await schema.current(first) == head
        assert await schema.current(second) == head
    finally:
        await first.dispose()
        await second.dispose()
