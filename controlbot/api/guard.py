"""A pure ASGI middleware that refuses before anything reads the body.

FastAPI resolves a route's dependencies only after it has parsed the form, so a token checked in a
dependency is checked after a 200 MB upload sits in memory or on disk. Here, in front of routing:

- the caller is authenticated from the headers alone (a scheme -> authenticator table, so a Telegram
  Mini App's `tma <initData>` can join `bearer` later), and the owner id is left in the scope;
- a declared Content-Length over the limit is answered 413 at once;
- a chunked body is counted as it streams and cut at the limit: the app sees a disconnect, and
  whatever it answers then is replaced by the 413.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controlbot.api.errors import ErrorDetail, _json
from protocol.errors import BotrunnerError, ErrorCode, ErrorParams, StoreUnavailable

log = logging.getLogger(__name__)

# An authenticator turns a scheme's credentials into an owner id, or None when they are not valid.
Authenticator = Callable[[str], Awaitable[int | None]]
OWNER_KEY = "botrunner.owner"  # the scope key the authenticated owner id is left under

PROTECTED_PREFIX = "/api/"
TOO_LARGE = "PAYLOAD_TOO_LARGE"


class _BodyTooLarge(Exception):
    pass


class ApiGuard:
    """Authenticate every /api request from its headers, and cap its body, before the app runs."""

    def __init__(self, app: ASGIApp, *, authenticators: Mapping[str, Authenticator], max_body: int) -> None:
        self.app = app
        self.authenticators = {scheme.lower(): auth for scheme, auth in authenticators.items()}
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size = _content_length(scope)
        if size is not None and size > self.max_body:
            await self._too_large(scope, send, size)
            return
        if scope["path"].startswith(PROTECTED_PREFIX):
            try:
                refusal = await self._authenticate(scope)
            except RedisError as e:
                log.warning("redis error on %s %s: %s", scope["method"], scope["path"], e)
                await _answer(scope, send, 503, ErrorDetail.of(StoreUnavailable()), {"Retry-After": "30"})
                return
            if refusal is not None:
                await _answer(scope, send, 401, ErrorDetail.of(refusal), {"WWW-Authenticate": "Bearer"})
                return
        await self._capped(scope, receive, send)

    async def _authenticate(self, scope: Scope) -> BotrunnerError | None:
        header = _header(scope, b"authorization")
        scheme, _, credentials = (header or "").partition(" ")
        auth = self.authenticators.get(scheme.lower())
        if not header or auth is None or not credentials.strip():
            return BotrunnerError(
                "missing API token: send 'Authorization: Bearer <token>'; "
                "/token in the control bot issues one",
                code=ErrorCode.UNAUTHORIZED,
            )
        owner = await auth(credentials.strip())
        if owner is None:
            return BotrunnerError(
                "invalid or revoked API token: send /token to the control bot for a new one",
                code=ErrorCode.UNAUTHORIZED,
            )
        scope[OWNER_KEY] = owner
        scope.setdefault("state", {})["owner"] = owner  # for the log lines of this request
        return None

    async def _capped(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with a receive that counts the body and a send that can be overruled."""
        seen = 0
        cut = False
        started = False

        async def counted() -> Message:
            nonlocal seen, cut
            if cut:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    cut = True  # stop here: the rest is never read, let alone kept
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if cut:
                return  # the app's answer to a cut body; the 413 goes instead
            started = True
            await send(message)

        try:
            await self.app(scope, counted, guarded_send)
        except Exception:
            if not cut:
                raise
        if cut and not started:
            await self._too_large(scope, send, seen)

    async def _too_large(self, scope: Scope, send: Send, size: int) -> None:
        log.info(
            "%s %s refused: body of %d bytes or more over %d",
            scope["method"],
            scope["path"],
            size,
            self.max_body,
        )
        detail = ErrorDetail(
            code=TOO_LARGE,
            message=f"the request body is larger than {self.max_body} bytes",
            params=ErrorParams(max_bytes=self.max_body, size_bytes=size),
        )
        # The body is left unread: close the connection rather than drain it for the next request.
        await _answer(scope, send, 413, detail, {"Connection": "close"})


async def _answer(
    scope: Scope, send: Send, status: int, detail: ErrorDetail, headers: dict[str, str]
) -> None:
    response = _json(status, detail, headers)

    async def no_body() -> Message:
        return {"type": "http.disconnect"}

    await response(scope, no_body, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _content_length(scope: Scope) -> int | None:
    raw = _header(scope, b"content-length")
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None
