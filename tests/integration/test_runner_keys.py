"""The runner's key pair against real Redis and real runner processes (#10): published with SET NX;
two runners with different keys on one Redis do not both run."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from protocol import keys
from protocol.sealing import encode_public_key
from runner import keys as runner_keys
from runner.secrets import Secrets
from tests.fixtures.runner import RunnerProcess

pytestmark = pytest.mark.integration


def wait_published(url: str, timeout: float = 60.0) -> bytes:
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + timeout
        while (raw := client.get(keys.RUNNER_PUBKEY)) is None:
            assert time.monotonic() < deadline, "no public key was published"
            time.sleep(0.1)
        return raw
    finally:
        client.close()


def test_a_runner_with_another_key_refuses_to_start(
    runner_factory: Callable[..., RunnerProcess], tmp_path: Path
) -> None:
    first = runner_factory(RUNNER_KEY_FILE=str(tmp_path / "a" / "runner.key"))
    first.start(wait_ready=False)
    published = wait_published(first.redis_url)
    key = runner_keys.load_or_create(tmp_path / "a" / "runner.key")
    assert published.decode() == encode_public_key(key.public_key)
    assert (tmp_path / "a" / "runner.key").stat().st_mode & 0o777 == 0o600

    # Another runner on the same Redis, with a key file of its own: one line, and it exits.
    second = RunnerProcess(
        {**first.env, "RUNNER_KEY_FILE": str(tmp_path / "b" / "runner.key"), "RUNNER_ID": "second"},
        tmp_path / "second.log",
        tmp_path,
    )
    second.start(wait_ready=False)
    assert second.proc is not None
    assert second.proc.wait(timeout=60) == 2, second.log_text()
    lines = [line for line in second.log_text().splitlines() if "refusing to start" in line]
    assert len(lines) == 1 and "RUNNER_KEY_FILE" in lines[0], second.log_text()
    assert "Traceback" not in second.log_text()
    assert wait_published(first.redis_url) == published  # the first runner's key stands

    # The same key file on a second runner is fine: both open what either sealed.
    third = RunnerProcess({**first.env, "RUNNER_ID": "third"}, tmp_path / "third.log", tmp_path)
    third.start(wait_ready=False)
    time.sleep(3)
    assert third.running(), third.log_text()
    third.stop()
    first.stop()


def test_the_key_is_published_again_after_redis_lost_it(runner_factory: Callable[..., RunnerProcess]) -> None:
    proc = runner_factory()
    proc.start(wait_ready=False)
    published = wait_published(proc.redis_url)
    client = redis.Redis.from_url(proc.redis_url)
    try:
        client.delete(keys.RUNNER_PUBKEY)  # as a Redis restarted without persistence would have it
    finally:
        client.close()
    assert wait_published(proc.redis_url, timeout=30) == published


def test_values_sealed_by_one_runner_open_in_another_with_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "runner.key"
    one, two = Secrets(runner_keys.load_or_create(path)), Secrets(runner_keys.load_or_create(path))
    assert two.open(one.seal("s3cret")) == "s3cret"
