"""Reconcile after the Docker daemon restarts: exactly the bots that should run, run again.

dockerd, when it starts, restarts every on-failure container whose last exit code was non-zero,
and a bot stopped with SIGTERM exits 143: before the fix, a user's stopped bot came back too.

This test restarts the machine's dockerd, so every other test using Docker at that moment fails.
It is marked `dockerd_restart`: CI runs it; on a shared machine deselect it
(`-m "not dockerd_restart"`) and run it alone.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import docker
import pytest
from redis.asyncio import Redis

from protocol.client import RunnerClient
from protocol.models import Op
from tests.fixtures.runner import RunnerProcess
from tests.integration.helpers import call, containers_of, eventually, start_bot

pytestmark = [pytest.mark.integration, pytest.mark.dockerd_restart]

DOCKERD_LOG = Path("/var/tmp/botrunner-dockerd.log")  # where scripts/test.sh starts it


def _docker_answers() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0


def restart_dockerd() -> None:
    """Stop dockerd (SIGTERM, as systemd would) and start it again the way scripts/test.sh does."""
    pid = int(Path("/var/run/docker.pid").read_text().strip())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, "dockerd did not stop within 60 s"
        time.sleep(0.2)
    with DOCKERD_LOG.open("ab") as log:
        subprocess.Popen(
            ["dockerd"], stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
        )
    deadline = time.monotonic() + 60
    while not _docker_answers():
        assert time.monotonic() < deadline, "dockerd did not answer within 60 s of its start"
        time.sleep(0.5)


async def test_after_a_daemon_restart_exactly_the_running_bot_runs(
    runner_factory: Callable[..., RunnerProcess],
    unique_name: Callable[[str], str],
) -> None:
    rp = runner_factory(RUNNER_RECONCILE_INTERVAL="5").start()
    redis = Redis.from_url(rp.redis_url)
    try:
        client = RunnerClient(redis)
        owner = 100_000_000 + secrets.randbelow(800_000_000)
        up, down = unique_name("up"), unique_name("down")
        await start_bot(client, owner, up)
        await start_bot(client, owner, down)
        assert (await call(client, Op.STOP, owner, down)).ok

        restart_dockerd()
        back = time.monotonic()
        fresh = docker.from_env()
        try:

            async def converged() -> bool:
                ups = containers_of(fresh, owner, up)
                downs = containers_of(fresh, owner, down)
                return (
                    len(ups) == 1
                    and ups[0].status == "running"
                    and len(downs) == 1
                    and downs[0].status != "running"
                )

            await eventually(converged, timeout=30)
            assert time.monotonic() - back < 30
            # And it stays so: no late restart of the stopped one, no second container.
            time.sleep(6)
            assert await converged()
        finally:
            fresh.close()
    finally:
        await redis.aclose()
        rp.kill()
