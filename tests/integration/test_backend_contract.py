"""The Backend contract, asserted alike on FakeBackend, DockerBackend and SwarmBackend (real Docker),
so the fake the worker-logic tests lean on cannot drift from the engine it stands for."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace

import pytest

from runner.backend.base import Backend, ContainerSpec, DockerEvent
from runner.backend.docker import DockerBackend
from runner.backend.swarm import SwarmBackend
from tests.fakes.backend import STOPPED_EXIT, FakeBackend
from tests.fixtures.services import TEST_LABEL
from tests.integration.helpers import eventually

pytestmark = pytest.mark.integration

BOT = b"""\
import os, time
print(os.environ["GREETING"], "from", os.getcwd(), flush=True)
while True:
    time.sleep(1)
"""
GREETING = "hello from /app"


@dataclass
class Driver:
    backend: Backend
    image: str
    # What the bot's code does by itself on a real engine, a test does for it on the fake.
    printed: Callable[[int, str, str], None]
    exited: Callable[[int, str, int], None] = lambda owner, name, code: None


@pytest.fixture(params=["fake", "docker", "swarm"])
async def driver(request: pytest.FixtureRequest, test_session_id: str) -> AsyncIterator[Driver]:
    if request.param == "fake":
        fake = FakeBackend(restart_max=0)
        yield Driver(
            fake,
            "botrunner-test/python:bookworm",
            lambda o, n, line: fake.say(o, n, line),
            lambda o, n, code: fake.crash(o, n, exit_code=code),
        )
        return
    if request.param == "swarm":
        request.getfixturevalue("swarm_manager")
        # Services need a network Swarm knows; overlays use private ranges, so host.
        # restart_max 1: Swarm has no 0 (runner/settings.py refuses it).
        swarm = SwarmBackend(instance=f"{test_session_id}-contract-sw", network_mode="host", restart_max=1)
        await swarm.prepare()
        yield Driver(swarm, request.getfixturevalue("base_image"), lambda o, n, line: None)
        return
    # An instance of its own: the session's runner must not take these containers for its bots.
    backend = DockerBackend(instance=f"{test_session_id}-contract", network_mode="none", restart_max=0)
    yield Driver(backend, request.getfixturevalue("base_image"), lambda o, n, line: None)


def spec(owner: int, name: str, image: str, request_id: str) -> ContainerSpec:
    return ContainerSpec(
        owner=owner,
        name=name,
        image=image,
        command=["python3", "bot.py"],
        env={"GREETING": "hello"},
        files={"bot.py": BOT},
        request_id=request_id,
        memory_bytes=128 << 20,
        cpu=0.5,
        pids=64,
        labels={TEST_LABEL: "1"},
    )


async def test_lifecycle_basics(driver: Driver) -> None:
    backend = driver.backend
    owner, name = 900_000_000 + secrets.randbelow(99_999_999), f"contract-{secrets.token_hex(2)}"
    seen: list[DockerEvent] = []

    async def listen() -> None:
        async for ev in backend.events():
            if (ev.owner, ev.name) == (owner, name):
                seen.append(ev)

    listener = asyncio.create_task(listen())
    await asyncio.sleep(0.3)  # the event stream is open before anything happens
    try:
        # Missing is no error: inspect says None, logs are empty, stop and remove do nothing.
        assert await backend.inspect(owner, name) is None
        assert await backend.logs(owner, name, 10, None) == ""
        await backend.stop(owner, name, 1)
        await backend.remove(owner, name, volumes=True)

        info = await backend.deploy(spec(owner, name, driver.image, "req-1"))
        assert info.running and info.status == "running" and info.request_id == "req-1"
        assert info.exit_code is None and info.restart_count == 0
        inspected = await backend.inspect(owner, name)
        assert inspected is not None and inspected.id == info.id

        # A redelivered deploy (same request id) adopts the container it made.
        again = await backend.deploy(spec(owner, name, driver.image, "req-1"))
        assert again.id == info.id and again.running

        driver.printed(owner, name, GREETING)

        async def greeted() -> bool:
            return GREETING in await backend.logs(owner, name, 10, None)

        await eventually(greeted, timeout=20)
        assert (await backend.logs(owner, name, 1, None)).strip() == GREETING

        assert (owner, name, info.id) in {(o, n, i.id) for o, n, i in await backend.managed()}
        assert (owner, name) in await backend.volume_usage()
        for _ in range(2):  # the second sweep may take another road (one-shot against the last)
            usage = await backend.stats_many([(owner, name)])
            assert usage[(owner, name)].memory_bytes > 0

        await backend.stop(owner, name, 5)
        stopped = await backend.inspect(owner, name)
        assert stopped is not None and not stopped.running and not stopped.restarting
        assert stopped.status == "exited" and stopped.exit_code == STOPPED_EXIT
        assert await backend.stats_many([(owner, name)]) == {}

        await backend.start(owner, name)
        started = await backend.inspect(owner, name)
        assert started is not None and started.running and started.id == info.id

        # A new request replaces the container.
        replaced = await backend.deploy(spec(owner, name, driver.image, "req-2"))
        assert replaced.id != info.id and replaced.request_id == "req-2" and replaced.running

        await backend.remove(owner, name, volumes=True)
        assert await backend.inspect(owner, name) is None
        assert (owner, name) not in await backend.volume_usage()
        assert owner not in {o for o, _n, _i in await backend.managed()}

        async def heard() -> bool:
            died = [e for e in seen if e.action == "die" and e.container_id == info.id]
            return any(e.exit_code == STOPPED_EXIT for e in died) and any(
                e.action == "start" and e.container_id == replaced.id for e in seen
            )

        await eventually(heard, timeout=10)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await backend.remove(owner, name, volumes=True)


async def test_an_engine_id_and_a_version(driver: Driver) -> None:
    assert await driver.backend.engine_id()
    assert await driver.backend.version()
    assert await driver.backend.node_count() >= 1


@pytest.mark.parametrize("ending", ["stop", "crash"])
async def test_events_since_replays_what_came_before_the_stream_opened(driver: Driver, ending: str) -> None:
    """A stream asked `since` a moment gives that moment's events first: the event watcher picks
    its moment, then the stream opens (in a thread, later on a busy host). A bot that died in
    between was once no watcher's to alert (tests/integration/test_two_runners.py). Swarm: a
    crashed task stays listed, and the first listing must not prime its death away."""
    backend = driver.backend
    owner, name = 900_000_000 + secrets.randbelow(99_999_999), f"since-{secrets.token_hex(2)}"
    code = STOPPED_EXIT if ending == "stop" else 3
    bot = spec(owner, name, driver.image, "req-since")
    if ending == "crash":
        bot = replace(bot, files={"bot.py": b"import sys\nsys.exit(3)\n"})
    before = time.time()  # the engine stamps its events with this host's clock
    try:
        info = await backend.deploy(bot)
        if ending == "stop":
            await backend.stop(owner, name, 5)
        else:
            driver.exited(owner, name, code)

        async def ended() -> bool:  # restarts, if any, over: restart_max 0 is none (docker: no policy)
            now = await backend.inspect(owner, name)
            return now is not None and not now.running and not now.restarting and now.exit_code == code

        await eventually(ended, timeout=30)
        final = await backend.inspect(owner, name)
        assert final is not None
        deaths = final.restart_count + 1
        seen: list[DockerEvent] = []

        async def listen() -> None:
            async for ev in backend.events(since=before):
                if (ev.owner, ev.name) == (owner, name):
                    seen.append(ev)

        listener = asyncio.create_task(listen())
        try:

            async def replayed() -> bool:
                mine = [(e.action, e.exit_code) for e in seen if e.container_id == info.id]
                return [a for a in mine if a[0] in ("start", "die")][:2] == [("start", None), ("die", code)]

            try:
                await eventually(replayed, timeout=10)
            except AssertionError:
                raise AssertionError(f"not replayed: {seen}") from None
            await asyncio.sleep(1.5)  # a second report of a death, were there one (swarm's poll)
            assert len([e for e in seen if e.action == "die"]) == deaths, seen
            assert all(e.at is None or e.at >= before for e in seen)  # (swarm's poll stamps none)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
    finally:
        await backend.remove(owner, name, volumes=True)


@pytest.mark.parametrize("driver", ["fake", "docker"], indirect=True)
async def test_a_redelivered_deploy_makes_again_a_container_never_started(driver: Driver) -> None:
    """The runner that made it died between the engine's create and the files' copy (SIGKILL,
    test_two_runners.py): the container carries the request's label, no bot.py, and never ran.
    Adopted and started, the bot died at once (python's exit 2), again and again. (Swarm
    creates a service with its files in one call: nothing half made to adopt.)"""
    backend = driver.backend
    owner, name = 900_000_000 + secrets.randbelow(99_999_999), f"half-{secrets.token_hex(2)}"
    whole = spec(owner, name, driver.image, "req-half")
    try:
        half = await backend.deploy(replace(whole, files={}), start=False)
        info = await backend.deploy(whole)
        assert info.id != half.id and info.running
        driver.printed(owner, name, GREETING)

        async def greeted() -> bool:
            return GREETING in await backend.logs(owner, name, 10, None)

        await eventually(greeted, timeout=20)
        # Once started, it is the request's for good: adopted, as test_lifecycle_basics says.
        again = await backend.deploy(whole)
        assert again.id == info.id
    finally:
        await backend.remove(owner, name, volumes=True)
