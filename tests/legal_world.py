"""Shared set-up for the legal tests: a clock, a lawyer with published hours."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

from dialogs.legal.cards import LOCAL
from storage import legal, users
from storage.data import Role, UserData
from storage.engine import Database
from storage.legal import Place, SlotData


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def monday_morning() -> datetime:
    """A Monday 08:00 in Wuhan, next week: every slot of the week is ahead."""
    today = datetime.now(LOCAL).date()
    monday = today + timedelta(days=7 - today.weekday())
    return datetime.combine(monday, time(8, 0), tzinfo=LOCAL).astimezone(UTC)


async def person(
    db: Database, external_id: str, name: str, *, role: Role | None = None, lang: str = "zh"
) -> UserData:
    async with db.transaction() as session:
        user = await users.ensure_user(
            session, channel="telegram", external_id=external_id, chat_id=external_id, client_language=lang,
            display_name=name,
        )  # fmt: skip
        if role is not None:
            await users.grant_role(session, user.id, role)
        # The name as the chat client gave it (stored on first message in real use).
        return replace(user, display_name=name)


async def slot(db: Database, lawyer: UserData, starts_at: datetime, *, seats: int = 3) -> SlotData:
    async with db.transaction() as session:
        await legal.ensure_slots(
            session,
            [
                legal.NewSlot(
                    lawyer.id,
                    None,
                    starts_at,
                    starts_at + timedelta(minutes=30),
                    seats,
                    Place.STATION,
                    "春和社区春芽小站",
                )
            ],
        )
        found = [
            s for s in await legal.open_slots(session, start=starts_at, end=starts_at + timedelta(seconds=1))
        ]
    (made,) = [s for s in found if s.lawyer_user_id == lawyer.id]
    return made


def request(
    user: UserData, *, party: str = "某某物流公司", desc: str = "老板拖欠三个月工资"
) -> legal.Request:
    return legal.Request(user.id, user.display_name, "wages", desc, party)
