"""What operators watch, scraped after a real conversation: /metrics counts what happened,
/healthz tells the database and the lead; command menus follow a role granted and revoked
(as `linli admin grant|revoke` does from another process) without a restart."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlmodel import col

from bot.telegram import menus
from storage import users
from storage.data import Role
from storage.models import OutboxMessage
from tests.conftest import STAFF_ID
from tests.e2e.test_telegram_e2e import (
    Client,
    Linked,
    apply_as_driver,
    decision_data,
    linli_on,
    onboard_en,
    onboard_zh,
    settings_for,
)
from tests.e2e.test_webhook import free_port
from tests.fakes.telegram_api import FakeTelegramServer

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest_asyncio.fixture
async def watched(
    fake_telegram: FakeTelegramServer, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Linked, str]]:
    monkeypatch.setattr(menus, "SYNC_EVERY", 0.2)  # `linli admin` runs in another process
    port = free_port()
    settings = settings_for(fake_telegram, database_url).model_copy(
        update={"ops_listen": f"127.0.0.1:{port}"}
    )
    async with linli_on(fake_telegram, settings) as linked:
        yield linked, f"http://127.0.0.1:{port}"


async def scrape(base: str) -> Samples:
    async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def kind_of(update: dict[str, Any]) -> str:
    if "callback_query" in update:
        return "choice"
    message = update["message"]
    if "contact" in message:
        return "contact"
    return "command" if message.get("text", "").startswith("/") else "text"


async def wait_menu(tg: FakeTelegramServer, user: Any, has_pending: bool) -> None:
    async with asyncio.timeout(10):
        while ("pending" in {c["command"] for c in tg.commands_for(user)}) != has_pending:  # noqa: ASYNC110 -- menus are state, not events
            await asyncio.sleep(0.05)


async def test_metrics_after_a_conversation(watched: tuple[Linked, str]) -> None:
    linked, base = watched
    tg, app = linked.tg, linked.app
    staff = Client(tg, tg.user(int(STAFF_ID), "Staff", language_code="zh-hans"))
    bob = Client(tg, tg.user(1002, "Bob", language_code="en"))
    await onboard_zh(staff)
    await onboard_en(bob)
    # Residents' commands in private chats; the staff member's own menu in their chat.
    assert "pending" in {c["command"] for c in tg.commands_for(staff.user)}
    assert "pending" not in {c["command"] for c in tg.commands_for(bob.user)}
    group = tg.group(-100777, "Drivers")
    assert tg.commands_for(bob.user, group) == []

    # Bob applies; staff hears of it through the outbox and approves; Bob is told.
    await apply_as_driver(bob, "鄂A12345")
    notice = await tg.wait_for_text(staff.user, "鄂A12345")
    since = len(tg.sent)
    tg.press(staff.user, notice, decision_data(notice))
    await tg.wait_for_text(bob.user, "Congratulations", since=since)

    # Made staff from the command line (another process): his menu follows, and back.
    async with app.db.transaction() as session:
        bob_id = (await linked.user(bob.user)).id
        await users.grant_role(session, bob_id, Role.STAFF)
    await wait_menu(tg, bob.user, has_pending=True)
    async with app.db.transaction() as session:
        await users.revoke_role(session, bob_id, Role.STAFF)
    await wait_menu(tg, bob.user, has_pending=False)

    await app.jobs.run("housekeeping", "")
    for update in tg.updates:
        await tg.wait_confirmed(update)
    telegram = select(OutboxMessage).where(col(OutboxMessage.channel) == "telegram")
    async with asyncio.timeout(10):
        while True:  # (the demo's terminal staff also heard of the application: not ours)
            async with app.db.transaction() as session:
                rows = (await session.execute(telegram)).scalars().all()
            if not any(r.status == "pending" for r in rows):
                break
            await asyncio.sleep(0.05)

    samples = await scrape(base)
    # Updates by kind, exactly as the people sent them.
    for kind, n in Counter(kind_of(u) for u in tg.updates).items():
        assert value(samples, "linli_updates_total", channel="telegram", kind=kind) == n, kind
    handled = value(samples, "linli_update_handling_seconds_count", channel="telegram")
    assert handled == len(tg.updates)
    assert value(samples, "linli_update_errors_total", channel="telegram") == 0
    # Every message the bot created was a direct reply or an outbox delivery.
    outbox_sent = Counter(r.kind for r in rows if r.status == "sent")
    assert outbox_sent, rows
    for kind, n in outbox_sent.items():
        sent = value(samples, "linli_outbox_messages_total", channel="telegram", kind=kind, outcome="sent")
        assert sent == n, kind
    replies = value(samples, "linli_replies_total", channel="telegram", outcome="sent")
    created = sum(1 for r in tg.requests if r.method.startswith("send") and r.status == 200)
    edits = sum(1 for r in tg.requests if r.method.startswith("edit") and r.status == 200)
    assert created <= replies + sum(outbox_sent.values()) <= created + edits
    assert value(samples, "linli_rate_limited_total", channel="telegram", where="reply") == 0
    assert value(samples, "linli_job_runs_total", runner="housekeeping", outcome="ok") == 1
    assert value(samples, "linli_leader") == 1
    assert value(samples, "linli_database_up") == 1
    assert value(samples, "linli_outbox_backlog") == 0
    assert value(samples, "linli_outbox_oldest_pending_seconds") == 0

    async with aiohttp.ClientSession() as http, http.get(f"{base}/healthz") as response:
        assert response.status == 200
        health = await response.json()
    assert health == {
        "status": "ok",
        "database": "ok",
        "leader": True,
        "outbox_pending": 0,
        "outbox_oldest_pending_seconds": None,
    }


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_healthz_says_so_when_the_database_is_gone(
    watched: tuple[Linked, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    linked, base = watched

    @asynccontextmanager
    async def unreachable() -> AsyncIterator[None]:
        raise ConnectionRefusedError("the database is down")
        yield

    monkeypatch.setattr(linked.app.db, "transaction", unreachable)
    async with aiohttp.ClientSession() as http, http.get(f"{base}/healthz") as response:
        body = await response.json()
        assert response.status == 503, body
    assert body["status"] == "unavailable" and body["database"] == "unreachable"
    samples = await scrape(base)
    assert value(samples, "linli_database_up") == 0
