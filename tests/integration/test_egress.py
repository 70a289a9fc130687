"""The egress guard, attacked from a bot: the host behind the bridge's gateway stays out of reach.

The only test that puts bots on a bridge: everything else runs them with host networking. The one
target is the gateway of the test's own bridge, where the test listens on 0.0.0.0; nothing aims at
the metadata address or at private networks outside this host.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import docker
import docker.errors
import pytest
from redis.asyncio import Redis

from protocol.client import RunnerClient
from protocol.models import Op
from runner.backend import names
from runner.backend.egress import EgressGuard, EgressMode, bridge_of
from tests.fixtures.runner import RunnerProcess
from tests.integration.helpers import call, eventually, start_bot

pytestmark = pytest.mark.integration

PROBE_TIMEOUT_S = 3

PROBE = """
import socket, time

def gateway():
    for line in open("/proc/net/route").read().splitlines()[1:]:
        f = line.split()
        if f[1] == "00000000":
            return socket.inet_ntoa(int(f[2], 16).to_bytes(4, "little"))

gw = gateway()
try:
    socket.create_connection((gw, {port}), timeout={timeout}).sendall(b"hello from a bot")
    print("PROBE connected", gw, flush=True)
except OSError as e:
    print("PROBE blocked", gw, type(e).__name__, flush=True)
try:
    print("RESOLVE ok", socket.gethostbyname("{container}"), flush=True)
except OSError as e:
    print("RESOLVE failed", e, flush=True)
while True:
    time.sleep(1)
"""


def owner_id() -> int:
    return 100_000_000 + secrets.randbelow(800_000_000)


class Listener:
    """A TCP server on 0.0.0.0 that records who connected: the bot's target on the host."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.peers: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, addr = self.sock.accept()
            except OSError:
                continue
            self.peers.append(addr[0])
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    try:
        yield server
    finally:
        server.close()


def _backend() -> str:
    """The iptables binary holding Docker's chains, as the guard chooses it."""
    for binary in ("iptables-nft", "iptables-legacy"):
        if subprocess.run([binary, "-S", "DOCKER-USER"], capture_output=True, check=False).returncode == 0:
            return binary
    raise AssertionError("no iptables backend holds DOCKER-USER: these tests need root and Docker's chains")


def iptables(*args: str) -> str:
    return subprocess.run([_backend(), *args], capture_output=True, text=True, check=False).stdout


def tagged_rules(tag: str) -> list[str]:
    """Every rule carrying this tag in the chains the guard writes."""
    out = []
    for chain in ("DOCKER-USER", "INPUT", "BOTRUNNER-INPUT"):
        out += [line for line in iptables("-S", chain).splitlines() if f'"{tag}"' in line]
    return out


def drop_tagged(tag: str) -> None:
    for line in tagged_rules(tag):
        subprocess.run(["sh", "-c", f"{_backend()} {line.replace('-A ', '-D ', 1)}"], check=False)


@pytest.fixture
def bridge(
    unique_name: Callable[[str], str], docker_client: docker.DockerClient, test_session_id: str
) -> Iterator[str]:
    """A unique network name for the runner to create; it, its containers and its rules go after."""
    name = unique_name("egress")
    try:
        yield name
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            net = docker_client.networks.get(name)
            net.reload()
            for c in net.containers:
                c.remove(force=True, v=True)
            net.remove()
        drop_tagged(f"botrunner:{test_session_id}")


async def deploy_probe(client: RunnerClient, owner: int, name: str, port: int) -> str:
    code = PROBE.format(port=port, timeout=PROBE_TIMEOUT_S, container=names.container_name(owner, name))
    await start_bot(client, owner, name, code.encode())
    logs = ""

    async def finished() -> bool:
        nonlocal logs
        logs = (await call(client, Op.LOGS, owner, name)).logs or ""
        return "RESOLVE" in logs

    await eventually(finished, timeout=PROBE_TIMEOUT_S + 20)
    return logs


