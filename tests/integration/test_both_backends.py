"""A named subset of the runner's operations, run once on each backend (docker, swarm).

Each backend gets its own runner process, its own Redis and its own RUNNER_INSTANCE (the swarm
one `<session>-sw`), so neither adopts the other's bots. What users see must not differ: deploy,
logs, update (one running task with the new code), stop, start, delete (nothing left), crash and
OOM reports, the crash-loop cap, and adoption after a runner restart.
"""

from __future__ import annotations

import secrets
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from redis.asyncio import Redis

from protocol.client import RunnerClient
from protocol.models import BotState, EventType, Op
from tests.fixtures.runner import RunnerProcess, runner_env
from tests.fixtures.services import start_redis_server
from tests.integration.helpers import EXAMPLES, call, events_for, eventually, start_bot

pytestmark = pytest.mark.integration

BACKENDS = ["docker", "swarm"]


@dataclass
class Rig:
    backend: str
    instance: str
    proc: RunnerProcess
    docker: docker.DockerClient

    def running_containers(self, owner: int, name: str) -> list[Any]:
        """What `docker ps --filter label=botrunner.bot=<name>` finds (swarm tasks carry it too)."""
        flt = {"label": [f"botrunner.owner={owner}", f"botrunner.bot={name}"], "status": "running"}
        return list(self.docker.containers.list(filters=flt))

    def services(self, owner: int, name: str) -> list[Any]:
        if self.backend != "swarm":
            return []
        return list(
            self.docker.api.services(filters={"label": [f"botrunner.owner={owner}", f"botrunner.bot={name}"]})
        )

    def configs(self, owner: int, name: str) -> list[Any]:
        if self.backend != "swarm":
            return []
        return list(
            self.docker.api.configs(filters={"label": [f"botrunner.owner={owner}", f"botrunner.bot={name}"]})
        )

    def restart_runner(self) -> None:
        self.proc.kill()  # SIGKILL: nothing is cleaned up on the way out
        self.proc.start()


@pytest.fixture(scope="module", params=BACKENDS)
def rig(
    request: pytest.FixtureRequest,
    base_image: str,
    test_session_id: str,
    docker_client: docker.DockerClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Rig]:
    backend = str(request.param)
    if backend == "swarm":
        request.getfixturevalue("swarm_manager")
    instance = f"{test_session_id}-{'sw' if backend == 'swarm' else 'dk'}"
    workdir = tmp_path_factory.mktemp(f"rig-{backend}")
    with tempfile.TemporaryDirectory(prefix="botrunner-redis-") as tmp:
        redis_proc, url = start_redis_server(Path(tmp))
        # No health gate: these tests read the crash and OOM alerts of a bot that fails at once.
        env = runner_env(url, base_image, instance, RUNNER_BACKEND=backend, RUNNER_HEALTH_GRACE="0")
        proc = RunnerProcess(env, workdir / "runner.log", workdir)
        try:
            proc.start()
            yield Rig(backend, instance, proc, docker_client)
        finally:
            proc.stop()
            redis_proc.terminate()
            try:
                redis_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                redis_proc.kill()


@pytest.fixture
async def client(rig: Rig) -> Iterator[RunnerClient]:  # type: ignore[misc]
    redis = Redis.from_url(rig.proc.redis_url)
    try:
        yield RunnerClient(redis)
    finally:
        await redis.aclose()


@pytest.fixture
async def events_redis(rig: Rig) -> Iterator[Redis]:  # type: ignore[misc]
    redis = Redis.from_url(rig.proc.redis_url)
    try:
        yield redis
    finally:
        await redis.aclose()


def owner_id() -> int:
    return 20_000_000 + secrets.randbelow(70_000_000)


def bot(tag: str) -> bytes:
    return f"import time\nprint('code {tag} up', flush=True)\nwhile True:\n    time.sleep(1)\n".encode()


async def logs_of(client: RunnerClient, owner: int, name: str) -> str:
    return (await call(client, Op.LOGS, owner, name, tail=50)).logs or ""


async def test_deploy_logs_update_leave_one_task_with_the_new_code(
    rig: Rig, client: RunnerClient, unique_name
) -> None:
    owner, name = owner_id(), unique_name(f"up-{rig.backend}")
    res = await start_bot(client, owner, name, bot("v1"))
    assert res.bot is not None and res.bot.state is BotState.RUNNING

    async def says(text: str) -> bool:
        return text in await logs_of(client, owner, name)

    await eventually(lambda: says("code v1 up"), timeout=30)
    res = await call(client, Op.UPDATE, owner, name, payload=bot("v2"))
    assert res.ok, res.error
    assert res.bot is not None and res.bot.state is BotState.RUNNING
    await eventually(lambda: says("code v2 up"), timeout=30)
    [task] = rig.running_containers(owner, name)
    assert task.labels["botrunner.instance"] == rig.instance
    if rig.backend == "swarm":
        assert len(rig.services(owner, name)) == 1

        # The old code's config goes once the service converged; only the new one is left.
        async def one_config() -> bool:
            return len(rig.configs(owner, name)) == 1

        await eventually(one_config, timeout=10)
    await call(client, Op.DELETE, owner, name)


