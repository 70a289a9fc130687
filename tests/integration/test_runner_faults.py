"""The runner under faults: expiry, SIGKILL mid-command, restarts, lost containers, no Docker."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import docker
import pytest
from redis.asyncio import Redis

from protocol import keys
from protocol.client import RunnerClient
from protocol.errors import ErrorCode
from protocol.models import BotState, Command, Op, SourceKind, SourceSpec
from tests.fixtures.process import REPO
from tests.fixtures.runner import RunnerProcess
from tests.integration.helpers import SLEEPER, call, containers_of, eventually, start_bot

pytestmark = pytest.mark.integration


def owner_id() -> int:
    return 100_000_000 + secrets.randbelow(800_000_000)


async def test_expired_command_is_discarded(
    runner_client: RunnerClient, docker_client: docker.DockerClient, unique_name
) -> None:
    owner, name = owner_id(), unique_name("late")
    cmd = Command(
        op=Op.START,
        owner=owner,
        name=name,
        deadline=time.time() - 1,
        source=SourceSpec(kind=SourceKind.FILE, filename="bot.py"),
    )
    res = await runner_client.call(cmd, SLEEPER)
    assert not res.ok and res.error is not None and res.error.code is ErrorCode.EXPIRED
    assert containers_of(docker_client, owner, name) == []
    assert (await call(runner_client, Op.LIST, owner)).bots == []
    assert await runner_client.redis.xlen(keys.COMMANDS_STREAM) == 0


async def test_sigkill_between_effect_and_ack_gives_one_container(
    runner_factory: Callable[..., RunnerProcess], docker_client: docker.DockerClient, unique_name
) -> None:
    rp = runner_factory(BOTRUNNER_FAULT_ACK_DELAY="30").start()
    redis = Redis.from_url(rp.redis_url)
    try:
        client = RunnerClient(redis)
        owner, name = owner_id(), unique_name("kill")
        cmd = Command(
            op=Op.START, owner=owner, name=name, source=SourceSpec(kind=SourceKind.FILE, filename="bot.py")
        )
        await client.submit(cmd, SLEEPER)

        async def created() -> bool:
            return len(containers_of(docker_client, owner, name)) == 1

        await eventually(created)
        rp.wait_for_log("fault injection: pausing", 10)
        rp.kill()
        pending = await redis.xpending(keys.COMMANDS_STREAM, keys.COMMANDS_GROUP)
        assert pending["pending"] == 1  # received, never acknowledged

        rp.env["BOTRUNNER_FAULT_ACK_DELAY"] = "0"
        rp.start()
        res = await client.wait(cmd.request_id, timeout=60)
        assert res.ok, res.error
        assert len(containers_of(docker_client, owner, name)) == 1
        listed = await call(client, Op.LIST, owner)
        assert [b.name for b in listed.bots or []] == [name]
        assert listed.quota is not None and listed.quota.used == 1
        pending = await redis.xpending(keys.COMMANDS_STREAM, keys.COMMANDS_GROUP)
        assert pending["pending"] == 0
        assert await redis.xlen(keys.COMMANDS_STREAM) == 0
    finally:
        await redis.aclose()


async def test_restart_of_runner_neither_stops_nor_duplicates_and_brings_back_lost_bots(
    runner_factory: Callable[..., RunnerProcess], docker_client: docker.DockerClient, unique_name
) -> None:
    rp = runner_factory(RUNNER_RECONCILE_INTERVAL="1").start()
    redis = Redis.from_url(rp.redis_url)
    try:
        client = RunnerClient(redis)
        owner = owner_id()
        keep, lost, down = unique_name("keep"), unique_name("lost"), unique_name("down")
        for name in (keep, lost, down):
            await start_bot(client, owner, name)
        await call(client, Op.STOP, owner, down)
        [kept] = containers_of(docker_client, owner, keep)
        kept_started = kept.attrs["State"]["StartedAt"]

        # The runner stops gracefully; the bots keep running without it.
        assert rp.stop(signal.SIGTERM, timeout=30) == 0
        assert await redis.get(keys.heartbeat(rp.env["RUNNER_ID"])) is None
        assert await redis.zscore(keys.RUNNERS, rp.env["RUNNER_ID"]) is None
        kept.reload()
        assert kept.status == "running"
        # Behind its back: one container is removed, as by `docker rm -f`.
        containers_of(docker_client, owner, lost)[0].remove(force=True)

        rp.start()

        async def lost_is_back() -> bool:
            cs = containers_of(docker_client, owner, lost)
            return len(cs) == 1 and cs[0].status == "running"

        await eventually(lost_is_back, timeout=30)
        [kept_after] = containers_of(docker_client, owner, keep)
        assert kept_after.id == kept.id  # adopted, not recreated
        assert kept_after.attrs["State"]["StartedAt"] == kept_started  # never stopped
        [down_after] = containers_of(docker_client, owner, down)
        assert down_after.status == "exited"  # a stopped bot stays stopped
        status = await call(client, Op.STATUS, owner, lost)
        assert status.bot is not None and status.bot.state is BotState.RUNNING

        # At runtime too: a container removed while the runner runs comes back.
        containers_of(docker_client, owner, keep)[0].remove(force=True)

        async def keep_is_back() -> bool:
            cs = containers_of(docker_client, owner, keep)
            return len(cs) == 1 and cs[0].status == "running"

        await eventually(keep_is_back, timeout=30)
    finally:
        await redis.aclose()


async def test_runner_brings_back_a_bot_stopped_behind_its_back_on_start(
    runner_factory: Callable[..., RunnerProcess], docker_client: docker.DockerClient, unique_name
) -> None:
    """As after a host reboot or a dockerd restart: desired running, container exited."""
    rp = runner_factory().start()
    redis = Redis.from_url(rp.redis_url)
    try:
        client = RunnerClient(redis)
        owner, name = owner_id(), unique_name("reboot")
        await start_bot(client, owner, name)
        rp.stop()
        [c] = containers_of(docker_client, owner, name)
        c.stop(timeout=1)
        rp.start()

        async def running() -> bool:
            c.reload()
            return bool(c.status == "running")

        await eventually(running, timeout=30)
        assert len(containers_of(docker_client, owner, name)) == 1
    finally:
        await redis.aclose()


async def test_docker_unavailable_fails_fast(runner_factory: Callable[..., RunnerProcess], tmp_path) -> None:
    rp = runner_factory(DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock").start()
    redis = Redis.from_url(rp.redis_url)
    try:
        client = RunnerClient(redis)
        t0 = time.perf_counter()
        res = await call(client, Op.LIST, owner_id())  # no Docker needed: records only
        assert res.ok
        res = await call(client, Op.SYSTEM, 1, admin=True)
        assert res.error is not None and res.error.code is ErrorCode.DOCKER_UNAVAILABLE
        res = await call(client, Op.START, owner_id(), "nodocker", payload=SLEEPER)
        assert res.error is not None and res.error.code is ErrorCode.DOCKER_UNAVAILABLE
        assert time.perf_counter() - t0 < 5
        health = await client.health()
        assert health is not None and health.docker_ok is False
        # A failed start takes no slot.
        listed = await call(client, Op.LIST, 5)
        assert listed.quota is not None and listed.quota.used == 0
    finally:
        await redis.aclose()


async def test_check_flag_follows_the_heartbeat(runner_factory: Callable[..., RunnerProcess]) -> None:
    rp = runner_factory()

    def check() -> int:
        # --check looks at this runner's own heartbeat: the same RUNNER_ID.
        env = {
            **os.environ,
            "REDIS_URL": rp.redis_url,
            "RUNNER_ID": rp.env["RUNNER_ID"],
            "PYTHONPATH": str(REPO),
        }
        return subprocess.run(
            [sys.executable, "-m", "runner", "--check"], env=env, capture_output=True, timeout=30
        ).returncode

    assert check() == 1
    rp.start()
    assert check() == 0
    rp.stop()
    assert check() == 1


def test_invalid_setting_is_one_clear_line() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "MAX_BOTS_PER_USER": "lots", "BOT_MEMORY_LIMIT": "huge"}
    proc = subprocess.run(
        [sys.executable, "-m", "runner"], env=env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode != 0
    assert "MAX_BOTS_PER_USER" in proc.stderr and "BOT_MEMORY_LIMIT" in proc.stderr
    assert "Traceback" not in proc.stderr


async def test_redis_outage_is_survived(runner_factory: Callable[..., RunnerProcess], tmp_path) -> None:
    from tests.fixtures.services import free_port

    port = free_port()
    server = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    redis_proc = subprocess.Popen(server, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        time.sleep(0.5)
        rp = runner_factory(REDIS_URL=url)
        rp.start()
        redis_proc.terminate()
        redis_proc.wait(10)
        time.sleep(2)
        assert rp.running()
        redis_proc = subprocess.Popen(server, stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        redis = Redis.from_url(url)
        try:
            client = RunnerClient(redis)

            async def beating() -> bool:
                return await client.health() is not None

            await eventually(beating, timeout=30)
            res = await call(client, Op.LIST, owner_id(), timeout=30)
            assert res.ok
        finally:
            await redis.aclose()
    finally:
        redis_proc.terminate()
        redis_proc.wait(10)


async def test_bots_get_a_network_of_their_own(
    runner_factory: Callable[..., RunnerProcess],
    docker_client: docker.DockerClient,
    test_session_id: str,
    unique_name,
) -> None:
    """RUNNER_NETWORK_MODE names a bridge the runner creates, with inter-bot traffic off.

    Nothing is sent over it: the bot only sleeps, so no traffic leaves loopback in this test."""
    network = f"botrunner-bots-{test_session_id}"
    rp = runner_factory(RUNNER_NETWORK_MODE=network).start()
    redis = Redis.from_url(rp.redis_url)
    try:
        [net] = docker_client.networks.list(names=[network])
        net.reload()
        assert net.attrs["Driver"] == "bridge"
        assert net.attrs["Options"].get("com.docker.network.bridge.enable_icc") == "false"
        assert net.attrs["Labels"].get("botrunner.instance") == test_session_id
        owner, name = owner_id(), unique_name("net")
        await start_bot(RunnerClient(redis), owner, name)
        [c] = containers_of(docker_client, owner, name)
        assert c.attrs["HostConfig"]["NetworkMode"] == network
        c.remove(force=True)
    finally:
        await redis.aclose()
        rp.stop()
        for n in docker_client.networks.list(names=[network]):
            n.remove()