async def test_bot_cannot_reach_the_host_but_resolves_its_name(
    runner_factory: Callable[..., RunnerProcess],
    docker_client: docker.DockerClient,
    listener: Listener,
    bridge: str,
    test_session_id: str,
) -> None:
    tag = f"botrunner:{test_session_id}"
    rp = runner_factory(RUNNER_NETWORK_MODE=bridge).start()
    redis = Redis.from_url(rp.redis_url)
    try:
        client = RunnerClient(redis)
        owner, name = owner_id(), "prober"
        logs = await deploy_probe(client, owner, name, listener.port)
        print("\n" + "\n".join(tagged_rules(tag)))
        assert "PROBE blocked" in logs, logs
        assert listener.peers == []
        assert "RESOLVE ok" in logs, logs  # 127.0.0.11 still answers inside the container
        status = await call(client, Op.STATUS, owner, name)
        assert status.ok and status.bot is not None and status.bot.state.value == "running"

        installed = tagged_rules(tag)
        assert installed and any("BOTRUNNER-INPUT" in r and r.startswith("-A INPUT") for r in installed)
        await asyncio.sleep(3)  # a reconcile (every 2 s) re-checks the rules: nothing is added
        assert tagged_rules(tag) == installed
        assert rp.stop(signal.SIGTERM, timeout=30) == 0
        rp.start()  # a restart installs them again: still one copy of each
        assert tagged_rules(tag) == installed

        assert (await call(client, Op.DELETE, owner, name)).ok
        docker_client.networks.get(bridge).remove()

        async def rules_gone() -> bool:
            return tagged_rules(tag) == []

        await eventually(rules_gone, timeout=10)
    finally:
        await redis.aclose()
        rp.stop()


async def test_open_egress_lets_the_same_probe_through(
    runner_factory: Callable[..., RunnerProcess], listener: Listener, bridge: str, test_session_id: str
) -> None:
    """Without the guard the probe connects: the test above would fail on today's code."""
    rp = runner_factory(RUNNER_NETWORK_MODE=bridge, RUNNER_EGRESS="open").start()
    redis = Redis.from_url(rp.redis_url)
    try:
        client = RunnerClient(redis)
        logs = await deploy_probe(client, owner_id(), "prober", listener.port)
        assert "PROBE connected" in logs, logs
        assert listener.peers, "the listener saw no connection"
        assert "RUNNER_EGRESS=open" in rp.log_text()
        assert tagged_rules(f"botrunner:{test_session_id}") == []
    finally:
        await redis.aclose()
        rp.stop()


@pytest.mark.parametrize("egress", ["public", "open"])
async def test_deploy_time_with_and_without_the_guard(
    runner_factory: Callable[..., RunnerProcess], bridge: str, egress: str
) -> None:
    """Prints the median deploy time (start of a sleeper, command to reply) under each mode."""
    rp = runner_factory(RUNNER_NETWORK_MODE=bridge, RUNNER_EGRESS=egress).start()
    redis = Redis.from_url(rp.redis_url)
    try:
        client = RunnerClient(redis)
        owner, times = owner_id(), []
        for i in range(8):
            t0 = time.perf_counter()
            await start_bot(client, owner, f"timed{i % 3}")
            times.append(time.perf_counter() - t0)
            await call(client, Op.DELETE, owner, f"timed{i % 3}")
        print(f"\nEGRESS={egress}: deploy median {statistics.median(times) * 1000:.0f} ms over {len(times)}")
    finally:
        await redis.aclose()
        rp.stop()


async def test_helper_container_installs_and_removes_the_rules(
    docker_client: docker.DockerClient, base_image: str, bridge: str, docker_labels: dict[str, str]
) -> None:
    """The compose path: the runner has no NET_ADMIN, a host-network helper container has it."""
    instance = f"{bridge}-helper"
    net = docker_client.networks.create(bridge, driver="bridge", labels=docker_labels)
    guard = EgressGuard(
        mode=EgressMode.PUBLIC,
        allow=[],
        instance=instance,
        network=bridge,
        base_image=base_image,
        build_network="host",
        client=lambda: docker_client,
        helper=True,
    )
    tag = f"botrunner:{instance}"
    try:
        await guard.ensure()
        installed = tagged_rules(tag)
        assert any(f"-A INPUT -i {bridge_of(net.attrs)} " in r for r in installed), installed
        await guard.ensure()
        assert tagged_rules(tag) == installed
        net.remove()
        await guard.ensure()
        assert tagged_rules(tag) == []
    finally:
        drop_tagged(tag)
