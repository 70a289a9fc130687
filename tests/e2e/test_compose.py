"""The shipped stack under Docker Compose: the image builds, the stack comes up healthy, a bot deploys.

The image is built from the repository's Dockerfile on the local test base (no registry here) and
tagged by a hash of its build context, so reruns with unchanged sources reuse it. Redis runs from a
small image built on the same base with Debian's redis-server. docker-compose.test.yml puts every
service on the host network with loopback ports, the runner on the session's RUNNER_INSTANCE (the
session cleanup removes the bots it made) and the control bot on the fake Bot API.

Docker discards published ports under host networking, but Compose v1 (docker-py) refuses the
combination outright, so the test resolves the two files with `docker-compose config` and drops the
`ports:` of host-networked services from that resolved file before `up`. Nothing else changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import pytest
import redis
import yaml

from tests.fakes.telegram import FakeTelegram
from tests.fixtures.controlbot import Chat, deploy, example
from tests.fixtures.runner import HOST_CA_BUNDLE
from tests.fixtures.services import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILES = (REPO / "docker-compose.yml", REPO / "docker-compose.test.yml")
DOCKER_SOCKET = Path("/var/run/docker.sock")
# What the Dockerfile copies (see .dockerignore); a change in any of it means a new image.
CONTEXT = (
    "Dockerfile",
    ".dockerignore",
    "pyproject.toml",
    "README.md",
    "deploy",
    "protocol",
    "runner",
    "controlbot",
    "cli",
)
APP_REPO = "botrunner-test/app"
BUILDER_REPO = "botrunner-test/app-builder"
REDIS_REPO = "botrunner-test/redis"
KEEP_APP_IMAGES = 3  # other checkouts on this machine may be using the older ones
CACHE_LABEL = "botrunner.test-cache"  # marks the cached images; the session cleanup leaves them be
BUILD_TIMEOUT_S = 900.0
UP_TIMEOUT_S = 300.0
HEALTHY_TIMEOUT_S = 120.0
LOCK_FILE = "/var/tmp/botrunner-compose-images.lock"
REDIS_DOCKERFILE = """\
FROM {base}
RUN apt-get update \\
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \\
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \\
    && mkdir -p /data
WORKDIR /data
CMD ["redis-server"]
"""


def context_digest(base_id: str) -> str:
    h = hashlib.sha256(base_id.encode())
    for top in CONTEXT:
        path = REPO / top
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for f in files:
            if "__pycache__" in f.parts or f.suffix == ".pyc":
                continue
            h.update(str(f.relative_to(REPO)).encode() + b"\0" + hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    """Sessions of several checkouts build at the same time: one build per tag, not two."""
    with open(LOCK_FILE, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def docker_build(tag: str, args: list[str], *, stdin: str | None = None) -> float:
    """`docker build` on the host network (the only one that reaches the mirrors here); its seconds."""
    started = time.monotonic()
    argv = ["docker", "build", "--network", "host", "--label", f"{CACHE_LABEL}=1", "-t", tag, *args]
    try:
        proc = subprocess.run(
            argv, cwd=REPO, input=stdin, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"docker build of {tag} took over {BUILD_TIMEOUT_S:.0f} s:\n{e.stdout}", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(f"docker build of {tag} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return time.monotonic() - started


def prune_old(client: docker.DockerClient, repo: str, keep: int) -> None:
    """Drop all but the newest `keep` tags of repo; one in use by a container stays (no force)."""
    images = sorted(client.images.list(name=repo), key=lambda i: i.attrs["Created"], reverse=True)
    for image in images[keep:]:
        for tag in image.tags:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(tag, noprune=False)


@pytest.fixture(scope="session")
def app_image(docker_client: docker.DockerClient, base_image: str) -> str:
    """The botrunner image, built from the Dockerfile with --build-arg BASE_IMAGE=<the test base>."""
    digest = context_digest(docker_client.images.get(base_image).id)
    tag = f"{APP_REPO}:{digest}"
    args = ["--build-arg", f"BASE_IMAGE={base_image}", "."]
    with build_lock():
        try:
            docker_client.images.get(tag)
        except docker.errors.ImageNotFound:
            # The builder stage gets a tag of its own: untagged it would linger as a dangling image
            # after every source change, and tagged it can be pruned like the app images.
            docker_build(f"{BUILDER_REPO}:{digest}", ["--target", "builder", *args])
            docker_build(tag, args)
            prune_old(docker_client, APP_REPO, KEEP_APP_IMAGES)
            prune_old(docker_client, BUILDER_REPO, KEEP_APP_IMAGES)
    return tag


@pytest.fixture(scope="session")
def redis_image(docker_client: docker.DockerClient, base_image: str) -> str:
    """Redis for the stack: Debian's redis-server on the test base (redis:7-alpine needs a registry)."""
    dockerfile = REDIS_DOCKERFILE.format(base=base_image)
    base_id = docker_client.images.get(base_image).id
    tag = f"{REDIS_REPO}:{hashlib.sha256((base_id + dockerfile).encode()).hexdigest()[:16]}"
    with build_lock():
        try:
            docker_client.images.get(tag)
        except docker.errors.ImageNotFound:
            docker_build(tag, ["-"], stdin=dockerfile)
            prune_old(docker_client, REDIS_REPO, 1)
    return tag


