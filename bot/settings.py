"""Settings from LINLI_* environment variables and a .env file; built in main(), never at import."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///linli.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LINLI_", env_file=".env", extra="ignore")

    telegram_token: SecretStr | None = None
    # A self-hosted Bot API server, e.g. http://127.0.0.1:8081 (/bot<token>/<method> is appended).
    telegram_api_base: str | None = None
    database_url: str = DEFAULT_DATABASE_URL
    # Comma-separated Telegram user ids who are staff from the start.
    admins: str = ""
    # Load the demo communities and people into an empty database at start-up.
    demo_data: bool = True
    log_level: str = "INFO"
    # Long-poll timeout for getUpdates, seconds.
    polling_timeout: int = 30
    # Days delivered outbox messages are kept (for delivery reports) before they are pruned.
    outbox_retention_days: int = Field(default=30, ge=1, le=3650)
    # Minutes before pickup at which the driver is reminded, e.g. "30,5".
    ride_driver_reminders: str = "30,5"
    # Where Linli stores files people sent (problem report photos).
    media_dir: str = "media"
    # Problem report categories offered, in order (empty: all), e.g. "manhole,road,streetlight".
    report_categories: str = ""
    # Who hears of reports past their deadline: Telegram user ids (or "<channel>:<id>").
    report_escalation: str = ""
    # A report farther than this from every community centre goes to the city-wide group.
    report_centre_radius_km: float = 2.0

    @field_validator("telegram_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value

    @field_validator("admins")
    @classmethod
    def _admins_are_ids(cls, value: str) -> str:
        ids = [part.strip() for part in value.split(",") if part.strip()]
        bad = [i for i in ids if not i.lstrip("-").isdigit()]
        if bad:
            raise ValueError(f"LINLI_ADMINS must be Telegram user ids, got {bad}")
        return ",".join(ids)

    @field_validator("ride_driver_reminders")
    @classmethod
    def _reminder_minutes(cls, value: str) -> str:
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not parts or not all(p.isdigit() and 0 < int(p) <= 24 * 60 for p in parts):
            raise ValueError("LINLI_RIDE_DRIVER_REMINDERS must be minutes like 30,5")
        return ",".join(parts)

    @property
    def driver_reminder_minutes(self) -> tuple[int, ...]:
        return tuple(sorted({int(p) for p in self.ride_driver_reminders.split(",")}, reverse=True))

    @property
    def report_category_list(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.report_categories.split(",") if p.strip())

    @property
    def report_escalation_list(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.report_escalation.split(",") if p.strip())

    @property
    def admin_ids(self) -> list[str]:
        return [i for i in self.admins.split(",") if i]
