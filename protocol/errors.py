"""Typed error codes shared by every part of botrunner, and the one base exception."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    INVALID_NAME = "INVALID_NAME"
    INVALID_SOURCE = "INVALID_SOURCE"
    INVALID_ENV = "INVALID_ENV"
    INVALID_STATE = "INVALID_STATE"
    INVALID_INPUT = "INVALID_INPUT"
    GIT_REFUSED = "GIT_REFUSED"
    GIT_FAILED = "GIT_FAILED"
    BUILD_FAILED = "BUILD_FAILED"
    DOCKER_UNAVAILABLE = "DOCKER_UNAVAILABLE"
    RUNNER_UNAVAILABLE = "RUNNER_UNAVAILABLE"
    EXPIRED = "EXPIRED"
    TIMEOUT = "TIMEOUT"
    FORBIDDEN = "FORBIDDEN"
    UNAUTHORIZED = "UNAUTHORIZED"  # HTTP API: missing, wrong or revoked token
    INTERNAL = "INTERNAL"


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
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.field = field
        self.detail = detail
        self.bot = bot

    def __str__(self) -> str:
        return f"{self.code.value}: {self.message}"


class QuotaExceeded(BotrunnerError):
    code = ErrorCode.QUOTA_EXCEEDED

    def __init__(self, limit: int) -> None:
        super().__init__(f"maximum {limit} bots per user; delete one to free a slot")
        self.limit = limit


class NotFound(BotrunnerError):
    code = ErrorCode.NOT_FOUND

    def __init__(self, name: str) -> None:
        super().__init__(f"no bot named {name!r}; /list shows your bots", bot=name, field="name")


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


class InvalidEnv(BotrunnerError):
    code = ErrorCode.INVALID_ENV


class DockerUnavailable(BotrunnerError):
    code = ErrorCode.DOCKER_UNAVAILABLE

    def __init__(self, message: str = "Docker is unavailable on the runner host; try again shortly") -> None:
        super().__init__(message)


class RunnerUnavailable(BotrunnerError):
    code = ErrorCode.RUNNER_UNAVAILABLE

    def __init__(self, message: str = "the runner is unavailable right now; try again in a minute") -> None:
        super().__init__(message)


class BuildFailed(BotrunnerError):
    code = ErrorCode.BUILD_FAILED
