"""Dependencies shared by the routes: the long-lived clients, the caller behind a token, a bot name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.asyncio import Redis

from controlbot import tokens
from controlbot.api import tma
from controlbot.api.guard import OWNER_KEY
from controlbot.gateway import Caller, Channel, Gateway, Target
from controlbot.settings import Settings
from protocol.errors import BotrunnerError, ErrorCode, NotFound
from protocol.rules import NAME_PATTERN, NAME_RE

CLI_AGENT = "botrunner-cli/"


@dataclass(frozen=True)
class ApiContext:
    """What every request needs; built once in create_app and kept on app.state."""

    settings: Settings
    gateway: Gateway
    redis: Redis


def get_ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(get_ctx)]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="A personal API token: send /token to the control bot to get one.",
)


async def authenticate(
    request: Request, ctx: Ctx, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Caller:
    """The caller behind the bearer token (or a Mini App's initData); 401 when missing or wrong.

    ApiGuard has resolved it before the body was read; `credentials` stays declared so the OpenAPI
    document names the scheme.
    """
    if (
        webapp := tma.caller_from_authorization(request.headers.get("authorization"), ctx.settings)
    ) is not None:
        request.state.owner = webapp.id
        return webapp
    owner: int | None = request.scope.get(OWNER_KEY)
    if owner is None:
        owner = await _resolve(ctx, credentials)
    request.state.owner = owner  # for the log lines of this request
    if not ctx.settings.is_allowed(owner):
        raise BotrunnerError(
            f"user {owner} may no longer host bots here; ask an admin to add you", code=ErrorCode.FORBIDDEN
        )
    channel = Channel.CLI if request.headers.get("user-agent", "").startswith(CLI_AGENT) else Channel.API
    return Caller(id=owner, admin=ctx.settings.is_admin(owner), channel=channel)


async def _resolve(ctx: ApiContext, credentials: HTTPAuthorizationCredentials | None) -> int:
    if credentials is None:
        raise BotrunnerError(
            "missing API token: send 'Authorization: Bearer <token>'; /token in the control bot issues one",
            code=ErrorCode.UNAUTHORIZED,
        )
    owner = await tokens.resolve(ctx.redis, credentials.credentials)
    if owner is None:
        raise BotrunnerError(
            "invalid or revoked API token: send /token to the control bot for a new one",
            code=ErrorCode.UNAUTHORIZED,
        )
    return owner


Auth = Annotated[Caller, Depends(authenticate)]


NamePath = Annotated[
    str,
    # Declared, not enforced by FastAPI: a name that can never exist is a 404, not a 422.
    Path(description="The bot's name, unique among your bots.", json_schema_extra={"pattern": NAME_PATTERN}),
]


def bot_name(name: NamePath) -> str:
    """A name from the path; one that could never exist is simply not found."""
    if not NAME_RE.fullmatch(name):
        raise NotFound(name)
    return name


BotName = Annotated[str, Depends(bot_name)]


def own_bot(caller: Auth, name: BotName) -> Target:
    """The caller's own bot named in the path."""
    return Target(owner=caller.id, name=name)


Bot = Annotated[Target, Depends(own_bot)]


_query_names_by_route: dict[int, frozenset[str]] = {}


def _query_names(dependant: Dependant) -> frozenset[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return frozenset(names)


def reject_unknown_query(request: Request) -> None:
    """A query parameter the route does not take is refused, so a typo (`?tial=5`) is not ignored."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _query_names_by_route.get(id(route))
    if known is None:
        known = _query_names_by_route[id(route)] = _query_names(route.dependant)
    for name in request.query_params:
        if name not in known:
            raise BotrunnerError(
                f"unknown query parameter {name[:40]!r}", code=ErrorCode.INVALID_INPUT, field=name
            )
