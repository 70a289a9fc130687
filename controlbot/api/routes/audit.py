"""The audit trail: all of it for admins (`/api/audit`), a bot's own for its owner (`.../history`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from controlbot.api.deps import Auth, Bot, Ctx
from controlbot.api.errors import ERROR_RESPONSES
from controlbot.audit import AuditEntry, AuditQuery
from protocol.errors import BotrunnerError, ErrorCode
from protocol.rules import NAME_PATTERN

router = APIRouter(tags=["audit"], responses=ERROR_RESPONSES)

Limit = Annotated[int, Query(ge=1, le=500, description="How many entries, newest first.")]


class AuditOut(BaseModel):
    """One state-changing action: who, what, which bot, when, through which channel, and the result."""

    id: str
    ts: float
    actor: int
    action: str
    channel: str = Field(description="chat, api, cli or webapp")
    result: str = Field(description="ok, or the error code")
    owner: int | None = None
    bot: str | None = None
    detail: str = Field("", description="What changed, without values: env keys, a quota figure.")

    @classmethod
    def of(cls, e: AuditEntry) -> AuditOut:
        return cls(**{f: getattr(e, f) for f in cls.model_fields})


class AuditList(BaseModel):
    entries: list[AuditOut]


@router.get("/api/audit", response_model=AuditList, summary="The audit trail (admins)")
async def audit(
    ctx: Ctx,
    caller: Auth,
    owner: Annotated[int | None, Query(description="Only this owner's bots.")] = None,
    bot: Annotated[str | None, Query(description="Only this bot (with owner).", pattern=NAME_PATTERN)] = None,
    limit: Limit = 50,
) -> AuditList:
    if not caller.admin:
        raise BotrunnerError("only admins may read the audit trail", code=ErrorCode.FORBIDDEN)
    entries = await ctx.gateway.audit_log(caller, AuditQuery(owner=owner, bot=bot), limit=limit)
    return AuditList(entries=[AuditOut.of(e) for e in entries])


@router.get("/api/bots/{name}/history", response_model=AuditList, summary="What was done to one of your bots")
async def history(ctx: Ctx, caller: Auth, target: Bot, limit: Limit = 50) -> AuditList:
    query = AuditQuery(owner=target.owner, bot=target.name)
    entries = await ctx.gateway.audit_log(caller, query, limit=limit)
    return AuditList(entries=[AuditOut.of(e) for e in entries])
