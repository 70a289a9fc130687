"""Resource history: a bot's samples as JSON or as a PNG chart, the admins' top list, and `/metrics`."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from controlbot import charts, metrics
from controlbot.api.deps import Auth, Bot, Ctx
from controlbot.api.errors import ERROR_RESPONSES
from protocol.models import BotStats, BotStatus

router = APIRouter(tags=["stats"], responses=ERROR_RESPONSES)

Range = Annotated[
    Literal["1h", "24h", "7d"], Query(alias="range", description="How far back: 1h, 24h or 7d.")
]


class TopList(BaseModel):
    bots: list[BotStatus]


@router.get("/api/bots/{name}/stats", response_model=BotStats, summary="A bot's memory and CPU samples")
async def bot_stats(ctx: Ctx, caller: Auth, bot: Bot, span: Range = "1h") -> BotStats:
    return await ctx.gateway.stats(caller, bot, charts.RANGES[span])


@router.get(
    "/api/bots/{name}/chart",
    response_class=Response,
    summary="A bot's memory and CPU as a PNG chart",
    responses={200: {"content": {"image/png": {}}}},
)
async def bot_chart(ctx: Ctx, caller: Auth, bot: Bot, span: Range = "24h") -> Response:
    seconds = charts.RANGES[span]
    stats = await ctx.gateway.stats(caller, bot, seconds)
    png = await charts.chart(stats, f"{bot.name} · {span}", seconds)
    return Response(png, media_type="image/png")


@router.get("/api/top", response_model=TopList, summary="Every bot by memory use, with owners (admins)")
async def top(ctx: Ctx, caller: Auth) -> TopList:
    return TopList(bots=await ctx.gateway.top(caller))


# Unauthenticated by design, as Prometheus scrapes: expose the API through a proxy that hides
# /metrics, or set API_METRICS=false. Not in the OpenAPI document: it is not part of the API.
metrics_router = APIRouter()


@metrics_router.get("/metrics", include_in_schema=False)
async def prometheus() -> Response:
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)
