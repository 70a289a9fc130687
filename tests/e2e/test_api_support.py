"""Helpers and fixtures for the HTTP API and CLI end-to-end tests (this module holds no tests).

The API under test is the real one, served by the real controlbot process, which talks to the
real runner through the real Redis; bots run in real Docker. Tokens are minted by writing their
hash into Redis with `controlbot.tokens` helpers, as /token would (test_api_http tests /token itself).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from controlbot import tokens
from protocol import keys
from tests.fakes.telegram import FakeTelegram
from tests.fixtures.controlbot import Chat, ControlbotProcess, controlbot_env
from tests.fixtures.runner import RunnerProcess, runner_env
from tests.fixtures.services import _private_redis, free_port

REPO = Path(__file__).resolve().parents[2]
BOTRUNNER = REPO / ".venv" / "bin" / "botrunner"
DEPLOY_TIMEOUT_S = 120.0

# A bot that needs no Telegram: it prints, then idles; SIGTERM ends it at once.
TICKER = b"""\
import os, time
print("hello from", os.environ.get("WHO", "nobody"), flush=True)
while True:
    time.sleep(1)
"""
TICKER_V2 = TICKER.replace(b"hello from", b"v2 says hello from")


def mint_token(redis_url: str, owner: int) -> str:
    """An API token for owner, stored as /token stores it (only its sha256 in Redis)."""
    token = tokens.new_token()
    digest = tokens.hash_token(token)
    client = redis.Redis.from_url(redis_url)
    try:
        old = client.get(keys.api_token_owner(owner))
        pipe = client.pipeline()
        if old is not None:
            pipe.delete(keys.api_token(old.decode()))
        pipe.set(keys.api_token(digest), str(owner))
        pipe.set(keys.api_token_owner(owner), digest)
        pipe.execute()
    finally:
        client.close()
    return token


def wait_for_api(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(f"{url}/healthz", timeout=2)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise AssertionError(f"the HTTP API at {url} never answered") from None
            time.sleep(0.1)


@dataclass
class ApiUser:
    """One Telegram user of the API: their id, a token and an HTTP client carrying it."""

    owner: int
    token: str
    url: str
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=DEPLOY_TIMEOUT_S
        )

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def deploy(self, name: str, source: bytes = TICKER, env: list[str] | None = None) -> httpx.Response:
        files = {"file": ("bot.py", source, "text/x-python")}
        return self.http.post("/api/bots", data={"name": name, "env": env or []}, files=files)

    def cli(
        self, *args: str, timeout: float = DEPLOY_TIMEOUT_S, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """`botrunner ARGS` as a subprocess, configured through its environment variables."""
        full_env = {**os.environ, "BOTRUNNER_URL": self.url, "BOTRUNNER_TOKEN": self.token, **env}
        return subprocess.run(
            [str(BOTRUNNER), *args],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def wait_log(self, name: str, needle: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            resp = self.http.get(
                f"/api/bots/{name}/logs", params={"tail": 200}, headers={"Accept": "text/plain"}
            )
            text = resp.text
            if resp.status_code == 200 and needle in text:
                return text
            time.sleep(0.3)
        raise AssertionError(f"{needle!r} never showed in the logs of {name}: {text[-2000:]!r}")

    def delete_all(self) -> None:
        with contextlib.suppress(httpx.HTTPError):
            resp = self.http.get("/api/bots")
            if resp.status_code == 200:
                for bot in resp.json()["bots"]:
                    self.http.delete(f"/api/bots/{bot['name']}")
        self.http.close()


@pytest.fixture
def api_user(controlbot: ControlbotProcess, chat_user: Callable[..., Chat]) -> Iterator[ApiUser]:
    """A fresh allowed user of the session's controlbot, with a token; their bots go at teardown."""
    assert controlbot.api_url is not None
    wait_for_api(controlbot.api_url)
    owner = chat_user().id
    user = ApiUser(owner, mint_token(controlbot.env["REDIS_URL"], owner), controlbot.api_url)
    try:
        yield user
    finally:
        user.delete_all()


