"""Stopping tasks that are busy with Redis commands (protocol/aio.py), against a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from protocol.aio import cancel_and_wait
from protocol.client import blocking_pool

pytestmark = pytest.mark.integration


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    # As the runner and the control bot connect: redis-py's default socket timeout (5 s) is what
    # puts asyncio.wait_for, and with it the dropped cancels of Python 3.11, in every command.
    client = blocking_pool(redis_url)
    yield client
    await client.aclose()


async def busy(redis: Redis) -> None:
    while True:
        await redis.eval("return 1", 0)


async def test_tasks_busy_with_redis_commands_are_stopped_for_sure(redis: Redis) -> None:
    """Forty rounds of ten tasks, each stopped while it sends commands. A plain cancel() and wait
    left some running for good on Python 3.11 (a lease keeper that renewed a bot's lock forever)."""
    for _ in range(40):
        tasks = [asyncio.create_task(busy(redis)) for _ in range(10)]
        await asyncio.sleep(0.01)
        assert await cancel_and_wait(tasks, timeout=5) == set()
        assert all(t.cancelled() for t in tasks)


async def test_a_bounded_wait_returns_what_would_not_stop() -> None:
    released = asyncio.Event()

    async def stubborn() -> None:
        while not released.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(10)

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    assert await cancel_and_wait([task], timeout=0.3) == {task}
    released.set()
    assert await cancel_and_wait([task], timeout=5) == set()
