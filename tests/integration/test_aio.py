"""Cancelling tasks that are busy with Redis commands (protocol/aio.py), against a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from protocol.aio import cancel_and_wait
from protocol.client import blocking_pool

pytestmark = pytest.mark.integration


class Busy:
    """Tasks sending Redis commands in a loop; whatever a test asserts, all end at its teardown."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.stopped = False
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, n: int) -> list[asyncio.Task[None]]:
        tasks = [asyncio.create_task(self._loop()) for _ in range(n)]
        self.tasks += tasks
        return tasks

    async def _loop(self) -> None:
        while not self.stopped:
            await self.redis.eval("return 1", 0)


@pytest.fixture
async def busy(redis_url: str) -> AsyncIterator[Busy]:
    # As the runner and the control bot connect: redis-py's default socket timeout (5 s) is what
    # puts asyncio.wait_for, and with it Python 3.11's dropped cancels, in every command.
    client = blocking_pool(redis_url)
    rig = Busy(client)
    yield rig
    rig.stopped = True  # a task that kept running ends at its next command, cancel or not
    await cancel_and_wait(rig.tasks, timeout=10)
    await client.aclose()


async def test_one_cancel_stops_a_task_busy_with_redis_commands(busy: Busy) -> None:
    """keep_cancels() (tests/conftest.py, as in the runner and the control bot). Without it, about
    one cancel in seven was dropped here, and a dropped one leaves its task running for good."""
    for _ in range(40):
        tasks = busy.start(10)
        await asyncio.sleep(0.01)
        for task in tasks:
            task.cancel()
        _done, running = await asyncio.wait(tasks, timeout=5)
        assert running == set()
        assert all(t.cancelled() for t in tasks)


async def test_cancel_and_wait_cancels_again_until_the_task_ends() -> None:
    dropped = 0

    async def drops_two() -> None:
        nonlocal dropped
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if dropped == 2:
                    raise
                dropped += 1

    task = asyncio.create_task(drops_two())
    await asyncio.sleep(0)
    assert await cancel_and_wait([task], timeout=5) == set()
    assert task.cancelled() and dropped == 2


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