@dataclass
class Stack:
    project: str
    env: dict[str, str]
    control_token: str
    admin_id: int
    api_port: int
    workdir: Path
    client: docker.DockerClient
    files: tuple[Path, ...] = COMPOSE_FILES

    def compose(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        exe = shutil.which("docker-compose")
        if exe is None:
            pytest.fail("docker-compose is not installed (scripts/test.sh installs it)", pytrace=False)
        # An empty env file, so a developer's .env in the checkout does not leak in.
        env_file = self.workdir / "empty.env"
        env_file.touch()
        argv = [exe, "--env-file", str(env_file), "--project-directory", str(REPO), "-p", self.project]
        for f in self.files:
            argv += ["-f", str(f)]
        return subprocess.run(
            [*argv, *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def resolve(self) -> None:
        """Merge the shipped file and the override once, minus ports Docker would discard anyway."""
        proc = self.compose("config", timeout=60)
        assert proc.returncode == 0, f"docker-compose config failed:\n{proc.stderr}"
        config = yaml.safe_load(proc.stdout)
        for service in config["services"].values():
            if service.get("network_mode") == "host":
                service.pop("ports", None)
        resolved = self.workdir / "docker-compose.resolved.yml"
        resolved.write_text(yaml.safe_dump(config, sort_keys=False))
        self.files = (resolved,)

    def containers(self) -> dict[str, docker.models.containers.Container]:
        found = self.client.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={self.project}"}
        )
        return {c.labels["com.docker.compose.service"]: c for c in found}

    def logs(self) -> str:
        proc = self.compose("logs", "--no-color", "--tail", "60", timeout=60)
        return proc.stdout[-12000:] + proc.stderr[-2000:]

    def health(self) -> dict[str, str]:
        out = {}
        for service, c in self.containers().items():
            c.reload()
            out[service] = c.attrs["State"].get("Health", {}).get("Status", c.status)
        return out

    def health_logs(self) -> str:
        """The last healthcheck outputs of each container: why one is unhealthy."""
        out = []
        for service, c in self.containers().items():
            for entry in (c.attrs["State"].get("Health") or {}).get("Log", [])[-2:]:
                out.append(f"{service} health: exit {entry['ExitCode']}: {entry['Output'][-500:]!r}")
        return "\n".join(out)

    def wait_healthy(self, timeout: float = HEALTHY_TIMEOUT_S) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while (health := self.health()) != dict.fromkeys(("redis", "runner", "controlbot"), "healthy"):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"stack not healthy in {timeout:.0f} s: {health}\n{self.health_logs()}\n{self.logs()}"
                )
            time.sleep(0.5)
        return health


@pytest.fixture(scope="module")
def stack(
    app_image: str,
    redis_image: str,
    base_image: str,
    docker_client: docker.DockerClient,
    fake_telegram: FakeTelegram,
    test_session_id: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """`docker-compose up -d` of the shipped file plus the test override; `down -v` afterwards."""
    if not DOCKER_SOCKET.exists():
        pytest.fail(f"docker-compose.yml mounts {DOCKER_SOCKET}, which does not exist here", pytrace=False)
    workdir = tmp_path_factory.mktemp("compose")
    ca_bundle = HOST_CA_BUNDLE
    if not ca_bundle.is_file():
        ca_bundle = workdir / "no-extra-ca.crt"
        ca_bundle.touch()
    admin_id = 880_001 + secrets.randbelow(9000)
    control_token = fake_telegram.new_token("compose")
    api_port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        **{k: v for k, v in os.environ.items() if k.startswith("DOCKER_")},
        "BOT_TOKEN": control_token,
        "ADMIN_IDS": str(admin_id),
        "DOCKER_GID": str(DOCKER_SOCKET.stat().st_gid),
        "TEST_APP_IMAGE": app_image,
        "TEST_REDIS_IMAGE": redis_image,
        "TEST_REDIS_PORT": str(free_port()),
        "TEST_API_PORT": str(api_port),
        "TEST_BASE_IMAGE": base_image,
        "TEST_CA_BUNDLE": str(ca_bundle),
        "TEST_SESSION_ID": test_session_id,
        "TEST_TELEGRAM_API_URL": fake_telegram.url,
        # Redis's ACL users, as the README's configure step generates them.
        "REDIS_RUNNER_PASSWORD": secrets.token_hex(24),
        "REDIS_CONTROLBOT_PASSWORD": secrets.token_hex(24),
    }
    project = f"botrunner-{test_session_id}-{secrets.token_hex(2)}"
    stack = Stack(project, env, control_token, admin_id, api_port, workdir, docker_client)
    stack.resolve()
    try:
        started = time.monotonic()
        up = stack.compose("up", "-d", "--no-build", timeout=UP_TIMEOUT_S)
        health = stack.health_logs()
        assert up.returncode == 0, f"docker-compose up failed:\n{up.stderr}\n{health}\n{stack.logs()}"
        stack.wait_healthy()
        print(f"compose stack {project} healthy in {time.monotonic() - started:.1f} s")
        yield stack
    finally:
        down = stack.compose("down", "-v", "--remove-orphans", "--timeout", "10", timeout=180)
        # The admin's bots, made by the stack's runner; the session cleanup would get them too, later.
        for c in docker_client.containers.list(all=True, filters={"label": f"botrunner.owner={admin_id}"}):
            with contextlib.suppress(docker.errors.NotFound):
                c.remove(force=True, v=True)
        for v in docker_client.volumes.list(filters={"label": f"botrunner.owner={admin_id}"}):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                v.remove(force=True)
        assert down.returncode == 0, f"docker-compose down failed:\n{down.stderr}"


def test_stack_comes_up_healthy_and_locked_down(stack: Stack) -> None:
    containers = stack.containers()
    assert set(containers) == {"redis", "runner", "controlbot"}
    runner, controlbot = containers["runner"], containers["controlbot"]
    for c in (runner, controlbot):
        assert c.attrs["Config"]["User"] == "10001:10001"
        assert c.attrs["HostConfig"]["ReadonlyRootfs"] is True
        assert c.attrs["HostConfig"]["CapDrop"] == ["ALL"]
    mounts = {name: [m["Source"] for m in c.attrs["Mounts"]] for name, c in containers.items()}
    assert str(DOCKER_SOCKET) in mounts["runner"]
    assert not any("docker.sock" in src for name in ("redis", "controlbot") for src in mounts[name])
    # The healthchecks are the real ones: the runner's heartbeat, the control bot's API.
    check = runner.exec_run(["python", "-m", "runner", "--check"])
    assert check.exit_code == 0, check.output
    assert b"ok" in check.output
    # The image's own HEALTHCHECK (no argument) finds out which service it is in.
    probe = controlbot.exec_run(["python", "/opt/botrunner/healthcheck.py"])
    assert probe.exit_code == 0, probe.output
    assert b"controlbot: ok" in probe.output and b"runner ok" in probe.output
    probe = runner.exec_run(["python", "/opt/botrunner/healthcheck.py"])
    assert probe.exit_code == 0, probe.output
    assert b"runner compose-" in probe.output
    # The HTTP API answers on the port the stack was given, and sees Redis and the runner.
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.api_port}/healthz", timeout=10) as resp:
        health = json.load(resp)
    assert health["status"] == "ok" and health["redis"] is True, health
    # git is there for the clone jobs (run from the runner's own image), and the runner reaches
    # Docker as non-root through DOCKER_GID.
    assert runner.exec_run(["git", "--version"]).exit_code == 0
    version = runner.exec_run(
        ["python", "-c", "import docker; print(docker.from_env().version()['Version'])"]
    )
    assert version.exit_code == 0, version.output


