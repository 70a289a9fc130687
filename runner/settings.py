"""The runner's one settings class, read from the environment and `.env`."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from protocol.envparse import must_match, split_csv
from protocol.rules import parse_size

# The sizes of settings ('256m', '1g') parse as docker's do, in one place for both services.
parse_memory = parse_size


def _split_requirements(value: object) -> object:
    """Comma-separated pip requirements; a comma inside a specifier (aiogram>=3,<4) does not split."""
    if isinstance(value, str):
        return [part.strip() for part in re.split(r",(?=\s*[A-Za-z])", value) if part.strip()]
    return value


class _Bytes:
    """A size setting ('256m', '1g') read in bytes, as a read-only attribute of the settings."""

    def __init__(self, field: str) -> None:
        self.field = field

    def __get__(self, settings: BaseSettings, owner: object = None) -> int:
        return parse_memory(getattr(settings, self.field))


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
    bot_disk_limit: str = "1g"  # what one bot may hold in /app and /data

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
    # Telegram-aware: where the runner calls the Bot API with a bot's token (deleteWebhook) and how
    # often it reads running bots' output for Telegram's 409 Conflict.
    telegram_api_url: str = "https://api.telegram.org"
    runner_conflict_interval: float = Field(60.0, gt=0)
    # Backups of /data: the largest archive, and how many daily ones a bot keeps.
    runner_max_backup_bytes: str = "200m"
    runner_keep_backups: int = Field(3, ge=1)
    runner_backup_check_interval: float = Field(600.0, gt=0)  # how often daily backups fall due
    git_max_repo_bytes: str = "100m"
    # The engine backend (issue 11): docker on one host, or a Docker Swarm driven from a manager.
    # swarm: RUNNER_REGISTRY (host[:port], e.g. 127.0.0.1:5000) is where bot images are pushed so
    # any node can pull them; without it only a one-node swarm works. RUNNER_PLACEMENT: Swarm
    # placement constraints for every bot, comma-separated (node.labels.botrunner==true).
    runner_backend: Literal["docker", "swarm"] = "docker"
    runner_registry: str | None = None
    runner_placement: Annotated[list[str], NoDecode] = []
    # Builds in the bots' sandbox (#10): who may build a repository's own Dockerfile; the image
    # clones run in (empty: the runner's own image when it runs in a container, else one built
    # once); the limits of pip and clone job containers.
    runner_dockerfile_policy: Literal["admins", "everyone", "off"] = "admins"
    runner_tools_image: str | None = None
    runner_build_cpu_limit: float = Field(1.0, gt=0)
    runner_build_pids_limit: int = Field(256, ge=32)
    # Fair share: commands of one owner in progress at once (more wait in that owner's queue), and
    # image builds at once (a pool of their own, so quick commands never wait behind a build).
    runner_max_inflight_per_user: int = Field(2, ge=1)
    runner_build_concurrency: int = Field(2, ge=1)
    # Sealed secrets (#10): the runner's key pair, created on first start (mode 0600). Whoever
    # reads this file can open every env value in Redis: keep it on a volume of the runner's alone.
    runner_key_file: Path = Path("/var/lib/botrunner/runner.key")
    # Prometheus /metrics (issue 13): 0 turns it off. Compose binds 0.0.0.0 inside its network only.
    runner_metrics_port: int = Field(9464, ge=0, le=65535)
    runner_metrics_host: str = "127.0.0.1"
    # Releases, the health gate and kept logs (issue 12).
    runner_keep_releases: int = Field(5, ge=1)
    runner_health_grace: float = Field(10.0, ge=0)  # 0: no gate
    runner_keep_log_lines: int = Field(1000, ge=0)
    # Every stored tree of a user (each bot's current source and its kept releases' trees).
    user_source_bytes: str = "100m"

    @field_validator(
        "git_allowed_schemes", "git_allowed_hosts", "runner_egress_allow", "runner_placement", mode="before"
    )
    @classmethod
    def _csv(cls, value: object) -> object:
        return split_csv(value)

    @field_validator("runner_runtime_packages", mode="before")
    @classmethod
    def _requirements(cls, value: object) -> object:
        return _split_requirements(value)

    @field_validator(
        "bot_memory_limit",
        "runner_build_memory_limit",
        "runner_image_cache_bytes",
        "git_max_repo_bytes",
        "runner_max_backup_bytes",
        "bot_disk_limit",
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
        return must_match(value, r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", "use letters, digits, '.', '_' or '-'")

    @model_validator(mode="after")
    def _restarts(self) -> Settings:
        # Docker reads a retry count of 0 as no limit: the docker backend gives no policy instead.
        # Swarm has no such way (its "none" condition changes how a scaled-down task ends).
        if self.runner_backend == "swarm" and self.runner_restart_max == 0:
            raise ValueError(
                "RUNNER_RESTART_MAX=0 (never restart) is not possible with RUNNER_BACKEND=swarm: "
                "Swarm reads MaxAttempts 0 as no limit; use 1 or more"
            )
        return self

    # The size settings in bytes.
    memory_limit_bytes: ClassVar[_Bytes] = _Bytes("bot_memory_limit")
    build_memory_bytes: ClassVar[_Bytes] = _Bytes("runner_build_memory_limit")
    image_cache_bytes: ClassVar[_Bytes] = _Bytes("runner_image_cache_bytes")
    disk_limit_bytes: ClassVar[_Bytes] = _Bytes("bot_disk_limit")
    max_backup_bytes: ClassVar[_Bytes] = _Bytes("runner_max_backup_bytes")
    user_source_limit: ClassVar[_Bytes] = _Bytes("user_source_bytes")
    max_repo_bytes: ClassVar[_Bytes] = _Bytes("git_max_repo_bytes")
