"""Database tables. Dialogs never see these rows: storage functions convert them to
the plain objects in ``storage.data``.

Times are timezone-aware and stored in UTC (SQLModel's UTCDateTime: timestamptz on
PostgreSQL, UTC text on SQLite); people see Asia/Shanghai.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Community(SQLModel, table=True):
    __tablename__ = "communities"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=100)
    # Pinyin (full syllables and initials) so "chunhe" and "ch" find 春和社区.
    pinyin: str = Field(default="", max_length=400)
    district: str = Field(default="", max_length=100)
    street: str = Field(default="", max_length=100)
    latitude: float | None = None
    longitude: float | None = None
    # The English name, where one is in use (shown on English screens).
    name_en: str = Field(default="", max_length=100)
    # The community office's phone: every "contact community staff" line carries it.
    phone: str = Field(default="", max_length=30)


class Building(SQLModel, table=True):
    __tablename__ = "buildings"
    __table_args__ = (UniqueConstraint("community_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id", index=True)
    name: str = Field(max_length=100)


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    # The platform's user id (Telegram user id), as text so any channel fits.
    external_id: str = Field(max_length=64)
    # Where to write to this person privately (Telegram: the private chat id).
    chat_id: str = Field(max_length=64)
    display_name: str = Field(default="", max_length=200)
    username: str | None = Field(default=None, max_length=100)
    # The language the client reports; used until the person picks one.
    client_language: str | None = Field(default=None, max_length=20)
    language: str | None = Field(default=None, max_length=5)
    consent_at: datetime | None = None
    community_id: int | None = Field(default=None, foreign_key="communities.id")
    building_id: int | None = Field(default=None, foreign_key="buildings.id")
    phone: str | None = Field(default=None, max_length=20)
    # Comma-separated roles ("staff,driver"); everyone is a resident.
    roles: str = Field(default="", max_length=200)
    onboarded_at: datetime | None = None
    blocked_at: datetime | None = None  # the person blocked the bot (403)
    forgotten_at: datetime | None = None  # /forget erased their personal data
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Conversation(SQLModel, table=True):
    """Where one person is in one chat: the flow, its step and the answers so far."""

    __tablename__ = "conversations"

    id: int | None = Field(default=None, primary_key=True)
    # "<channel>:<chat id>:<user external id>" — one conversation per person per chat.
    key: str = Field(max_length=200, unique=True)
    user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    flow: str | None = Field(default=None, max_length=50)
    step: str | None = Field(default=None, max_length=50)
    data: str = Field(default="{}", sa_column=Column(Text, nullable=False, server_default="{}"))
    version: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


class ProcessedUpdate(SQLModel, table=True):
    """Platform updates already handled: a redelivered update has no second effect.

    The answer is kept for a short while, so that an update redelivered after a crash
    between commit and reply still gets its answer (see housekeeping for the expiry).
    """

    __tablename__ = "processed_updates"

    key: str = Field(primary_key=True, max_length=100)
    processed_at: datetime = Field(default_factory=utcnow, index=True)
    # Whose update it was, so /forget can erase stored answers at once.
    user_id: int | None = Field(default=None, index=True)
    # JSON list of the Outgoing replies sent back to the sender.
    replies: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class OutboxMessage(SQLModel, table=True):
    """A message to someone other than the person who just wrote, persisted before sending."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "not_before", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    chat_id: str = Field(max_length=64)
    # Set when the recipient is a known user, so a block marks that user.
    user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    # JSON of a dialogs.messages.Outgoing.
    payload: str = Field(sa_column=Column(Text, nullable=False))
    kind: str = Field(default="message", max_length=30)
    # Producers that may run twice (a job retried after a crash) pass a key: one row only.
    dedupe_key: str | None = Field(default=None, max_length=200, unique=True)
    is_group: bool = False
    status: str = Field(default="pending", max_length=10)  # pending|sent|failed|blocked|cancelled
    attempts: int = 0
    not_before: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    sent_message_id: str | None = Field(default=None, max_length=64)
    error: str | None = Field(default=None, max_length=500)
    # The sending of a community notice this row belongs to (storage/notices.py), so its
    # progress and delivery report are counted from the rows themselves.
    notice_run_id: int | None = Field(default=None, index=True)


class AuditEntry(SQLModel, table=True):
    """Privileged actions and refused attempts, for staff review."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor_user_id: int | None = Field(default=None, foreign_key="users.id")
    action: str = Field(max_length=50)
    target: str = Field(default="", max_length=100)
    allowed: bool = True
    detail: str = Field(default="", max_length=500)


class JobRun(SQLModel, table=True):
    """One-off scheduled jobs that have run: rebuilding the schedule skips them."""

    __tablename__ = "job_runs"

    id: str = Field(primary_key=True, max_length=200)
    ran_at: datetime = Field(default_factory=utcnow)
