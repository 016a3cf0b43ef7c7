"""Dialog test kit: people who send messages straight into the handler (no transport).

Shaped like aiogram_dialog's BotClient: ``await alice.send("/start")``,
``await alice.click("同意")``. Replies are collected; messages queued for others
are read back from the outbox.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import String, cast, select, update
from sqlmodel import col

from dialogs.feature import Env
from dialogs.features import FEATURES
from dialogs.messages import (
    ChatKind,
    Contact,
    Incoming,
    Kind,
    Location,
    Outgoing,
    Sender,
)
from handlers.entry import Handler
from handlers.registry import Registry
from storage import demo, users
from storage.data import UserData
from storage.engine import Database
from storage.models import OutboxMessage

_update_ids = itertools.count(1)


@dataclass
class Person:
    kit: Kit
    external_id: str
    name: str
    language_code: str | None = "zh-hans"
    chat_id: str | None = None
    chat_kind: ChatKind = ChatKind.PRIVATE
    channel: str = "telegram"
    replies: list[Outgoing] = field(default_factory=list)  # the last answer
    history: list[Outgoing] = field(default_factory=list)  # every answer

    @property
    def sender(self) -> Sender:
        return Sender(
            external_id=self.external_id,
            display_name=self.name,
            username=None,
            language_code=self.language_code,
        )

    def incoming(self, kind: Kind, **fields: object) -> Incoming:
        return Incoming(
            channel=self.channel,
            sender=self.sender,
            chat_id=self.chat_id or self.external_id,
            chat_kind=self.chat_kind,
            kind=kind,
            update_id=str(next(_update_ids)),
            **fields,  # type: ignore[arg-type]
        )

    async def deliver(self, incoming: Incoming) -> list[Outgoing]:
        self.replies = await self.kit.handler.handle(incoming)
        self.history.extend(self.replies)
        return self.replies

    async def send(self, text: str) -> list[Outgoing]:
        if text.startswith("/"):
            command, _, args = text[1:].partition(" ")
            return await self.deliver(self.incoming(Kind.COMMAND, command=command.lower(), text=args))
        return await self.deliver(self.incoming(Kind.TEXT, text=text))

    async def press(self, data: str, *, message_ref: str | None = "1") -> list[Outgoing]:
        """Press a button by its data, whether or not it is on screen (forgeries too)."""
        return await self.deliver(self.incoming(Kind.CHOICE, choice=data, message_ref=message_ref))

    async def click(self, label: str) -> list[Outgoing]:
        """Press the button whose label contains ``label`` in the last answer."""
        for message in reversed(self.replies):
            for choice in message.all_choices():
                if label in choice.label:
                    return await self.press(choice.data)
        raise AssertionError(f"no button {label!r} in {self.texts()} / {self.buttons()}")

    async def share_location(self, latitude: float, longitude: float) -> list[Outgoing]:
        return await self.deliver(self.incoming(Kind.LOCATION, location=Location(latitude, longitude)))

    async def share_contact(self, phone: str, *, own: bool = True) -> list[Outgoing]:
        owner = self.external_id if own else "someone-else"
        return await self.deliver(
            self.incoming(Kind.CONTACT, contact=Contact(phone=phone, owner_external_id=owner))
        )

    async def send_unsupported(self) -> list[Outgoing]:
        return await self.deliver(self.incoming(Kind.UNSUPPORTED))

    def texts(self) -> list[str]:
        return [m.text for m in self.replies]

    def text(self) -> str:
        return "\n".join(self.texts())

    def buttons(self) -> list[str]:
        return [c.label for m in self.replies for c in m.all_choices()]

    async def data(self) -> UserData:
        async with self.kit.db.transaction() as session:
            return await users.ensure_user(
                session,
                channel=self.channel,
                external_id=self.external_id,
                chat_id=self.external_id,
                client_language=self.language_code,
            )

    async def inbox(self) -> list[Outgoing]:
        """Messages queued for this person through the outbox (notifications)."""
        return [m for chat, m in await self.kit.outbox() if chat == self.external_id]


class Kit:
    def __init__(self, db: Database, handler: Handler) -> None:
        self.db = db
        self.handler = handler

    @classmethod
    async def create(
        cls,
        db: Database,
        *,
        staff_ids: Iterable[str] = (),
        registry: Registry | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> Kit:
        async with db.transaction() as session:
            await demo.load(session)
        env = Env(clock=clock) if clock is not None else Env()
        handler = Handler(db, registry or Registry.build(FEATURES), env=env, staff_ids=staff_ids)
        return cls(db, handler)

    def person(self, external_id: str, name: str = "", *, lang: str | None = "zh-hans") -> Person:
        return Person(self, external_id, name or f"User {external_id}", language_code=lang)

    async def outbox(self) -> list[tuple[str, Outgoing]]:
        async with self.db.transaction() as session:
            rows = (await session.execute(select(OutboxMessage).order_by(col(OutboxMessage.id)))).scalars()
            return [(r.chat_id, Outgoing.from_json(r.payload)) for r in rows]

    async def deliver_outbox(self) -> None:
        """Mark every pending outbox row delivered, as the sender would, with the row id as
        the platform's message id (so buttons can be pressed "on" that message)."""
        async with self.db.transaction() as session:
            await session.execute(
                update(OutboxMessage)
                .where(col(OutboxMessage.status) == "pending")
                .values(status="sent", sent_message_id=cast(col(OutboxMessage.id), String))
            )

    async def post_ref(self, ride_id: int) -> str:
        """The message id of the ride's newest post in its driver group (delivering it first)."""
        await self.deliver_outbox()
        async with self.db.transaction() as session:
            ref = (
                await session.execute(
                    select(col(OutboxMessage.sent_message_id))
                    .where(col(OutboxMessage.dedupe_key).startswith(f"ride:{ride_id}:post:"))
                    .order_by(col(OutboxMessage.id).desc())
                    .limit(1)
                )
            ).scalar_one()
        assert ref is not None
        return str(ref)

    async def onboard(self, person: Person, *, lang: str = "zh", phone: str | None = None) -> None:
        """Walk a person through onboarding quickly (春和社区, 3栋)."""
        await person.send("/start")
        await person.press("f:onboarding:consent:yes")
        await person.press(f"f:onboarding:language:{lang}")
        await person.press("f:onboarding:name:keep")  # the chat name, as they are addressed
        await person.send("春和")  # one clear match: picked at once
        await person.send("3栋")
        if phone:
            await person.send(phone)
        else:
            await person.press("f:onboarding:phone:skip")
        assert (await person.data()).onboarded, person.text()
