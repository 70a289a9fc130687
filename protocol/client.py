"""The requester side of the queue: used by the control bot, its HTTP API, tests and benchmarks."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from protocol import keys
from protocol.errors import ErrorCode, RunnerUnavailable
from protocol.heartbeats import live_runners
from protocol.models import REPLY_ADAPTER, Command, ErrorInfo, Progress, Result, RunnerHealth

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], Awaitable[None]]

# Replies for most operations come in milliseconds; builds and clones may take minutes.
DEFAULT_TIMEOUT_S = 60.0
BUILD_TIMEOUT_S = 1200.0
# A fresh heartbeat is trusted this long, so a command costs one heartbeat read, not one per check.
HEALTH_CACHE_S = 1.0


class RunnerClient:
    """Sends commands on the stream and waits for their replies on a per-request list."""

    def __init__(self, redis: Redis, *, heartbeat_max_age: float = keys.HEARTBEAT_TTL) -> None:
        self.redis = redis
        self.heartbeat_max_age = heartbeat_max_age
        self._fresh: tuple[float, RunnerHealth] | None = None  # (read at, a fresh heartbeat)

    async def health(self) -> RunnerHealth | None:
        """A fresh heartbeat of any live runner (one with Docker up if there is one), else None.
        A fresh one is reused for a second."""
        now = time.monotonic()
        if self._fresh is not None and now - self._fresh[0] < HEALTH_CACHE_S:
            return self._fresh[1]
        runners = await live_runners(self.redis, self.heartbeat_max_age)
        if not runners:
            self._fresh = None
            return None
        health = runners[0]
        self._fresh = (now, health)
        return health

    async def submit(self, cmd: Command, payload: bytes | None = None) -> None:
        """Enqueue a command; raise RunnerUnavailable at once when the heartbeat is stale."""
        if await self.health() is None:
            raise RunnerUnavailable()
        async with self.redis.pipeline(transaction=False) as pipe:
            if payload is not None:
                pipe.set(keys.upload(cmd.request_id), payload, ex=keys.UPLOAD_TTL)
            pipe.xadd(keys.COMMANDS_STREAM, {"data": cmd.model_dump_json()})
            await pipe.execute()
        log.debug("submitted %s owner=%s bot=%s request=%s", cmd.op, cmd.owner, cmd.name, cmd.request_id)

    async def wait(
        self,
        request_id: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        on_progress: ProgressCallback | None = None,
    ) -> Result:
        """Wait for the final Result of a request, passing Progress messages to on_progress."""
        key = keys.reply(request_id)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return Result(
                    request_id=request_id,
                    ok=False,
                    error=ErrorInfo(
                        code=ErrorCode.TIMEOUT,
                        message="the runner did not answer in time; check the bot's status shortly",
                    ),
                )
            # BLPOP's timeout is in seconds, fractional allowed; 0 would block forever. Short blocks
            # stay well inside redis-py's default socket timeout (5 s), so a slow reply is no error.
            item = await self.redis.blpop([key], timeout=max(0.05, min(left, 1.0)))
            if item is None:
                continue
            msg = REPLY_ADAPTER.validate_json(item[1])
            if isinstance(msg, Result):
                return msg
            if on_progress is not None:
                await on_progress(msg)

    async def call(
        self,
        cmd: Command,
        payload: bytes | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        on_progress: ProgressCallback | None = None,
    ) -> Result:
        await self.submit(cmd, payload)
        return await self.wait(cmd.request_id, timeout=timeout, on_progress=on_progress)
