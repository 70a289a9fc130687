"""The rate limiter on real Redis: a fixed one-minute window per user, reads free, told once."""

from __future__ import annotations

import itertools

import pytest
from redis.asyncio import Redis

from controlbot.ratelimit import REPEAT, RateLimited, RateLimiter
from protocol.models import Op

pytestmark = pytest.mark.integration

_users = itertools.count(970_001)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_limit_per_window_reads_free_and_one_notice(redis_client: Redis) -> None:
    user, clock = next(_users), Clock(6_000_000.0)  # the start of a minute
    limiter = RateLimiter(redis_client, 2, clock=clock)
    await limiter.hit(user, Op.START)
    await limiter.hit(user, Op.STOP)
    for _ in range(5):
        await limiter.hit(user, Op.STATUS)  # reads never count
        await limiter.hit(user, Op.LIST)
    clock.now += 15
    with pytest.raises(RateLimited) as first:
        await limiter.hit(user, Op.RESTART)
    assert first.value.params.limit == 2 and first.value.params.seconds == 45
    assert first.value.params.reason is None  # the one to tell
    with pytest.raises(RateLimited) as again:
        await limiter.hit(user, Op.DELETE)
    assert again.value.params.reason == REPEAT
    clock.now += 45  # the next window
    await limiter.hit(user, Op.START)


async def test_zero_turns_it_off(redis_client: Redis) -> None:
    limiter = RateLimiter(redis_client, 0)
    for _ in range(100):
        await limiter.hit(next(_users), Op.START)