def test_deploy_a_bot_through_the_stack(
    stack: Stack, fake_telegram: FakeTelegram, unique_name: Callable[[str], str]
) -> None:
    fake_telegram.wait_until_sync(
        lambda: fake_telegram.poll_stats(stack.control_token).polls > 0, 60, "the control bot to poll"
    )
    admin = fake_telegram.user(stack.admin_id, "Ops", language_code="en")
    chat = Chat(fake_telegram, stack.control_token, admin)

    mark = chat.mark()
    chat.send("/system")
    system = chat.wait("Docker", after=mark, timeout=30).text or ""
    assert "compose-" in system and "Bots running: 0 of 0" in system, system

    name = unique_name("compose-echo")
    echo_token = fake_telegram.new_token("compose-echo")
    env = f"BOT_TOKEN={echo_token} TELEGRAM_API_URL={fake_telegram.url}"
    # On a fresh machine the runner may still be building the runtime image (pip): allow for it.
    try:
        card = deploy(chat, name, example("echo_bot.py"), env, filename="echo_bot.py", timeout=600)
    except TimeoutError as e:  # what the stack was doing meanwhile is the only clue
        raise AssertionError(f"{e}\nchat: {[m.text for m in chat.messages()][-6:]}\n{stack.logs()}") from e
    assert "🟢 running" in (card.text or ""), f"{card.text}\n{stack.logs()}"

    admin.send(echo_token, "/ping")
    fake_telegram.wait_for_sync(echo_token, admin.id, "pong", timeout=60)

    mark = chat.mark()
    chat.send("/system")
    system = chat.wait("Docker", after=mark, timeout=30).text or ""
    assert "Bots running: 1 of 1" in system, system


