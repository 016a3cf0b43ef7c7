"""Settings from LINLI_* environment variables and a .env file; built in main(), never at import."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///linli.db"
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")


def split_listen(value: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:port`` for IPv6) → (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"expected host:port, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 -- a server's listen address


TelegramRuntime = Literal["aiogram", "ptb"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LINLI_", env_file=".env", extra="ignore")

    telegram_token: SecretStr | None = None
    # A self-hosted Bot API server, e.g. http://127.0.0.1:8081 (/bot<token>/<method> is appended).
    telegram_api_base: str | None = None
    # Which library makes the Bot API calls: "aiogram" (default) or "ptb" (python-telegram-bot).
    # Everything else (polling, replies, the outbox, menus) is the same code for both.
    telegram_runtime: TelegramRuntime = "aiogram"
    database_url: str = DEFAULT_DATABASE_URL
    # Comma-separated Telegram user ids who are staff from the start.
    admins: str = ""
    # Load the demo communities and people into an empty database at start-up.
    demo_data: bool = True
    log_level: str = "INFO"
    # "text" (default, for people reading a terminal) or "json" (one JSON object a line).
    log_format: Literal["text", "json"] = "text"
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

    # WeChat Official Account (服务号). Set all three of app id, secret and token to serve it.
    wechat_app_id: str = ""
    wechat_app_secret: SecretStr | None = None
    # The token configured for the message callback (signature check).
    wechat_token: SecretStr | None = None
    # EncodingAESKey (43 characters) for safe mode; without it the callback is plain text.
    wechat_aes_key: SecretStr | None = None
    # The API server (a test server in tests); /token, /message/custom/send… are appended.
    wechat_api_base: str = "https://api.weixin.qq.com/cgi-bin/"
    # Where the message callback listens (the URL configured in the WeChat admin console).
    wechat_host: str = "0.0.0.0"  # noqa: S104 -- a server for WeChat to reach
    wechat_port: int = Field(default=8080, ge=0, le=65535)
    wechat_path: str = "/wechat"
    # WeChat waits 5 s for the callback's answer; replies not ready after this many seconds
    # go through the customer-service API instead.
    wechat_reply_within: float = Field(default=4.0, gt=0, lt=5)
    # A template message (模板消息) for news outside the 48-hour window; empty: none, the
    # message is kept for the person's next contact. Its fields: first, keyword1 (what),
    # keyword2 (when), remark.
    wechat_template_id: str = ""
    # Outbox kinds that warrant a template message outside the window.
    wechat_template_kinds: str = "ride,legal,report,application"
    # How long messages kept for the next contact wait before they are given up (failed);
    # at most 3, when the outbox housekeeping gives up any message still pending.
    wechat_keep_days: int = Field(default=3, ge=1, le=3)

    # Messages per second this process may send overall (Telegram allows about 30 per
    # bot; each process counts its own, so with N workers set 30/N to stay within it).
    telegram_rate: float = Field(default=30.0, gt=0)
    # Webhook mode: the public HTTPS URL Telegram posts updates to (behind the load
    # balancer), e.g. https://linli.example.org/telegram. Unset: long polling.
    webhook_url: str | None = None
    # Where this worker's webhook server listens, host:port (the load balancer's target).
    webhook_listen: str = "0.0.0.0:8080"
    # Sent by Telegram in X-Telegram-Bot-Api-Secret-Token; 1-256 of A-Z a-z 0-9 _ -.
    webhook_secret: SecretStr | None = None
    # On a clean stop, also deleteWebhook (only for the last worker of a deployment).
    webhook_delete_on_stop: bool = False
    # /healthz and /metrics, host:port; unset: not served (in webhook mode they are then
    # served on the webhook listener).
    ops_listen: str | None = None
    # Key that signs poster deep links (t.me/<bot>?start=...); keep it: a new one voids
    # printed posters. Unset: derived from the bot token.
    link_secret: SecretStr | None = None

    @field_validator(
        "telegram_token",
        "wechat_app_secret",
        "wechat_token",
        "wechat_aes_key",
        "webhook_secret",
        "link_secret",
        mode="before",
    )
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value

    @field_validator("webhook_url", "ops_listen", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("webhook_secret")
    @classmethod
    def _secret_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _SECRET_TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError("LINLI_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("webhook_listen", "ops_listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None:
            split_listen(value)
        return value

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url is not None:
            if not self.webhook_url.startswith(("https://", "http://")):
                raise ValueError("LINLI_WEBHOOK_URL must be an https:// URL")
            if self.webhook_secret is None:
                raise ValueError("webhook mode needs LINLI_WEBHOOK_SECRET (checked on every update)")
        return self

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

    @field_validator("wechat_aes_key")
    @classmethod
    def _aes_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) != 43:
            raise ValueError("LINLI_WECHAT_AES_KEY must be the 43-character EncodingAESKey")
        return value

    @property
    def wechat_enabled(self) -> bool:
        return bool(self.wechat_app_id and self.wechat_app_secret and self.wechat_token)

    @property
    def wechat_template_kind_set(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.wechat_template_kinds.split(",") if p.strip())

    @property
    def admin_ids(self) -> list[str]:
        return [i for i in self.admins.split(",") if i]
