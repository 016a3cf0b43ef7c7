"""Database tables. Dialogs never see these rows: storage functions convert them to
the plain objects in ``storage.data``.

Times are timezone-aware and stored in UTC (SQLModel's UTCDateTime: timestamptz on
PostgreSQL, UTC text on SQLite); people see Asia/Shanghai.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint, text
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
    status: str = Field(default="pending", max_length=10)  # pending|sent|failed|blocked
    attempts: int = 0
    not_before: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    sent_message_id: str | None = Field(default=None, max_length=64)
    error: str | None = Field(default=None, max_length=500)


class RoleApplication(SQLModel, table=True):
    """A resident's request to become a driver or lawyer, decided by staff."""

    __tablename__ = "role_applications"
    __table_args__ = (
        # At most one pending application per person and role, enforced by the database.
        Index(
            "uq_application_pending",
            "user_id",
            "role",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    role: str = Field(max_length=20)
    # JSON: {"plate": ..., "car_model": ...} or {"firm": ..., "licence": ..., "specialties": [...]}
    details: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=10)  # pending|approved|rejected
    decided_by: int | None = Field(default=None, foreign_key="users.id")
    decided_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


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


class DriverGroup(SQLModel, table=True):
    """A chat where volunteer drivers see ride requests and claim them."""

    __tablename__ = "driver_groups"
    __table_args__ = (UniqueConstraint("channel", "chat_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    chat_id: str = Field(max_length=64)
    title: str = Field(default="", max_length=200)
    # Comma-separated community ids it serves; empty means every community.
    communities: str = Field(default="", max_length=500)
    bound_by: int | None = Field(default=None, foreign_key="users.id")
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class RideSeries(SQLModel, table=True):
    """A recurring ride (weekly dialysis): each occurrence becomes its own Ride."""

    __tablename__ = "ride_series"

    id: int | None = Field(default=None, primary_key=True)
    booker_user_id: int = Field(foreign_key="users.id", index=True)
    # JSON of the ride fields every occurrence copies (rider, places, needs…).
    template: str = Field(sa_column=Column(Text, nullable=False))
    weekdays: str = Field(max_length=20)  # "0,2,4" = Monday, Wednesday, Friday
    time_of_day: str = Field(max_length=5)  # "08:30", Asia/Shanghai
    until: datetime
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class Ride(SQLModel, table=True):
    """A ride request, from booking through claim to completion and rating."""

    __tablename__ = "rides"
    __table_args__ = (
        # One occurrence per series and time, however often the generator runs.
        UniqueConstraint("series_id", "pickup_at"),
        Index("ix_rides_status_pickup", "status", "pickup_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    booker_user_id: int = Field(foreign_key="users.id", index=True)
    # The person riding; None when booked for someone without an account.
    rider_user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    rider_name: str = Field(default="", max_length=100)
    rider_phone: str | None = Field(default=None, max_length=20)
    relation: str = Field(default="self", max_length=30)  # self|family|neighbour|staff|other
    rider_agreed: bool = True  # the booker confirmed the rider agreed
    community_id: int | None = Field(default=None, foreign_key="communities.id")
    pickup_text: str = Field(default="", max_length=300)
    pickup_lat: float | None = None
    pickup_lon: float | None = None
    dest_text: str = Field(default="", max_length=300)
    dest_lat: float | None = None
    dest_lon: float | None = None
    pickup_at: datetime = Field(index=True)
    is_now: bool = False
    passengers: int = 1
    needs: str = Field(default="", max_length=100)  # "wheelchair,stairs"
    note: str = Field(default="", max_length=500)
    # requested → posted → claimed → on_the_way → picked_up → completed;
    # or cancelled / no_show / expired.
    status: str = Field(default="posted", max_length=12)
    driver_user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    claimed_at: datetime | None = None
    group_id: int | None = Field(default=None, foreign_key="driver_groups.id")
    announced_at: datetime | None = None
    escalated_at: datetime | None = None
    finished_at: datetime | None = None
    cancel_reason: str = Field(default="", max_length=200)
    late_cancel: bool = False
    rating: int | None = None
    rating_comment: str = Field(default="", max_length=500)
    series_id: int | None = Field(default=None, foreign_key="ride_series.id", index=True)
    version: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class RideEvent(SQLModel, table=True):
    """Every change to a ride, who made it and why: the ride's history for staff."""

    __tablename__ = "ride_events"

    id: int | None = Field(default=None, primary_key=True)
    ride_id: int = Field(foreign_key="rides.id", index=True)
    at: datetime = Field(default_factory=utcnow)
    actor_user_id: int | None = Field(default=None, foreign_key="users.id")
    event: str = Field(max_length=20)  # posted|claimed|released|on_the_way|picked_up|…
    detail: str = Field(default="", max_length=300)


class JobRun(SQLModel, table=True):
    """One-off scheduled jobs that have run: rebuilding the schedule skips them."""

    __tablename__ = "job_runs"

    id: str = Field(primary_key=True, max_length=200)
    ran_at: datetime = Field(default_factory=utcnow)
