"""The one place where errors become HTTP answers: an ErrorCode -> status table and the handlers.

Every error leaves as `{"error": {"code", "message", "field", "detail"}}`; nobody sees a traceback.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_serializer
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from protocol.errors import BotrunnerError, ErrorCode, ErrorParams, StoreUnavailable

log = logging.getLogger(__name__)

BUILD_LOG_TAIL_LINES = 40

STATUS_BY_CODE: dict[ErrorCode, int] = {
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.QUOTA_EXCEEDED: 403,
    ErrorCode.DOCKERFILE_NOT_ALLOWED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.ALREADY_EXISTS: 409,
    ErrorCode.INVALID_NAME: 422,
    ErrorCode.INVALID_SOURCE: 422,
    ErrorCode.INVALID_ENV: 422,
    ErrorCode.INVALID_INPUT: 422,
    ErrorCode.GIT_REFUSED: 422,
    ErrorCode.GIT_FAILED: 422,
    ErrorCode.BUILD_FAILED: 422,
    ErrorCode.DOCKER_UNAVAILABLE: 503,
    ErrorCode.RUNNER_UNAVAILABLE: 503,
    ErrorCode.STORE_UNAVAILABLE: 503,
    # The runner dropped the command unread, or did not answer in time: it is not serving now.
    ErrorCode.EXPIRED: 503,
    ErrorCode.TIMEOUT: 503,
    ErrorCode.INTERNAL: 500,
    ErrorCode.TOKEN_INVALID: 422,
    ErrorCode.TOKEN_IN_USE: 409,
    ErrorCode.DISK_LIMIT_EXCEEDED: 409,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INVALID_STATE: 409,  # releases: nothing to roll back to
}

# Which code a failed check on a request field gets; anything else is INVALID_INPUT.
_CODE_BY_FIELD = {
    "name": ErrorCode.INVALID_NAME,
    "env": ErrorCode.INVALID_ENV,
    "file": ErrorCode.INVALID_SOURCE,
    "git_url": ErrorCode.GIT_REFUSED,
    "branch": ErrorCode.GIT_REFUSED,
    "commit": ErrorCode.GIT_REFUSED,
    "entrypoint": ErrorCode.GIT_REFUSED,
}
INTERNAL_MESSAGE = "something went wrong on our side; try again"
_LOCATIONS = {"body", "query", "path", "header", "cookie"}


class ErrorDetail(BaseModel):
    code: str = Field(description="A machine-readable code such as QUOTA_EXCEEDED or NOT_FOUND.")
    message: str = Field(description="A plain English sentence that says what went wrong.")
    field: str | None = Field(None, description="The request field at fault, when there is one.")
    params: ErrorParams = Field(
        default_factory=ErrorParams,
        description="The error's figures, typed, e.g. `limit` and `used` of QUOTA_EXCEEDED.",
    )
    detail: str | None = Field(None, description="More context, e.g. the tail of a failed build's log.")

    @field_serializer("params")
    def _set_params(self, params: ErrorParams) -> dict[str, Any]:
        return params.model_dump(exclude_none=True)  # only the figures this error has

    @classmethod
    def of(cls, exc: BotrunnerError) -> ErrorDetail:
        detail = exc.detail
        if exc.code is ErrorCode.BUILD_FAILED and detail:
            detail = "\n".join(detail.splitlines()[-BUILD_LOG_TAIL_LINES:])  # the runner sends it whole
        return cls(
            code=exc.code.value, message=exc.message, field=exc.field, params=exc.params, detail=detail
        )


class ErrorBody(BaseModel):
    error: ErrorDetail


def _response(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return _json(status, ErrorDetail(code=code, message=message, field=field), headers)


def _json(status: int, detail: ErrorDetail, headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(error=detail).model_dump(exclude_none=False)
    return JSONResponse(body, status_code=status, headers=headers)


def status_for(code: ErrorCode) -> int:
    return STATUS_BY_CODE.get(code, 500)


async def botrunner_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BotrunnerError)
    status = status_for(exc.code)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": "30"}
    if status == 429:
        headers = {"Retry-After": str(exc.params.seconds or 60)}
    owner = getattr(request.state, "owner", None)
    log.info(
        "%s %s owner=%s -> %s %s: %s",
        request.method,
        request.url.path,
        owner,
        status,
        exc.code.value,
        exc.message,
    )
    return _json(status, ErrorDetail.of(exc), headers)


def code_for_field(field: str | None) -> ErrorCode:
    return _CODE_BY_FIELD.get(field or "", ErrorCode.INVALID_INPUT)


def _field_of(loc: tuple[Any, ...] | list[Any]) -> str | None:
    parts = [str(p) for p in loc if str(p) not in _LOCATIONS and not isinstance(p, int)]
    if parts:
        return parts[0]
    return str(loc[0]) if loc else None  # the body as a whole, e.g. not a JSON object


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    field = _field_of(first.get("loc", ()))
    code = code_for_field(field)
    msg = str(first.get("msg", "invalid request"))
    message = f"{field}: {msg}" if field else msg
    return _response(422, code.value, message, field=field)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        return _response(404, ErrorCode.NOT_FOUND.value, "no such path; /docs lists the API", headers=headers)
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
        return _response(405, "METHOD_NOT_ALLOWED", "this method is not allowed here", headers=headers)
    if exc.status_code == 400:
        # A body that cannot be parsed at all (a broken multipart stream) is invalid input as well.
        return _response(422, ErrorCode.INVALID_INPUT.value, f"the request body is malformed: {exc.detail}")
    return _response(exc.status_code, "HTTP_ERROR", str(exc.detail), headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """The documented methods of this path: Starlette's own Allow names only the first route's."""
    methods: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            methods |= {method.upper() for method in operations}
    return sorted(methods)


async def redis_error(request: Request, exc: Exception) -> JSONResponse:
    log.warning("redis error on %s %s: %s", request.method, request.url.path, exc)
    return _json(503, ErrorDetail.of(StoreUnavailable()), headers={"Retry-After": "30"})


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _response(500, ErrorCode.INTERNAL.value, INTERNAL_MESSAGE)


def install(app: FastAPI) -> None:
    app.add_exception_handler(BotrunnerError, botrunner_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RedisError, redis_error)
    app.add_exception_handler(Exception, unexpected_error)


def _doc(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Declared on every /api route so the OpenAPI document lists each error it can answer.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _doc("Missing, wrong or revoked token (code UNAUTHORIZED)."),
    403: _doc("Quota exceeded (QUOTA_EXCEEDED) or not allowed (FORBIDDEN)."),
    404: _doc("No such bot among yours, or an invalid name in the path (NOT_FOUND)."),
    409: _doc(
        "The name already exists (ALREADY_EXISTS), a bot token already runs (TOKEN_IN_USE), or the "
        "bot's state forbids it (INVALID_STATE)."
    ),
    413: _doc("The request body is over API_MAX_BODY_BYTES (PAYLOAD_TOO_LARGE); nothing of it was kept."),
    422: _doc("Invalid input, naming the field; BUILD_FAILED carries the build log tail in `detail`."),
    429: {
        **_doc("Too many state-changing commands this minute (RATE_LIMITED); retry after `Retry-After` s."),
        "headers": {
            "Retry-After": {
                "description": "Seconds until the next minute window.",
                "schema": {"type": "integer"},
            }
        },
    },
    503: _doc("The runner, Docker or Redis is unavailable (RUNNER_UNAVAILABLE, STORE_UNAVAILABLE ...)."),
}
