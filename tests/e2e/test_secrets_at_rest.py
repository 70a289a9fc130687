"""Secrets never rest in plain text (#10), played as an attacker who reads Redis and its AOF.

A stack of its own: redis-server with appendonly on, the real runner and the real control bot
(HTTP API). A user deploys bots with marker values, updates the env, lets a bot print its secret
and crash, reads the logs, and deletes everything. Then every key of every type, stream entries
included, and every AOF file are searched for the markers. Before sealing, the bot record, the
command stream and the AOF all held them, and the crash alert's log tail and the logs reply
carried what the bot printed.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from protocol import keys
from tests.fakes.telegram import FakeTelegram
from tests.fixtures.api_users import ApiUser, mint_token, wait_for_api
from tests.fixtures.controlbot import ControlbotProcess, controlbot_env
from tests.fixtures.runner import RunnerProcess, runner_env
from tests.fixtures.services import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

OWNER = 870_901

# Prints its secrets once, then idles (SIGTERM ends it at once).
ECHOES = b"""\
import os, time
print("mine:", os.environ.get("SECRET"), os.environ.get("EXTRA"), flush=True)
while True:
    time.sleep(1)
"""
# Prints its secret, then crashes: the crash alert carries the log tail.
LEAKS_AND_CRASHES = b"""\
import os, sys, time
print("about to fail with", os.environ["SECRET"], flush=True)
time.sleep(0.5)
sys.exit(1)
"""


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A private redis-server that persists every write to its AOF, as compose's does."""
    data = tmp_path / "redis"
    data.mkdir()
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(data)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url, data
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)


def everything_in(client: redis.Redis) -> Iterator[tuple[bytes, bytes]]:
    """(key, a value held under it) for every key of every type, stream entries included."""
    for key in client.scan_iter(count=500):
        kind = client.type(key).decode()
        yield key, key
        if kind == "string":
            yield key, client.get(key) or b""
        elif kind == "hash":
            for field, value in client.hgetall(key).items():
                yield key, field + b"=" + value
        elif kind == "list":
            yield from ((key, v) for v in client.lrange(key, 0, -1))
        elif kind == "set":
            yield from ((key, v) for v in client.smembers(key))
        elif kind == "zset":
            yield from ((key, m) for m, _ in client.zrange(key, 0, -1, withscores=True))
        elif kind == "stream":
            for entry_id, fields in client.xrange(key):
                for field, value in fields.items():
                    yield key, entry_id + b" " + field + b"=" + value
        else:
            raise AssertionError(f"{key!r} has a type this scan does not read: {kind}")


def assert_nowhere(client: redis.Redis, aof: Path, markers: list[str], when: str) -> None:
    for key, value in everything_in(client):
        for marker in markers:
            assert marker.encode() not in value, f"{when}: {marker} in {key!r}: {value[:300]!r}"
    files = [p for p in aof.rglob("*") if p.is_file()]
    assert any("aof" in p.name for p in files), f"no AOF in {aof}: {files}"
    for path in files:
        data = path.read_bytes()
        for marker in markers:
            assert marker.encode() not in data, f"{when}: {marker} in {path.name}"


def wait_crash_event(client: redis.Redis, name: str, timeout: float = 60.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for _, fields in client.xrange(keys.EVENTS_STREAM):
            event = json.loads(fields[b"data"])
            # A crash inside the health gate's window is reported by its verdict (type "gate"),
            # later ones by a crash alert: both carry the log tail.
            tail = event.get("log_tail") or ""
            if event["type"] in ("crashed", "gate") and event["name"] == name and "about to fail" in tail:
                return dict(event)
        time.sleep(0.3)
    raise AssertionError(f"no crash event with a log tail for {name} in {timeout} s")


def test_no_env_value_rests_in_redis_or_its_aof(
    aof_redis: tuple[str, Path],
    fake_telegram: FakeTelegram,
    base_image: str,
    test_session_id: str,
    tmp_path: Path,
) -> None:
    url, aof = aof_redis
    # What an attacker would look for: everything after the (at most 3) characters a mask shows.
    tail = [secrets.token_hex(10) for _ in range(3)]
    secret, extra, crash = (f"s3c{t}" for t in tail)
    runner = RunnerProcess(runner_env(url, base_image, test_session_id), tmp_path / "runner.log", tmp_path)
    env = controlbot_env(fake_telegram, url, ALLOWED_USER_IDS=str(OWNER))
    bot = ControlbotProcess(env, tmp_path / "controlbot.log", tmp_path)
    client = redis.Redis.from_url(url)
    user: ApiUser | None = None
    try:
        runner.start()
        bot.start(fake_telegram, wait_ready=False)
        bot.wait_ready(fake_telegram, timeout=120)  # a loaded machine imports aiogram slowly
        assert bot.api_url is not None
        wait_for_api(bot.api_url)
        user = ApiUser(OWNER, mint_token(url, OWNER), bot.api_url)

        # A deploy with a secret, and the logs of a bot that prints it.
        resp = user.deploy("echoes", ECHOES, env=[f"SECRET={secret}"])
        assert resp.status_code == 201, resp.text
        status = resp.json()
        assert status["env_masked"]["SECRET"] == f"{secret[:3]}•••"
        assert set(status["env_hmac"]) == {"SECRET"} and "env_sha256" not in status
        # An env update: a second secret.
        resp = user.http.put("/api/bots/echoes/env", json={"EXTRA": extra})
        assert resp.status_code == 200, resp.text
        logs = user.wait_log("echoes", f"{extra[:3]}•••")
        assert f"{secret[:3]}•••" in logs and tail[0] not in logs, logs
        assert f"{extra[:3]}•••" in logs and tail[1] not in logs, logs

        # A bot that prints its secret and crashes: the alert's log tail shows only the mask.
        resp = user.deploy("crashes", LEAKS_AND_CRASHES, env=[f"SECRET={crash}"])
        assert resp.status_code == 201, resp.text
        event = wait_crash_event(client, "crashes")
        assert f"{crash[:3]}•••" in str(event["log_tail"]), event

        assert_nowhere(client, aof, tail, "with the bots running")
        for name in ("echoes", "crashes"):
            assert user.http.delete(f"/api/bots/{name}").status_code == 204
        assert_nowhere(client, aof, tail, "after the delete")
    finally:
        if user is not None:
            user.delete_all()
        client.close()
        bot.stop()
        runner.stop()
