"""The control bot's one settings class, read from the environment and `.env`."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from protocol.envparse import must_match, split_csv
from protocol.rules import parse_size

_TOKEN_RE = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{5,}$")
_PLACEHOLDERS = {"", "changeme", "change-me", "change_me", "token", "your-token", "your_token", "xxx"}


class Settings(BaseSettings):
    """Control bot settings. The runner's keys in a shared `.env` are ignored."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    bot_token: str
    admin_ids: Annotated[list[int], NoDecode]
    allowed_user_ids: Annotated[list[int], NoDecode] = []
    redis_url: str = "redis://localhost:6379/0"
    telegram_api_url: str = "https://api.telegram.org"
    api_enabled: bool = True
    api_host: str = "127.0.0.1"
    api_port: int = Field(8080, ge=0, le=65535)
    max_upload_bytes: int = Field(20 * 1024 * 1024, gt=0)
    # The runner's cap on a /data archive, read here too: the body limit of a restore.
    runner_max_backup_bytes: str = "200m"
    git_allowed_schemes: Annotated[list[str], NoDecode] = ["https"]
    log_level: str = "INFO"
    # The Mini App dashboard: the public https URL where the API's /app/ is reachable (unset: no
    # Dashboard buttons, no menu button), and how old a Mini App's initData may be.
    webapp_url: str | None = None
    webapp_auth_max_age: int = Field(86400, gt=0)
    # -- tenancy: rate limits and the API's body limit (issue 10) --
    # State-changing commands per user per minute, chat and API together; 0 turns the limit off.
    rate_limit_per_minute: int = Field(30, ge=0)
    # The largest request body the HTTP API reads; None: MAX_UPLOAD_BYTES + 1 MiB (form overhead).
    api_max_body_bytes: int | None = Field(None, gt=0)
    # Metrics and the audit trail (issue 13): /metrics on the API's port, unauthenticated.
    api_metrics: bool = True
    audit_max_entries: int = Field(10_000, gt=0)

    @field_validator("bot_token")
    @classmethod
    def _token(cls, value: str) -> str:
        value = value.strip()
        if value.lower() in _PLACEHOLDERS or "<" in value or "your" in value.lower():
            raise ValueError("is a placeholder; put the token @BotFather gave you")
        if not _TOKEN_RE.fullmatch(value):
            raise ValueError("does not look like a bot token (expected 123456:ABC-...)")
        return value

    @field_validator("admin_ids", "allowed_user_ids", "git_allowed_schemes", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return split_csv(value)

    @field_validator("admin_ids")
    @classmethod
    def _admins(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("needs at least one Telegram user id, e.g. ADMIN_IDS=111,222")
        if any(uid <= 0 for uid in value):
            raise ValueError("Telegram user ids are positive integers")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.strip().upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("use DEBUG, INFO, WARNING or ERROR")
        return value

    @field_validator("telegram_api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        hint = "must be an http(s) URL such as https://api.telegram.org"
        return must_match(value, r"https?://[^/\s]+", hint, whole=False).rstrip("/")

    @property
    def max_backup_bytes(self) -> int:
        return parse_size(self.runner_max_backup_bytes)

    @field_validator("webapp_url", mode="before")
    @classmethod
    def _webapp_url(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str) or not re.match(r"^https://[^/\s]+\S*$", value.strip()):
            raise ValueError(
                "must be the https URL where the API's /app/ is served (Telegram requires https)"
            )
        return value.strip()

    @property
    def api_body_limit(self) -> int:
        """API_MAX_BODY_BYTES, or by default an upload of the largest size plus its form's overhead."""
        return self.api_max_body_bytes or self.max_upload_bytes + 2**20

    def is_admin(self, user_id: int) -> bool:
        return user_id in self.admin_ids

    def is_allowed(self, user_id: int) -> bool:
        return user_id in self.admin_ids or user_id in self.allowed_user_ids


def describe_errors(exc: ValidationError) -> list[str]:
    """One line per bad variable, naming it the way it is set in the environment."""
    lines: list[str] = []
    for err in exc.errors():
        var = str(err["loc"][0]).upper() if err["loc"] else "settings"
        if err["type"] == "missing":
            lines.append(f"{var} is required but not set")
            continue
        msg = str(err["msg"]).removeprefix("Value error, ")
        if len(err["loc"]) > 1:  # one item of a comma-separated list
            msg = f"{err['input']!r}: {msg}"
        lines.append(f"{var} is invalid: {msg}")
    return lines
