"""Typed error codes shared by every part of botrunner, and the one base exception."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class ErrorCode(StrEnum):
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    INVALID_NAME = "INVALID_NAME"
    INVALID_SOURCE = "INVALID_SOURCE"
    INVALID_ENV = "INVALID_ENV"
    INVALID_INPUT = "INVALID_INPUT"
    GIT_REFUSED = "GIT_REFUSED"
    GIT_FAILED = "GIT_FAILED"
    BUILD_FAILED = "BUILD_FAILED"
    DOCKER_UNAVAILABLE = "DOCKER_UNAVAILABLE"
    RUNNER_UNAVAILABLE = "RUNNER_UNAVAILABLE"
    STORE_UNAVAILABLE = "STORE_UNAVAILABLE"  # Redis, the queue and the state of record, does not answer
    EXPIRED = "EXPIRED"
    TIMEOUT = "TIMEOUT"
    FORBIDDEN = "FORBIDDEN"
    UNAUTHORIZED = "UNAUTHORIZED"  # HTTP API: missing, wrong or revoked token
    INTERNAL = "INTERNAL"
    # Telegram-aware deploys
    TOKEN_INVALID = "TOKEN_INVALID"  # Telegram rejects a bot token the deploy carries (getMe: 401)
    TOKEN_IN_USE = "TOKEN_IN_USE"  # another hosted bot already polls with this token
    # A bot over BOT_DISK_LIMIT is stopped (and a start of one still over it refused).
    DISK_LIMIT_EXCEEDED = "DISK_LIMIT_EXCEEDED"
    # builds in the sandbox (#10): a repository's own Dockerfile refused by RUNNER_DOCKERFILE_POLICY
    DOCKERFILE_NOT_ALLOWED = "DOCKERFILE_NOT_ALLOWED"
    RATE_LIMITED = "RATE_LIMITED"  # too many state-changing commands this minute (RATE_LIMIT_PER_MINUTE)
    INVALID_STATE = "INVALID_STATE"  # releases: nothing to roll back to, or that release is current


class ErrorParams(BaseModel):
    """The figures of an error, typed, so each front end words it in its own language.

    Each code fills the ones it has: QUOTA_EXCEEDED `limit` and `used`, a size refusal `max_bytes`
    and `size_bytes`, an env refusal `key`, a refused path `path`. `reason` names which of a code's
    refusals this is, when a code has several that front ends word differently ("binary", "own_token").
    """

    model_config = ConfigDict(extra="ignore")

    reason: str | None = None
    limit: int | None = None
    used: int | None = None
    max_bytes: int | None = None
    size_bytes: int | None = None
    release: int | None = None
    key: str | None = None
    path: str | None = None
    seconds: int | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in self.__dict__.values())


class BotrunnerError(Exception):
    """Base of every error botrunner reports: a code plus a sentence that says what to do next."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        field: str | None = None,
        detail: str | None = None,
        bot: str | None = None,
        params: ErrorParams | None = None,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.field = field
        self.detail = detail
        self.bot = bot
        self.params = params or ErrorParams()

    def __str__(self) -> str:
        return f"{self.code.value}: {self.message}"


class QuotaExceeded(BotrunnerError):
    code = ErrorCode.QUOTA_EXCEEDED

    def __init__(self, limit: int, used: int | None = None) -> None:
        super().__init__(
            f"maximum {limit} bots per user; delete one to free a slot",
            params=ErrorParams(limit=limit, used=used if used is not None else limit),
        )
        self.limit = limit


class NotFound(BotrunnerError):
    code = ErrorCode.NOT_FOUND

    def __init__(self, name: str) -> None:
        super().__init__(f"no bot named {name!r}", bot=name, field="name")


class AlreadyExists(BotrunnerError):
    code = ErrorCode.ALREADY_EXISTS

    def __init__(self, name: str) -> None:
        super().__init__(
            f"a bot named {name!r} already exists; use update to replace its code", bot=name, field="name"
        )


class InvalidName(BotrunnerError):
    code = ErrorCode.INVALID_NAME

    def __init__(self, name: str) -> None:
        super().__init__(
            f"invalid bot name {name!r}: use 2-31 characters, lowercase letters, digits and '-', "
            "starting with a letter or digit",
            field="name",
        )


class InvalidSource(BotrunnerError):
    code = ErrorCode.INVALID_SOURCE

    def __init__(self, message: str, *, field: str | None = "file", **kwargs: Any) -> None:
        super().__init__(message, field=field, **kwargs)


class InvalidEnv(BotrunnerError):
    code = ErrorCode.INVALID_ENV

    def __init__(self, message: str, *, field: str | None = "env", **kwargs: Any) -> None:
        super().__init__(message, field=field, **kwargs)


class DockerUnavailable(BotrunnerError):
    code = ErrorCode.DOCKER_UNAVAILABLE

    def __init__(self, message: str = "Docker is unavailable on the runner host; try again shortly") -> None:
        super().__init__(message)


class RunnerUnavailable(BotrunnerError):
    code = ErrorCode.RUNNER_UNAVAILABLE

    def __init__(self, message: str = "the runner is unavailable right now; try again in a minute") -> None:
        super().__init__(message)


class StoreUnavailable(BotrunnerError):
    code = ErrorCode.STORE_UNAVAILABLE

    def __init__(
        self, message: str = "the store (Redis) is unavailable right now; try again in a minute"
    ) -> None:
        super().__init__(message)


class BuildFailed(BotrunnerError):
    code = ErrorCode.BUILD_FAILED
