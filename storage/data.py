"""Plain data objects that dialogs and handlers see instead of ORM rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

# Languages Linli speaks; a person's language follows their client until they choose.
LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"


def guess_language(client_language: str | None) -> str:
    """Chinese unless the client says English (Telegram's language_code, e.g. "en-GB")."""
    if client_language and client_language.lower().startswith("en"):
        return "en"
    return DEFAULT_LANGUAGE


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
    name_en: str = ""
    phone: str = ""

    def label(self, lang: str) -> str:
        """The name in the reader's language, where an English one exists."""
        return self.name_en if lang == "en" and self.name_en else self.name


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
