"""ApiGuard: a request is refused from its headers, before any of its body is read."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from controlbot.api.guard import OWNER_KEY, ApiGuard

LIMIT = 1000
GOOD = "good-token"


class Recorder:
    """An app that reads the whole body and says how much it got, and who asked."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        body = await Request(scope, receive).body()
        await JSONResponse({"read": len(body), "owner": scope.get(OWNER_KEY)})(scope, receive, send)


async def resolve(token: str) -> int | None:
    return 42 if token == GOOD else None


def client(app: Recorder) -> httpx.AsyncClient:
    guard = ApiGuard(app, authenticators={"bearer": resolve}, max_body=LIMIT)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=guard), base_url="http://api")


async def test_missing_or_wrong_token_is_refused_before_the_app_runs() -> None:
    app = Recorder()
    async with client(app) as c:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
            resp = await c.put("/api/bots/x/env", content=b"a" * 10, headers=headers)
            assert resp.status_code == 401
            assert resp.headers["www-authenticate"] == "Bearer"
            assert resp.json()["error"]["code"] == "UNAUTHORIZED"
    assert app.calls == 0


async def test_declared_oversized_body_is_413_unread() -> None:
    app = Recorder()
    async with client(app) as c:
        resp = await c.put(
            "/api/bots/x/env", content=b"a" * (LIMIT + 1), headers={"Authorization": f"Bearer {GOOD}"}
        )
    assert resp.status_code == 413
    error = resp.json()["error"]
    assert error["code"] == "PAYLOAD_TOO_LARGE"
    assert error["params"] == {"max_bytes": LIMIT, "size_bytes": LIMIT + 1}
    assert app.calls == 0


async def test_streamed_body_is_cut_at_the_limit() -> None:
    app = Recorder()
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(100):
            sent += 100
            yield b"a" * 100

    async with client(app) as c:
        resp = await c.put("/api/bots/x/env", content=chunks(), headers={"Authorization": f"Bearer {GOOD}"})
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_within_limits_the_app_gets_the_body_and_the_owner() -> None:
    app = Recorder()
    async with client(app) as c:
        resp = await c.put(
            "/api/bots/x/env", content=b"a" * LIMIT, headers={"Authorization": f"Bearer {GOOD}"}
        )
        public = await c.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"read": LIMIT, "owner": 42}
    assert public.status_code == 200  # outside /api/ no token is asked for
