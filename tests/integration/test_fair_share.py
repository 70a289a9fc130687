"""Fair share against the real runner: one member's hanging builds cannot starve another member.

The hostile member's dependencies point at a package server on loopback that accepts connections
and never answers, so each of their builds hangs in pip. Before fair share, nine /updates of that
bot waiting for its lock held all eight slots, and everyone else's commands waited behind them.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator

import docker
import pytest
from redis.asyncio import Redis

from protocol.client import RunnerClient
from protocol.models import Command, Op, SourceKind, SourceSpec
from tests.fixtures.runner import RunnerProcess
from tests.integration.helpers import SLEEPER, call, containers_of

pytestmark = pytest.mark.integration


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts every connection and never says a word."""
    server = socket.create_server(("127.0.0.1", 0), backlog=128)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                conn, _ = server.accept()
                held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()  # pip fails at once now instead of after its retries
        server.close()


def hanging_bot(port: int, package: str) -> bytes:
    return (
        f'# /// script\n# dependencies = ["{package} @ http://127.0.0.1:{port}/{package}.tar.gz"]\n# ///\n'
    ).encode() + SLEEPER


def owner_id() -> int:
    return 100_000_000 + secrets.randbelow(800_000_000)


async def test_one_members_hanging_builds_do_not_starve_another(
    runner_factory: Callable[..., RunnerProcess],
    docker_client: docker.DockerClient,
    black_hole: int,
    unique_name: Callable[[str], str],
) -> None:
    rp = runner_factory().start()
    redis = Redis.from_url(rp.redis_url)
    try:
        client = RunnerClient(redis)
        hostile, member = owner_id(), owner_id()
        hog = unique_name("hog")
        file = SourceSpec(kind=SourceKind.FILE, filename="bot.py")
        # One start of a bot whose build hangs, nine updates of it, and two more deploys like it.
        flood = [Command(op=Op.START, owner=hostile, name=hog, source=file)]
        flood += [Command(op=Op.UPDATE, owner=hostile, name=hog, source=file) for _ in range(9)]
        flood += [
            Command(op=Op.START, owner=hostile, name=unique_name(f"hog{i}"), source=file) for i in (2, 3)
        ]
        for i, cmd in enumerate(flood):
            await client.submit(cmd, hanging_bot(black_hole, f"pkg{i % 3}x"))
        rp.wait_for_log("dependencies: pip install", 60)  # a build hangs
        await asyncio.sleep(1.0)  # and the runner has read the rest of the flood

        started = time.monotonic()
        listed = await call(client, Op.LIST, member, timeout=30)
        assert listed.ok, listed.error
        assert time.monotonic() - started < 2.0, f"LIST took {time.monotonic() - started:.1f} s"

        name = unique_name("fair")
        started = time.monotonic()
        res = await call(client, Op.START, member, name, payload=SLEEPER, timeout=60)
        took = time.monotonic() - started
        assert res.ok, res.error
        assert took < 30.0, f"the deploy took {took:.1f} s"
        [container] = containers_of(docker_client, member, name)
        assert container.status == "running"
    finally:
        await redis.aclose()
        rp.kill()
