"""The FastAPI application: routes, the one error mapping, and an OpenAPI document that matches."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI
from redis.asyncio import Redis

from controlbot.api import errors
from controlbot.api.deps import ApiContext, reject_unknown_query
from controlbot.api.openapi import build_openapi
from controlbot.api.routes import actions, bots, health, logs, releases
from controlbot.gateway import Gateway
from controlbot.settings import Settings

DESCRIPTION = """\
Host and manage Telegram bots from a terminal or CI, under the same rules and quotas as the chat.

Authenticate with `Authorization: Bearer <token>`; send /token to the control bot to get one.
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
    app.include_router(health.router)
    app.include_router(bots.router)
    app.include_router(actions.router)
    app.include_router(logs.router)
    app.include_router(releases.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
