"""Which runners are alive: each beats into its own key and into one registry (keys.RUNNERS)."""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis

from protocol import keys
from protocol.models import RunnerHealth


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def live_runners(redis: Redis, max_age: float = keys.HEARTBEAT_TTL) -> list[RunnerHealth]:
    """Every runner whose heartbeat is fresh: those with Docker up first, then the newest first."""
    now = time.time()
    ids: Any = await redis.zrangebyscore(keys.RUNNERS, now - max_age, "+inf")
    if not ids:
        return []
    raws = await redis.mget([keys.heartbeat(_text(i)) for i in ids])
    beats = [RunnerHealth.model_validate_json(raw) for raw in raws if raw is not None]
    fresh = [h for h in beats if now - h.ts <= max_age]
    return sorted(fresh, key=lambda h: (not h.docker_ok, -h.ts))


async def beat(redis: Redis, health: RunnerHealth) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(keys.heartbeat(health.runner_id), health.model_dump_json(), ex=keys.HEARTBEAT_TTL)
        pipe.zadd(keys.RUNNERS, {health.runner_id: health.ts})
        pipe.zremrangebyscore(keys.RUNNERS, "-inf", health.ts - keys.RUNNERS_FORGET_S)
        await pipe.execute()


async def leave(redis: Redis, runner_id: str) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(keys.heartbeat(runner_id))
        pipe.zrem(keys.RUNNERS, runner_id)
        await pipe.execute()