async def test_stop_start_delete_leave_nothing(rig: Rig, client: RunnerClient, unique_name) -> None:
    owner, name = owner_id(), unique_name(f"ssd-{rig.backend}")
    await start_bot(client, owner, name, bot("s"))
    res = await call(client, Op.STOP, owner, name)
    assert res.bot is not None and res.bot.state is BotState.STOPPED
    assert rig.running_containers(owner, name) == []
    assert len(rig.services(owner, name)) == (1 if rig.backend == "swarm" else 0)  # the record stays
    res = await call(client, Op.START, owner, name)
    assert res.bot is not None and res.bot.state is BotState.RUNNING
    assert len(rig.running_containers(owner, name)) == 1
    res = await call(client, Op.DELETE, owner, name)
    assert res.ok
    assert rig.services(owner, name) == [] and rig.configs(owner, name) == []
    flt = {"label": [f"botrunner.owner={owner}", f"botrunner.bot={name}"]}
    assert rig.docker.containers.list(all=True, filters=flt) == []
    assert rig.docker.volumes.list(filters=flt) == []


async def test_crash_is_reported_once_and_the_loop_is_capped(
    rig: Rig, client: RunnerClient, events_redis: Redis, unique_name
) -> None:
    owner, name = owner_id(), unique_name(f"crash-{rig.backend}")
    await start_bot(client, owner, name, (EXAMPLES / "error_bot.py").read_bytes(), filename="error_bot.py")

    async def gave_up() -> bool:
        r = await call(client, Op.STATUS, owner, name)
        return r.bot is not None and r.bot.state is BotState.CRASHED

    await eventually(gave_up, timeout=60)
    status = (await call(client, Op.STATUS, owner, name)).bot
    assert status is not None and status.exit_code == 1 and status.restart_count == 3  # RUNNER_RESTART_MAX
    assert "ValueError: TEST ERROR" in await logs_of(client, owner, name)

    async def crashes() -> list[Any]:
        return [e for e in await events_for(events_redis, owner, name) if e.type is EventType.CRASHED]

    async def all_seen() -> bool:
        return len(await crashes()) == 4

    await eventually(all_seen, timeout=30)
    got = await crashes()
    assert [e.alert for e in got].count(True) == 1 and got[0].alert
    assert "ValueError: TEST ERROR" in (got[0].log_tail or "")
    assert [e.crash_loop for e in got].count(True) == 1 and got[-1].crash_loop
    assert rig.running_containers(owner, name) == []
    await call(client, Op.DELETE, owner, name)


async def test_oom_is_reported_as_oom(
    rig: Rig, client: RunnerClient, events_redis: Redis, unique_name
) -> None:
    owner, name = owner_id(), unique_name(f"oom-{rig.backend}")
    hog = b"print('eating', flush=True)\nx = []\nwhile True:\n    x.append(bytearray(16 * 1024 * 1024))\n"
    await start_bot(client, owner, name, hog)

    async def oom() -> bool:
        evs = await events_for(events_redis, owner, name)
        return any(e.type is EventType.CRASHED and e.oom_killed for e in evs)

    await eventually(oom, timeout=40)
    first = next(e for e in await events_for(events_redis, owner, name) if e.type is EventType.CRASHED)
    assert first.oom_killed and first.exit_code == 137
    await call(client, Op.DELETE, owner, name)


async def test_a_restarted_runner_adopts_without_duplicating(
    rig: Rig, client: RunnerClient, events_redis: Redis, unique_name
) -> None:
    owner, name = owner_id(), unique_name(f"adopt-{rig.backend}")
    res = await start_bot(client, owner, name, bot("a"))
    assert res.bot is not None
    [before] = rig.running_containers(owner, name)
    rig.restart_runner()
    status = (await call(client, Op.STATUS, owner, name)).bot
    assert status is not None and status.state is BotState.RUNNING
    [after] = rig.running_containers(owner, name)
    assert after.id == before.id  # adopted, not recreated
    assert len(rig.services(owner, name)) == (1 if rig.backend == "swarm" else 0)
    evs = await events_for(events_redis, owner, name)
    assert not any(e.type in (EventType.RECOVERED, EventType.CRASHED) for e in evs)
    await call(client, Op.DELETE, owner, name)
