"""A bot's releases and the rollback to one of them (issue 12)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from controlbot.api.calls import result_out, with_health
from controlbot.api.deps import Auth, Bot, Ctx
from controlbot.api.errors import ERROR_RESPONSES
from controlbot.api.forms import WaitQuery
from controlbot.api.schemas import BotOut, ReleaseList

router = APIRouter(prefix="/api/bots/{name}", tags=["releases"], responses=ERROR_RESPONSES)


class RollbackIn(BaseModel):
    release: int | None = Field(
        None, ge=1, description="The release to run again; omitted: the previous one."
    )


@router.get("/releases", response_model=ReleaseList, summary="A bot's kept releases, newest first")
async def list_releases(ctx: Ctx, caller: Auth, bot: Bot) -> ReleaseList:
    return ReleaseList(releases=(await ctx.gateway.releases(caller, bot)).releases or [])


@router.post(
    "/rollback",
    response_model=BotOut,
    summary="Run an earlier release again (default: the previous one); it becomes a new release",
)
async def rollback(
    ctx: Ctx,
    caller: Auth,
    bot: Bot,
    body: Annotated[RollbackIn | None, Body()] = None,
    wait: WaitQuery = None,
) -> BotOut:
    """409 INVALID_STATE when there is no previous release, or the one named is current or gone."""
    result = await ctx.gateway.rollback(caller, bot, body.release if body else None)
    return await with_health(ctx, caller, bot, result) if wait == "health" else result_out(result)
