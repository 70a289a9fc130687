"""`GET /api/quota`: your bots against your limit."""

from __future__ import annotations

from fastapi import APIRouter

from controlbot.api.deps import Auth, Ctx
from controlbot.api.errors import ERROR_RESPONSES
from protocol.models import QuotaInfo

router = APIRouter(prefix="/api", tags=["quota"], responses=ERROR_RESPONSES)


@router.get("/quota", response_model=QuotaInfo, summary="Your bots against your limit")
async def get_quota(ctx: Ctx, caller: Auth) -> QuotaInfo:
    return await ctx.gateway.quota(caller)
