"""Plain data objects that dialogs and handlers see instead of ORM rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    RESIDENT = "resident"
    GIG_WORKER = "gig_worker"
    DRIVER = "driver"
    LAWYER = "lawyer"
    STAFF = "staff"


# Roles a resident can apply for in chat; staff decide.
APPLICABLE_ROLES = (Role.DRIVER, Role.LAWYER)


@dataclass(frozen=True, slots=True)
class CommunityData:
    id: int
    name: str
    district: str = ""
    street: str = ""
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True, slots=True)
class BuildingData:
    id: int
    community_id: int
    name: str


@dataclass(frozen=True, slots=True)
class UserData:
    id: int
    channel: str
    external_id: str
    chat_id: str
    display_name: str
    language: str  # resolved: the chosen language or the client's guess
    language_chosen: bool
    consented: bool
    onboarded: bool
    roles: frozenset[Role] = field(default_factory=frozenset)
    username: str | None = None
    community_id: int | None = None
    building_id: int | None = None
    phone: str | None = None
    blocked: bool = False
    forgotten: bool = False

    def has(self, role: Role) -> bool:
        return role in self.roles


@dataclass(frozen=True, slots=True)
class ApplicationData:
    id: int
    user_id: int
    role: Role
    details: dict[str, Any]
    status: str
    created_at: datetime
    decided_by: int | None = None
    decided_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ConversationState:
    key: str
    flow: str | None
    step: str | None
    data: dict[str, Any]
    version: int


class RideStatus(StrEnum):
    POSTED = "posted"  # open: waiting for a driver to claim it
    CLAIMED = "claimed"
    ON_THE_WAY = "on_the_way"
    PICKED_UP = "picked_up"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    EXPIRED = "expired"  # nobody came and the time passed


ACTIVE_RIDE = (RideStatus.POSTED, RideStatus.CLAIMED, RideStatus.ON_THE_WAY, RideStatus.PICKED_UP)
DRIVER_HAS_RIDE = (RideStatus.CLAIMED, RideStatus.ON_THE_WAY, RideStatus.PICKED_UP)
NEEDS = ("wheelchair", "walker", "companion", "stairs")


@dataclass(frozen=True, slots=True)
class NewRide:
    """What a booking says; storage fills in the rest."""

    booker_user_id: int
    rider_user_id: int | None
    rider_name: str
    rider_phone: str | None
    pickup_text: str
    dest_text: str
    pickup_at: datetime
    is_now: bool = False
    relation: str = "self"
    rider_agreed: bool = True
    community_id: int | None = None
    pickup_lat: float | None = None
    pickup_lon: float | None = None
    dest_lat: float | None = None
    dest_lon: float | None = None
    passengers: int = 1
    needs: tuple[str, ...] = ()
    note: str = ""
    series_id: int | None = None


@dataclass(frozen=True, slots=True)
class RideData:
    id: int
    booker_user_id: int
    rider_user_id: int | None
    rider_name: str
    rider_phone: str | None
    relation: str
    community_id: int | None
    pickup_text: str
    pickup_lat: float | None
    pickup_lon: float | None
    dest_text: str
    dest_lat: float | None
    dest_lon: float | None
    pickup_at: datetime
    is_now: bool
    passengers: int
    needs: tuple[str, ...]
    note: str
    status: RideStatus
    driver_user_id: int | None
    claimed_at: datetime | None
    group_id: int | None
    announced_at: datetime | None
    escalated_at: datetime | None
    late_cancel: bool
    rating: int | None
    series_id: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DriverGroupData:
    id: int
    channel: str
    chat_id: str
    title: str
    community_ids: frozenset[int]  # empty: every community
