"""Releases, rollback, the health gate and kept logs, through the real queue against real Docker."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import docker
import pytest
from redis.asyncio import Redis

from protocol import keys
from protocol.client import RunnerClient
from protocol.errors import ErrorCode
from protocol.models import BotState, Event, EventType, GateVerdict, Op
from tests.fixtures.runner import RunnerProcess
from tests.integration.helpers import call, containers_of, events_for, eventually, start_bot

pytestmark = pytest.mark.integration


def owner_id() -> int:
    return 10_000_000 + secrets.randbelow(80_000_000)


def version(n: int) -> bytes:
    return f"import time\nprint('version {n} up', flush=True)\nwhile True:\n    time.sleep(1)\n".encode()


CRASHER = b"print('about to fail', flush=True)\nraise RuntimeError('boom at import')\n"


async def verdict(redis: Redis, request_id: str, timeout: float = 20.0) -> Event:
    async def ready() -> bool:
        return bool(await redis.exists(keys.verdict(request_id)))

    await eventually(ready, timeout=timeout)
    return Event.model_validate_json(await redis.get(keys.verdict(request_id)) or b"")


async def test_releases_rollback_and_kept_logs(
    runner_client: RunnerClient, docker_client: docker.DockerClient, unique_name
) -> None:
    owner, name = owner_id(), unique_name("rel")
    redis = runner_client.redis
    first = await start_bot(runner_client, owner, name, version(1), env={"A": "1"})
    assert first.bot is not None and first.bot.release == 1 and first.bot.previous_release is None
    assert (await verdict(redis, first.request_id)).verdict is GateVerdict.HEALTHY

    async def printed(text: str) -> bool:
        return text in ((await call(runner_client, Op.LOGS, owner, name, tail=20)).logs or "")

    await eventually(lambda: printed("version 1 up"))
    upd = await call(runner_client, Op.UPDATE, owner, name, payload=version(2), actor=owner)
    assert upd.ok and upd.bot is not None and upd.bot.release == 2 and upd.bot.previous_release == 1
    assert upd.bot.checking  # the reply came at running, before the verdict
    env = await call(runner_client, Op.SET_ENV, owner, name, env={"B": "2"})
    assert env.ok and env.bot is not None and env.bot.release == 3

    listed = await call(runner_client, Op.RELEASES, owner, name)
    rels = listed.releases or []
    assert [r.number for r in rels] == [3, 2, 1]
    assert [r.op for r in rels] == [Op.SET_ENV, Op.UPDATE, Op.START]
    assert rels[0].current and not rels[1].current and rels[1].actor == owner
    assert rels[2].has_logs  # release 1's output was kept when 2 replaced it
    assert '"env"' not in listed.model_dump_json(include={"releases"})

    kept = await call(runner_client, Op.LOGS, owner, name, release=1)
    assert "version 1 up" in (kept.logs or "")

    # Back to release 1: its code and its env; a new release; the stored image, no build.
    t0 = time.perf_counter()
    rb = await call(runner_client, Op.ROLLBACK, owner, name, release=1, actor=owner)
    took = time.perf_counter() - t0
    assert rb.ok, rb.error
    assert rb.bot is not None and rb.bot.release == 4 and set(rb.bot.env_masked) == {"A"}
    assert rb.bot.source.sha256 == first.bot.source.sha256
    assert took < 5, took
    await eventually(lambda: printed("version 1 up"))
    rels = (await call(runner_client, Op.RELEASES, owner, name)).releases or []
    assert rels[0].number == 4 and rels[0].restored == 1 and rels[0].op is Op.ROLLBACK
    assert len(containers_of(docker_client, owner, name)) == 1

    # Default: the previous release (3, the env change).
    rb2 = await call(runner_client, Op.ROLLBACK, owner, name)
    assert rb2.ok and rb2.bot is not None and rb2.bot.release == 5 and set(rb2.bot.env_masked) == {"A", "B"}

    bad = await call(runner_client, Op.ROLLBACK, owner, name, release=99)
    assert not bad.ok and bad.error is not None and bad.error.code is ErrorCode.INVALID_STATE


async def test_keep_releases_prunes_old_ones(runner_client: RunnerClient, unique_name) -> None:
    owner, name = owner_id(), unique_name("keep")
    await start_bot(runner_client, owner, name, version(0))
    for i in range(1, 6):
        assert (await call(runner_client, Op.SET_ENV, owner, name, env={"N": str(i)})).ok
    rels = (await call(runner_client, Op.RELEASES, owner, name)).releases or []
    assert [r.number for r in rels] == [6, 5, 4, 3, 2]  # RUNNER_KEEP_RELEASES = 5
    assert not await runner_client.redis.exists(keys.release_logs(owner, name, 1))
    await call(runner_client, Op.DELETE, owner, name)
    assert not await runner_client.redis.exists(keys.releases(owner, name))


async def test_no_previous_release_is_invalid_state(runner_client: RunnerClient, unique_name) -> None:
    owner, name = owner_id(), unique_name("nop")
    await start_bot(runner_client, owner, name, version(1))
    res = await call(runner_client, Op.ROLLBACK, owner, name)
    assert not res.ok and res.error is not None and res.error.code is ErrorCode.INVALID_STATE
    assert res.error.params.reason == "no_previous"


async def test_gate_rolls_a_crashing_update_back(
    runner_client: RunnerClient, docker_client: docker.DockerClient, unique_name
) -> None:
    owner, name = owner_id(), unique_name("gate")
    redis = runner_client.redis
    await start_bot(runner_client, owner, name, version(1))
    t0 = time.monotonic()
    upd = await call(runner_client, Op.UPDATE, owner, name, payload=CRASHER)
    assert upd.ok and upd.bot is not None and upd.bot.release == 2
    ev = await verdict(redis, upd.request_id, timeout=15)
    assert ev.verdict is GateVerdict.ROLLED_BACK and (ev.release, ev.restored) == (2, 1)
    assert "boom at import" in (ev.log_tail or "")
    assert time.monotonic() - t0 < 15

    async def old_code_runs() -> bool:
        r = await call(runner_client, Op.LOGS, owner, name, tail=20)
        return "version 1 up" in (r.logs or "")

    await eventually(old_code_runs)
    status = await call(runner_client, Op.STATUS, owner, name)
    assert status.bot is not None and status.bot.state is BotState.RUNNING and status.bot.release == 1
    assert len([c for c in containers_of(docker_client, owner, name) if c.status == "running"]) == 1
    rels = (await call(runner_client, Op.RELEASES, owner, name)).releases or []
    assert [(r.number, r.failed, r.current) for r in rels] == [(2, True, False), (1, False, True)]
    # One message: the gate's verdict, and no crash alert beside it.
    events = await events_for(redis, owner, name)
    assert [e.type for e in events].count(EventType.GATE) >= 1
    assert not [e for e in events if e.type is EventType.CRASHED]


async def test_gate_leaves_a_crashing_first_deploy_stopped(runner_client: RunnerClient, unique_name) -> None:
    owner, name = owner_id(), unique_name("first")
    res = await start_bot(runner_client, owner, name, CRASHER)
    ev = await verdict(runner_client.redis, res.request_id)
    assert ev.verdict is GateVerdict.FAILED and "boom at import" in (ev.log_tail or "")
    status = await call(runner_client, Op.STATUS, owner, name)
    assert status.bot is not None and status.bot.state is not BotState.RUNNING
    restarts = status.bot.restart_count
    time.sleep(2)
    again = await call(runner_client, Op.STATUS, owner, name)
    assert again.bot is not None and again.bot.restart_count == restarts  # no restart loop
    events = await events_for(runner_client.redis, owner, name)
    assert not [e for e in events if e.type is EventType.CRASHED]


async def test_gate_reports_a_clean_exit(runner_client: RunnerClient, unique_name) -> None:
    owner, name = owner_id(), unique_name("exit")
    await start_bot(runner_client, owner, name, version(1))
    upd = await call(runner_client, Op.UPDATE, owner, name, payload=b"print('done', flush=True)\n")
    ev = await verdict(runner_client.redis, upd.request_id)
    assert ev.verdict is GateVerdict.EXITED and ev.exit_code == 0
    status = await call(runner_client, Op.STATUS, owner, name)
    assert status.bot is not None and status.bot.release == 2  # not rolled back


async def test_source_bytes_cap_counts_kept_releases(runner_factory, unique_name) -> None:
    runner = runner_factory(USER_SOURCE_BYTES="4k", RUNNER_HEALTH_GRACE="0")
    runner.start()
    redis = Redis.from_url(runner.redis_url)
    try:
        client = RunnerClient(redis)
        owner, name = owner_id(), unique_name("cap")
        # ~1.6 KB stored: a start and an update fit in 4k; a third tree does not.
        big = version(1) + b"#" + secrets.token_urlsafe(1500).encode() + b"\n"
        await start_bot(client, owner, name, big)
        res = await call(client, Op.UPDATE, owner, name, payload=big + b"# 2\n")
        assert res.ok  # 2 trees
        res = await call(client, Op.UPDATE, owner, name, payload=big + b"# 3\n")
        assert not res.ok and res.error is not None and res.error.code is ErrorCode.QUOTA_EXCEEDED
        assert res.error.params.reason == "source_bytes"
    finally:
        await redis.aclose()
        runner.stop()


async def test_a_gate_survives_a_runner_restart(runner_factory, unique_name, tmp_path: Path) -> None:
    """The gate's deadline is in Redis: a runner killed inside the window is replaced by one that
    resumes the gate and still rolls the crashing update back."""
    first = runner_factory(RUNNER_HEALTH_GRACE="8")
    first.start()
    redis = Redis.from_url(first.redis_url)
    second: RunnerProcess | None = None
    try:
        client = RunnerClient(redis)
        owner, name = owner_id(), unique_name("resume")
        await start_bot(client, owner, name, version(1))
        late_crash = b"import time\ntime.sleep(2)\nraise RuntimeError('late boom')\n"
        upd = await call(client, Op.UPDATE, owner, name, payload=late_crash)
        assert upd.ok and upd.bot is not None and upd.bot.checking
        first.kill()  # inside the gate's window
        assert await redis.exists(keys.gate(owner, name))
        # The same Redis database and instance (runner_factory would flush the database).
        second = RunnerProcess(first.env, tmp_path / "runner-second.log", tmp_path)
        second.start()
        ev = await verdict(redis, upd.request_id, timeout=60)
        assert ev.verdict is GateVerdict.ROLLED_BACK and ev.restored == 1
        status = await call(client, Op.STATUS, owner, name)
        assert status.bot is not None and status.bot.release == 1 and status.bot.state is BotState.RUNNING
        await call(client, Op.DELETE, owner, name)
    finally:
        if second is not None and second.running():
            second.stop()
        await redis.aclose()
