"""The FastAPI application: routes, the one error mapping, and an OpenAPI document that matches."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import Depends, FastAPI
from redis.asyncio import Redis

from controlbot import tokens
from controlbot.api import errors, tma
from controlbot.api.deps import ApiContext, reject_unknown_query
from controlbot.api.guard import ApiGuard
from controlbot.api.openapi import build_openapi
from controlbot.api.routes import actions, audit, bots, data, health, logs, quota, releases, stats, webapp
from controlbot.gateway import Gateway
from controlbot.settings import Settings

DESCRIPTION = """\
Host and manage Telegram bots from a terminal or CI, under the same rules and quotas as the chat.

Authenticate with `Authorization: Bearer <token>`; send /token to the control bot to get one.
The Mini App dashboard at /app/ sends `Authorization: tma <initData>` instead (signed by Telegram).
Every error answers `{"error": {"code", "message", "field", "params", "detail"}}`: a code, a plain
English sentence, the request field at fault, the error's figures (e.g. `limit` and `used` of
QUOTA_EXCEEDED), and more context where there is some (a failed build's log).
"""


def create_app(settings: Settings, gateway: Gateway, redis: Redis) -> FastAPI:
    app = FastAPI(
        title="botrunner",
        version="1",
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        dependencies=[Depends(reject_unknown_query)],
    )
    app.state.ctx = ApiContext(settings=settings, gateway=gateway, redis=redis)
    errors.install(app)
    # Refuses a missing token or an oversized body before FastAPI parses anything. One authenticator
    # per Authorization scheme; a Mini App's `tma` scheme would be one more entry.
    app.add_middleware(
        ApiGuard,
        authenticators={"bearer": partial(tokens.resolve, redis), tma.SCHEME: tma.authenticator(settings)},
        max_body=settings.api_body_limit,
    )
    app.include_router(health.router)
    app.include_router(bots.router)
    app.include_router(actions.router)
    app.include_router(logs.router)
    app.include_router(quota.router)
    app.include_router(data.router)
    app.include_router(webapp.router)
    app.include_router(stats.router)
    app.include_router(audit.router)
    if settings.api_metrics:
        app.include_router(stats.metrics_router)
    app.include_router(releases.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
