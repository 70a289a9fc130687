"""A member cannot fill the host's disk through a bot: over BOT_DISK_LIMIT it is stopped and its
owner told; /tmp stays within the memory limit. Plays the attacker against the real runner."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import docker
import pytest
from redis.asyncio import Redis

from protocol.client import RunnerClient
from protocol.models import BotState, Desired, EventType, Op
from tests.fixtures.runner import RunnerProcess
from tests.integration.helpers import call, containers_of, events_for, eventually, start_bot

pytestmark = pytest.mark.integration

# Writes 12 MB into /data, a little at a time, then idles: a bot filling the disk.
FILLER = (
    b"import os, time\n"
    b"with open(os.path.join(os.environ['DATA_DIR'], 'fill.bin'), 'wb') as f:\n"
    b"    for _ in range(12):\n"
    b"        f.write(os.urandom(1 << 20)); f.flush()\n"
    b"print('filled', flush=True)\n"
    b"while True:\n"
    b"    time.sleep(1)\n"
)


async def test_a_bot_over_its_disk_limit_is_stopped_and_its_owner_told(
    runner_factory: Callable[..., RunnerProcess],
    docker_client: docker.DockerClient,
    unique_name: Callable[[str], str],
) -> None:
    rp = runner_factory(BOT_DISK_LIMIT="5m", RUNNER_STATS_INTERVAL="1", BOT_MEMORY_LIMIT="32m").start()
    redis = Redis.from_url(rp.redis_url)
    try:
        client = RunnerClient(redis)
        owner, name = 10_000_000 + secrets.randbelow(80_000_000), unique_name("filler")
        await start_bot(client, owner, name, FILLER)
        [container] = containers_of(docker_client, owner, name)
        # /tmp is memory: a quarter of the 32 MB limit, not the 64 MB a bigger bot gets.
        assert "size=8388608" in container.attrs["HostConfig"]["Tmpfs"]["/tmp"]

        async def told() -> bool:
            return any(e.type is EventType.DISK_LIMIT_EXCEEDED for e in await events_for(redis, owner, name))

        await eventually(told, timeout=60)
        [event] = [e for e in await events_for(redis, owner, name) if e.type is EventType.DISK_LIMIT_EXCEEDED]
        assert event.disk_limit_bytes == 5 << 20 and (event.disk_used_bytes or 0) > 5 << 20
        status = await call(client, Op.STATUS, owner, name)
        assert status.bot is not None and status.bot.desired is Desired.STOPPED
        assert status.bot.state is BotState.STOPPED
        # Not brought back by reconciliation, and no crash alert for a stop the runner made.
        await eventually(lambda: _never_alerted(redis, owner, name), timeout=5)
        container.reload()
        assert container.status != "running"
        await call(client, Op.DELETE, owner, name)
    finally:
        await redis.aclose()


async def _never_alerted(redis: Redis, owner: int, name: str) -> bool:
    events = await events_for(redis, owner, name)
    return not any(e.type is EventType.CRASHED and e.alert for e in events)