def test_redis_users_hold_only_what_they_need(stack: Stack) -> None:
    """The control bot's Redis user cannot read a bot record or flush Redis; the runner's cannot
    flush it either; the default user only answers PING (#10)."""
    port = stack.env["TEST_REDIS_PORT"]
    controlbot = redis.Redis(
        host="127.0.0.1",
        port=int(port),
        username="controlbot",
        password=stack.env["REDIS_CONTROLBOT_PASSWORD"],
    )
    runner = redis.Redis(
        host="127.0.0.1", port=int(port), username="runner", password=stack.env["REDIS_RUNNER_PASSWORD"]
    )
    anonymous = redis.Redis(host="127.0.0.1", port=int(port))
    try:
        records = [k for k in runner.scan_iter(match="botrunner:bot:*")]
        record = records[0] if records else b"botrunner:bot:1:anything"
        for attempt in (
            lambda: controlbot.get(record),
            lambda: controlbot.get("botrunner:source:1:anything"),
            controlbot.flushall,
            lambda: controlbot.set("botrunner:runner:pubkey", "forged"),
            runner.flushall,
            lambda: runner.config_get("*"),
            lambda: anonymous.get("botrunner:runner:heartbeat"),
        ):
            with pytest.raises(redis.exceptions.NoPermissionError):
                attempt()
        assert anonymous.ping() and controlbot.get("botrunner:runner:pubkey") is not None
        # What the runner keeps there is sealed: the deploy above carried a bot token.
        for key in records:
            assert b"sealed:v1:" in (runner.get(key) or b"")
    finally:
        for client in (controlbot, runner, anonymous):
            client.close()
