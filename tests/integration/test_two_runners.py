"""Two runner processes on one Redis: one queue, one engine, one leader.

One runner is SIGKILLed in the middle of a burst of 30 commands from 5 users. The other claims
what it left pending: every command is answered, no bot gets a second container, each crash is
alerted exactly once, before and after the leader changed, and nothing else reads as a crash.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from collections.abc import Callable

import docker
import pytest
from redis.asyncio import Redis

from protocol import keys
from protocol.client import RunnerClient
from protocol.heartbeats import live_runners
from protocol.models import Event, EventType, Op, Result
from tests.fixtures.runner import RunnerProcess
from tests.integration.helpers import SLEEPER, call, containers_of, events_for, eventually

pytestmark = pytest.mark.integration

IDLE_MS = 3000


async def crash_events(redis: Redis, owner: int, name: str) -> list[Event]:
    return [e for e in await events_for(redis, owner, name) if e.type is EventType.CRASHED]


async def alerts(redis: Redis, owner: int, name: str) -> int:
    return sum(1 for e in await crash_events(redis, owner, name) if e.alert)


async def crash_once(
    docker_client: docker.DockerClient,
    redis: Redis,
    owner: int,
    name: str,
    *,
    then: Callable[[], None] = lambda: None,
    timeout: float = 20,
) -> None:
    """SIGKILL the bot's process, as the kernel's OOM killer or a segfault would end it: Docker
    restarts it (on-failure); one alert, never two. (Not `docker kill`: Docker counts that as a
    stop by hand and restarts nothing.) `then` runs right after (e.g. starts the runner that is
    to alert it)."""
    before = await alerts(redis, owner, name)
    [container] = containers_of(docker_client, owner, name)

    async def running_pid() -> bool:
        container.reload()
        return container.status == "running" and int(container.attrs["State"]["Pid"]) > 0

    await eventually(running_pid, timeout=20)
    # Never 0 (checked above): os.kill(0, ...) would signal this test's own process group.
    os.kill(int(container.attrs["State"]["Pid"]), signal.SIGKILL)  # the tests run as root
    then()

    async def alerted() -> bool:
        return await alerts(redis, owner, name) > before

    await eventually(alerted, timeout=timeout)
    await asyncio.sleep(3)  # time for a second watcher's duplicate, if there were one
    assert await alerts(redis, owner, name) == before + 1


async def test_sigkill_of_one_runner_mid_burst(
    runner_factory: Callable[..., RunnerProcess],
    docker_client: docker.DockerClient,
    unique_name: Callable[[str], str],
) -> None:
    # No health gate: a crash right after a deploy is then an alert, which this test counts.
    common = {"RUNNER_CLAIM_IDLE_MS": str(IDLE_MS), "RUNNER_HEALTH_GRACE": "0"}
    a = runner_factory(RUNNER_ID=f"a-{secrets.token_hex(3)}", **common)
    b = runner_factory(REDIS_URL=a.redis_url, RUNNER_ID=f"b-{secrets.token_hex(3)}", **common)
    # A third, started once both others are dead (made now: the factory empties the database).
    c = runner_factory(REDIS_URL=a.redis_url, RUNNER_ID=f"c-{secrets.token_hex(3)}", **common)
    a.start()
    b.start()
    redis = Redis.from_url(a.redis_url)
    try:
        client = RunnerClient(redis)
        live = {h.runner_id for h in await live_runners(redis)}
        assert live == {a.env["RUNNER_ID"], b.env["RUNNER_ID"]}

        users = [100_000_000 + secrets.randbelow(800_000_000) for _ in range(5)]
        bots = [(u, unique_name(f"two{i}")) for u in users for i in range(2)]

        # A crash while both run: one leader, one alert.
        first_owner, first = bots[0]
        assert (await call(client, Op.START, first_owner, first, payload=SLEEPER)).ok
        await crash_once(docker_client, redis, first_owner, first)

        answered: list[Result] = []

        async def chain(owner: int, name: str) -> None:
            # Three commands per bot in order; ten bots at once: 30 commands from 5 users.
            steps = [
                dict(op=Op.START, payload=SLEEPER) if name != first else dict(op=Op.RESTART),
                dict(op=Op.SET_ENV, env={"N": "1"}),
                dict(op=Op.RESTART),
            ]
            for step in steps:
                op = step.pop("op")
                answered.append(await call(client, op, owner, name, timeout=90, **step))  # type: ignore[arg-type]

        burst = asyncio.gather(*(chain(o, n) for o, n in bots))

        async def some_answered() -> bool:
            return len(answered) >= 8

        await eventually(some_answered, timeout=60, every=0.05)
        victim, survivor = (a, b) if secrets.randbelow(2) else (b, a)
        victim.kill()
        started = time.monotonic()
        await asyncio.wait_for(burst, 120)
        assert len(answered) == 30
        assert all(r.ok for r in answered), [r.error for r in answered if not r.ok]
        assert time.monotonic() - started < 60

        for owner, name in bots:
            assert len(containers_of(docker_client, owner, name)) == 1, name
        pending = await redis.xpending(keys.COMMANDS_STREAM, keys.COMMANDS_GROUP)
        assert pending["pending"] == 0

        # After the kill: the survivor leads (within the lease's TTL), and alerts once.
        async def survivor_leads() -> bool:
            return any(
                h.leader and h.runner_id == survivor.env["RUNNER_ID"] for h in await live_runners(redis)
            )

        await eventually(survivor_leads, timeout=IDLE_MS / 1000 + 10)
        # At once: a crash just as the new leader subscribes is caught up from the container's
        # state, and a restart no leader watched (in the burst) hides no crash (docs/backends.md).
        owner, name = bots[3]
        await crash_once(docker_client, redis, owner, name)

        # No runner at all when a bot crashes: the survivor dies too, the bot crashes, a third
        # runner starts and takes the lease after its TTL. It alerts that crash, once.
        survivor.kill()
        owner, name = bots[5]
        await crash_once(docker_client, redis, owner, name, then=c.start, timeout=IDLE_MS / 1000 + 40)

        # And no other crash at all: not a restart split by the leader change read as one, not a
        # bot left without its code by a deploy the victim died in (both once seen here).
        crashes = {bot: len(await crash_events(redis, *bot)) for bot in bots}
        assert crashes == {bot: int(bot in (bots[0], bots[3], bots[5])) for bot in bots}
    finally:
        await redis.aclose()
        for rp in (a, b, c):
            if rp.running():
                rp.kill()


async def test_a_runner_on_another_engine_refuses_to_start(
    runner_factory: Callable[..., RunnerProcess],
) -> None:
    """A live runner published another engine id: the new one says why in one line and exits."""
    from protocol.heartbeats import beat
    from protocol.models import RunnerHealth

    rp = runner_factory(RUNNER_ID=f"c-{secrets.token_hex(3)}")
    redis = Redis.from_url(rp.redis_url)
    try:
        other = RunnerHealth(runner_id="elsewhere", ts=time.time(), docker_ok=True, engine_id="OTHER:ENGINE")

        async def beating() -> None:
            while True:
                other.ts = time.time()
                await beat(redis, other)
                await asyncio.sleep(1)

        task = asyncio.create_task(beating())
        try:
            await asyncio.sleep(0.2)
            rp.start(wait_ready=False)
            deadline = time.monotonic() + 60
            while rp.running() and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
        finally:
            task.cancel()
        assert not rp.running()
        assert "refusing to start" in rp.log_text() and "OTHER:ENGINE" in rp.log_text()
    finally:
        await redis.aclose()
