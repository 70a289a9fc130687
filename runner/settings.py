"""The runner's one settings class, read from the environment and `.env`."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_MEM_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmg]?)b?\s*$", re.IGNORECASE)
_MEM_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_memory(value: str | int) -> int:
    """'256m' -> bytes; the same suffixes docker accepts."""
    if isinstance(value, int):
        return value
    m = _MEM_RE.match(value)
    if not m:
        raise ValueError(f"{value!r} is not a size like 256m or 1g")
    return int(float(m.group(1)) * _MEM_UNITS[m.group(2).lower()])


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _split_requirements(value: object) -> object:
    """Comma-separated pip requirements; a comma inside a specifier (aiogram>=3,<4) does not split."""
    if isinstance(value, str):
        return [part.strip() for part in re.split(r",(?=\s*[A-Za-z])", value) if part.strip()]
    return value


class Settings(BaseSettings):
    """Runner settings. The control bot's keys in a shared `.env` are ignored."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    redis_url: str = "redis://localhost:6379/0"
    runner_base_image: str = "python:3.12-slim"
    runner_network_mode: str = "botrunner-bots"
    runner_build_network: str | None = None
    # public: bots reach public addresses only (iptables rules); open: no guard (warned at start).
    runner_egress: Literal["public", "open"] = "public"
    # Exceptions to the guard: CIDRs or host:port (a private package mirror, say).
    runner_egress_allow: Annotated[list[str], NoDecode] = []
    runner_ca_bundle: Path | None = None
    max_bots_per_user: int = Field(3, ge=0)
    bot_memory_limit: str = "256m"
    bot_cpu_limit: float = Field(0.5, gt=0)
    bot_pids_limit: int = Field(128, ge=16)

    # Operational knobs with sensible defaults; none is needed for a normal install.
    runner_id: str = Field(default_factory=socket.gethostname)
    # Label value that scopes everything this runner manages; tests give each session its own.
    runner_instance: str = "default"
    runner_runtime_packages: Annotated[list[str], NoDecode] = [
        "aiogram>=3,<4",
        "python-telegram-bot>=21",
        "pyTelegramBotAPI>=4",
    ]
    runner_concurrency: int = Field(8, ge=1)
    runner_threads: int = Field(32, ge=4)  # threads for blocking docker and git calls
    runner_stop_timeout: float = Field(5.0, ge=0)
    runner_restart_max: int = Field(5, ge=0)
    runner_reconcile_interval: float = Field(30.0, gt=0)
    runner_stats_interval: float = Field(10.0, gt=0)
    runner_claim_idle_ms: int = Field(30_000, ge=100)
    runner_build_timeout: float = Field(900.0, gt=0)
    runner_build_memory_limit: str = "1g"
    runner_image_cache_bytes: str = "5g"
    runner_max_source_bytes: int = Field(20 * 1024 * 1024, gt=0)
    git_allowed_schemes: Annotated[list[str], NoDecode] = ["https"]
    # Empty: any host that resolves only to public addresses. Set: exactly these hosts.
    git_allowed_hosts: Annotated[list[str], NoDecode] = []
    git_clone_timeout: float = Field(120.0, gt=0)
    git_max_repo_bytes: str = "100m"
    # Releases, the health gate and kept logs (issue 12).
    runner_keep_releases: int = Field(5, ge=1)
    runner_health_grace: float = Field(10.0, ge=0)  # 0: no gate
    runner_keep_log_lines: int = Field(1000, ge=0)
    # Every stored tree of a user (each bot's current source and its kept releases' trees).
    user_source_bytes: str = "100m"
    # Fault injection for tests: seconds to sleep after a command took effect, before its ack.
    runner_debug_ack_delay: float = Field(0.0, ge=0)

    @field_validator("git_allowed_schemes", "git_allowed_hosts", "runner_egress_allow", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("runner_runtime_packages", mode="before")
    @classmethod
    def _requirements(cls, value: object) -> object:
        return _split_requirements(value)

    @field_validator(
        "bot_memory_limit",
        "runner_build_memory_limit",
        "runner_image_cache_bytes",
        "git_max_repo_bytes",
        "user_source_bytes",
    )
    @classmethod
    def _size(cls, value: str) -> str:
        parse_memory(value)
        return value

    @field_validator("runner_egress_allow")
    @classmethod
    def _egress_allow(cls, value: list[str]) -> list[str]:
        from runner.backend.egress_rules import parse_allow

        parse_allow(value)  # a typo fails at start, not at the first reconcile
        return value

    @field_validator("runner_ca_bundle")
    @classmethod
    def _ca_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a readable PEM file")
        return value

    @field_validator("runner_instance")
    @classmethod
    def _instance(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", value):
            raise ValueError("use letters, digits, '.', '_' or '-'")
        return value

    @property
    def memory_limit_bytes(self) -> int:
        return parse_memory(self.bot_memory_limit)

    @property
    def build_memory_bytes(self) -> int:
        return parse_memory(self.runner_build_memory_limit)

    @property
    def image_cache_bytes(self) -> int:
        return parse_memory(self.runner_image_cache_bytes)

    @property
    def user_source_limit(self) -> int:
        return parse_memory(self.user_source_bytes)

    @property
    def max_repo_bytes(self) -> int:
        return parse_memory(self.git_max_repo_bytes)
