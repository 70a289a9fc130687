"""Rate limits: state-changing commands per user per minute, shared by the chat and the HTTP API.

A fixed one-minute window per user, counted in Redis (INCR), so every control-bot process and front
end draws from the same allowance. Reads (status, logs, list, a logs follow's polling) are free.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from redis.asyncio import Redis

from protocol import keys
from protocol.errors import BotrunnerError, ErrorCode, ErrorParams
from protocol.models import Op

log = logging.getLogger(__name__)

WINDOW_S = 60
# What costs: everything that changes a bot or a quota. STATUS, LOGS, LIST and SYSTEM only read.
COUNTED = frozenset(
    {
        Op.START,
        Op.STOP,
        Op.RESTART,
        Op.UPDATE,
        Op.DELETE,
        Op.SET_ENV,
        Op.SET_QUOTA,
        Op.BACKUP,
        Op.RESTORE,
        Op.DELETE_WEBHOOK,
    }
)
# `reason` of a refusal the user has already been told about in this window: the chat stays silent.
REPEAT = "repeat"


class RateLimited(BotrunnerError):
    code = ErrorCode.RATE_LIMITED


class RateLimiter:
    """Counts a user's state-changing commands; raises RateLimited past `per_minute` (0: no limit)."""

    def __init__(self, redis: Redis, per_minute: int, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.per_minute = per_minute
        self.clock = clock

    async def hit(self, user: int, op: Op) -> None:
        if self.per_minute <= 0 or op not in COUNTED:
            return
        now = self.clock()
        window = int(now // WINDOW_S)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.incr(keys.rate(user, window))
            pipe.expire(keys.rate(user, window), keys.RATE_WINDOW_TTL)
            count, _ = await pipe.execute()
        if int(count) <= self.per_minute:
            return
        # Told once per window: the first refusal of the window claims the notice.
        first = await self.redis.set(keys.rate_notice(user, window), b"1", nx=True, ex=keys.RATE_WINDOW_TTL)
        retry = max(1, math.ceil((window + 1) * WINDOW_S - now))
        log.info("user=%s over %d commands/min (%s): retry in %d s", user, self.per_minute, op.value, retry)
        raise RateLimited(
            f"too many changes: at most {self.per_minute} per minute; try again in {retry} s",
            params=ErrorParams(limit=self.per_minute, seconds=retry, reason=None if first else REPEAT),
        )