@pytest.fixture
def make_api_user(
    controlbot: ControlbotProcess, chat_user: Callable[..., Chat]
) -> Iterator[Callable[[], ApiUser]]:
    made: list[ApiUser] = []

    def make() -> ApiUser:
        owner = chat_user().id
        user = ApiUser(owner, mint_token(controlbot.env["REDIS_URL"], owner), str(controlbot.api_url))
        made.append(user)
        return user

    try:
        yield make
    finally:
        for user in made:
            user.delete_all()


# --- a private stack: its own Redis, runner and controlbot, for tests that stop the runner --------

PRIVATE_ADMIN = 870_001
PRIVATE_USERS = list(range(870_101, 870_131))


@dataclass
class PrivateStack:
    redis_url: str
    runner: RunnerProcess
    controlbot: ControlbotProcess

    @property
    def api_url(self) -> str:
        assert self.controlbot.api_url is not None
        return self.controlbot.api_url

    def user(self, owner: int) -> ApiUser:
        return ApiUser(owner, mint_token(self.redis_url, owner), self.api_url)


@contextlib.contextmanager
def private_stack(
    fake: FakeTelegram, base_image: str, session_id: str, workdir: Path, **controlbot_overrides: str
) -> Iterator[PrivateStack]:
    """A Redis of its own with a runner and a controlbot (API on) on it; all stopped on exit."""
    with _private_redis() as url:
        runner = RunnerProcess(
            runner_env(url, base_image, session_id, GIT_ALLOWED_SCHEMES="git,http"),
            workdir / "runner.log",
            workdir,
        )
        env = controlbot_env(
            fake,
            url,
            ADMIN_IDS=str(PRIVATE_ADMIN),
            ALLOWED_USER_IDS=",".join(map(str, PRIVATE_USERS)),
            **controlbot_overrides,
        )
        bot = ControlbotProcess(env, workdir / "controlbot.log", workdir)
        try:
            runner.start()
            bot.start(fake)
            stack = PrivateStack(url, runner, bot)
            wait_for_api(stack.api_url)
            yield stack
        finally:
            bot.stop()
            runner.stop()


# --- a local git server ---------------------------------------------------------------------------


@dataclass
class GitServer:
    """`git daemon` on 127.0.0.1 serving bare repositories the tests create."""

    root: Path
    port: int

    def url(self, repo: str) -> str:
        return f"git://127.0.0.1:{self.port}/{repo}.git"

    def create(self, repo: str, files: dict[str, bytes], message: str = "first") -> str:
        """A repository holding files; returns the commit sha."""
        bare = self.root / f"{repo}.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
        return self.commit(repo, files, message)

    def commit(self, repo: str, files: dict[str, bytes], message: str) -> str:
        work = self.root / f"work-{repo}"
        if not work.exists():
            subprocess.run(["git", "clone", "-q", str(self.root / f"{repo}.git"), str(work)], check=True)
        for path, data in files.items():
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            (work / path).write_bytes(data)
        git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", message], check=True)
        subprocess.run([*git, "push", "-q", "origin", "HEAD:main"], check=True)
        sha = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True)
        return sha.stdout.strip()


@contextlib.contextmanager
def git_server(root: Path) -> Iterator[GitServer]:
    exe = shutil.which("git")
    if exe is None:
        pytest.fail("git is not installed: apt-get install -y git", pytrace=False)
    port = free_port()
    proc = subprocess.Popen(
        [
            exe,
            "daemon",
            "--reuseaddr",
            "--export-all",
            f"--base-path={root}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(root),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            if time.monotonic() > deadline:
                pytest.fail("git daemon did not start", pytrace=False)
            time.sleep(0.05)
        yield GitServer(root, port)
    finally:
        proc.terminate()
        proc.wait(10)


def error_of(resp: httpx.Response) -> dict[str, Any]:
    body = resp.json()
    assert set(body) == {"error"}, body
    err: dict[str, Any] = body["error"]
    return err
