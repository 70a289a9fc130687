"""`GET /healthz`: Redis answers, and the runner's heartbeat is fresh and sees Docker. No token needed."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from controlbot.api.deps import Ctx
from controlbot.api.schemas import Health, RunnerState

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    response_model=Health,
    summary="Health of the API, Redis and the runner",
    responses={503: {"model": Health, "description": "Redis or the runner is unavailable."}},
)
async def healthz(ctx: Ctx) -> JSONResponse:
    try:
        await ctx.redis.ping()
        runner = await ctx.gateway.health()
        redis_ok = True
    except (RedisError, OSError) as e:
        log.warning("healthz: redis unavailable: %s", e)
        runner, redis_ok = None, False
    ok = redis_ok and runner is not None and runner.docker_ok
    state = None
    if runner is not None:
        state = RunnerState(
            heartbeat_age_seconds=round(max(0.0, time.time() - runner.ts), 3), docker_ok=runner.docker_ok
        )
    health = Health(status="ok" if ok else "unavailable", redis=redis_ok, runner=state)
    return JSONResponse(health.model_dump(mode="json"), status_code=200 if ok else 503)
