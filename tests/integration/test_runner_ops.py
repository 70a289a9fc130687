"""Every runner operation, through the real Redis queue, against real Docker."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time

import docker
import pytest
from redis.asyncio import Redis

from protocol import keys
from protocol.client import RunnerClient
from protocol.errors import ErrorCode
from protocol.models import BotState, Command, EventType, Op, SourceKind, SourceSpec
from tests.integration.helpers import (
    EXAMPLES,
    SLEEPER,
    call,
    containers_of,
    events_for,
    eventually,
    start_bot,
)

pytestmark = pytest.mark.integration


def owner_id() -> int:
    return 10_000_000 + secrets.randbelow(80_000_000)


async def test_start_status_logs_list(
    runner_client: RunnerClient, docker_client: docker.DockerClient, unique_name
) -> None:
    owner, name = owner_id(), unique_name("ops")
    code = b"import os\nprint('hello', os.environ['GREETING'], flush=True)\nimport time\ntime.sleep(600)\n"
    res = await start_bot(
        runner_client, owner, name, code, env={"GREETING": "supersecretvalue"}, filename="hello.py"
    )
    assert res.bot is not None and res.bot.state is BotState.RUNNING
    assert res.bot.source.filename == "hello.py"
    assert res.bot.source.sha256 == hashlib.sha256(code).hexdigest()
    assert res.bot.env_masked["GREETING"] != "supersecretvalue"
    assert "supersecretvalue" not in res.model_dump_json()

    [c] = containers_of(docker_client, owner, name)
    assert c.name == f"botrunner-{owner}-{name}"

    async def logged() -> bool:
        r = await call(runner_client, Op.LOGS, owner, name, tail=10)
        # The bot prints its secret; the reply (which rests in Redis) shows only the mask (#10).
        assert "supersecretvalue" not in (r.logs or "")
        return "hello sup•••" in (r.logs or "")

    await eventually(logged)

    t0 = time.perf_counter()
    status = await call(runner_client, Op.STATUS, owner, name)
    assert time.perf_counter() - t0 < 1.0  # stats come from the background sampler, never inline
    assert status.bot is not None
    assert status.bot.state is BotState.RUNNING and status.bot.uptime_seconds is not None
    assert status.bot.limits.memory_bytes == 256 * 1024 * 1024
    assert status.bot.limits.cpu == 0.5 and status.bot.limits.pids == 128
    assert status.bot.container_id == c.id[:12]

    async def sampled() -> bool:
        r = await call(runner_client, Op.STATUS, owner, name)
        return r.bot is not None and r.bot.memory_bytes is not None and r.bot.memory_bytes > 0

    await eventually(sampled, timeout=30)

    listed = await call(runner_client, Op.LIST, owner)
    assert [b.name for b in listed.bots or []] == [name]
    assert listed.quota is not None and (listed.quota.used, listed.quota.limit) == (1, 3)

    # Another owner sees nothing of it, and cannot address it.
    other = owner_id()
    assert (await call(runner_client, Op.LIST, other)).bots == []
    res = await call(runner_client, Op.STATUS, other, name)
    assert not res.ok and res.error is not None and res.error.code is ErrorCode.NOT_FOUND
    res = await call(runner_client, Op.STOP, other, name)
    assert not res.ok and res.error is not None and res.error.code is ErrorCode.NOT_FOUND
    c.reload()
    assert c.status == "running"

    # An admin lists everyone's bots.
    everyone = await call(runner_client, Op.LIST, other, admin=True, all_owners=True)
    assert (owner, name) in {(b.owner, b.name) for b in everyone.bots or []}

    # The command stream keeps nothing once acked: no env values linger there.
    assert await runner_client.redis.xlen(keys.COMMANDS_STREAM) == 0


async def test_sandbox_of_a_bot_container(
    runner_client: RunnerClient, docker_client: docker.DockerClient, unique_name
) -> None:
    owner, name = owner_id(), unique_name("sandbox")
    probe = (
        b"import os, pathlib\n"
        b"print('uid', os.getuid(), flush=True)\n"
        b"for p in ('/etc/x', '/app/x', '/tmp/x', '/data/x'):\n"
        b"    try:\n"
        b"        pathlib.Path(p).write_text('1'); print('write ok', p, flush=True)\n"
        b"    except OSError as e:\n"
        b"        print('write refused', p, flush=True)\n"
        b"print('docker socket', os.path.exists('/var/run/docker.sock'), flush=True)\n"
        b"print('data dir', os.environ.get('DATA_DIR'), flush=True)\n"
        b"import time\ntime.sleep(600)\n"
    )
    await start_bot(runner_client, owner, name, probe)
    [c] = containers_of(docker_client, owner, name)
    hc = c.attrs["HostConfig"]
    assert c.attrs["Config"]["User"] == "65534:65534"
    assert hc["ReadonlyRootfs"] is True
    assert hc["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in hc["SecurityOpt"]
    assert hc["Memory"] == 256 * 1024 * 1024
    assert hc["NanoCpus"] == 500_000_000
    assert hc["PidsLimit"] == 128
    assert hc["Init"] is True
    assert hc["LogConfig"]["Type"] == "json-file" and hc["LogConfig"]["Config"]["max-size"] == "10m"
    assert hc["RestartPolicy"]["Name"] == "on-failure" and hc["RestartPolicy"]["MaximumRetryCount"] > 0
    assert "/tmp" in hc["Tmpfs"]
    assert "PYTHONUNBUFFERED=1" in c.attrs["Config"]["Env"]
    mounts = {m["Destination"]: m for m in c.attrs["Mounts"]}
    assert mounts["/data"]["Type"] == "volume"
    assert not any("docker.sock" in (m.get("Source") or "") for m in c.attrs["Mounts"])

    async def probed() -> bool:
        logs = (await call(runner_client, Op.LOGS, owner, name)).logs or ""
        return "data dir /data" in logs

    await eventually(probed)
    logs = (await call(runner_client, Op.LOGS, owner, name)).logs or ""
    assert "uid 65534" in logs
    assert "write refused /etc/x" in logs
    assert "write ok /tmp/x" in logs and "write ok /data/x" in logs and "write ok /app/x" in logs
    assert "docker socket False" in logs


async def test_stop_is_fast_keeps_logs_and_start_again(
    runner_client: RunnerClient, redis_client: Redis, docker_client: docker.DockerClient, unique_name
) -> None:
    owner, name = owner_id(), unique_name("stop")
    await start_bot(runner_client, owner, name)

    async def up() -> bool:
        return "sleeper up" in ((await call(runner_client, Op.LOGS, owner, name)).logs or "")

    await eventually(up)
    t0 = time.perf_counter()
    res = await call(runner_client, Op.STOP, owner, name)
    elapsed = time.perf_counter() - t0
    assert res.ok and res.bot is not None and res.bot.state is BotState.STOPPED
    assert elapsed < 0.5, f"stop took {elapsed:.2f} s"
    [c] = containers_of(docker_client, owner, name)
    assert c.status == "exited"
    # Logs stay, the slot stays, and no crash is raised.
    assert "sleeper up" in ((await call(runner_client, Op.LOGS, owner, name)).logs or "")
    assert (await call(runner_client, Op.LIST, owner)).quota.used == 1  # type: ignore[union-attr]

    async def stopped_event() -> bool:
        return any(e.type is EventType.STOPPED for e in await events_for(redis_client, owner, name))

    await eventually(stopped_event)
    assert not any(e.type is EventType.CRASHED for e in await events_for(redis_client, owner, name))

    # Idempotent: stopping twice is fine.
    assert (await call(runner_client, Op.STOP, owner, name)).ok
    res = await call(runner_client, Op.START, owner, name)
    assert res.ok and res.bot is not None and res.bot.state is BotState.RUNNING
    assert len(containers_of(docker_client, owner, name)) == 1


async def test_restart(runner_client: RunnerClient, docker_client: docker.DockerClient, unique_name) -> None:
    owner, name = owner_id(), unique_name("restart")
    await start_bot(runner_client, owner, name)
    [c] = containers_of(docker_client, owner, name)
    started = c.attrs["State"]["StartedAt"]
    res = await call(runner_client, Op.RESTART, owner, name)
    assert res.ok and res.bot is not None and res.bot.state is BotState.RUNNING
    c.reload()
    assert c.attrs["State"]["StartedAt"] != started
    assert len(containers_of(docker_client, owner, name)) == 1


async def test_update_leaves_one_container_with_new_code_and_keeps_env_and_data(
    runner_client: RunnerClient, docker_client: docker.DockerClient, unique_name
) -> None:
    owner, name = owner_id(), unique_name("update")
    v1 = (
        b"import os, pathlib\npathlib.Path('/data/kept').write_text('from v1')\n"
        b"print('v1', os.environ['KEEP'], flush=True)\nimport time\ntime.sleep(600)\n"
    )
    await start_bot(runner_client, owner, name, v1, env={"KEEP": "kept-value"})
    [old] = containers_of(docker_client, owner, name)
    v2 = (
        b"import os, pathlib\nprint('v2', os.environ['KEEP'], os.environ.get('NEW'),"
        b" pathlib.Path('/data/kept').read_text(), flush=True)\nimport time\ntime.sleep(600)\n"
    )

    async def v1_up() -> bool:
        return "v1 kep•••" in ((await call(runner_client, Op.LOGS, owner, name)).logs or "")

    await eventually(v1_up)
    stages = []

    async def on_progress(p) -> None:  # type: ignore[no-untyped-def]
        stages.append(p.stage.value)

    cmd = Command(
        op=Op.UPDATE,
        owner=owner,
        name=name,
        env={"NEW": "n1"},
        source=SourceSpec(kind=SourceKind.FILE, filename="bot.py"),
    )
    res = await runner_client.call(cmd, v2, on_progress=on_progress)
    assert res.ok, res.error
    assert stages == ["stopping", "starting"]
    assert res.bot is not None and res.bot.source.sha256 == hashlib.sha256(v2).hexdigest()
    assert sorted(res.bot.env_masked) == ["KEEP", "NEW"]
    [new] = containers_of(docker_client, owner, name)
    assert new.id != old.id and new.status == "running"

    async def v2_up() -> bool:
        return "v2 kep••• n1 from v1" in ((await call(runner_client, Op.LOGS, owner, name)).logs or "")

    await eventually(v2_up)
    assert len(containers_of(docker_client, owner, name)) == 1


async def test_update_example_echo_bot_to_v2(
    runner_client: RunnerClient, docker_client: docker.DockerClient, unique_name
) -> None:
    owner, name = owner_id(), unique_name("echo")
    env = {"BOT_TOKEN": "123456:TEST-not-a-real-token", "TELEGRAM_API_URL": "http://127.0.0.1:9"}
    await start_bot(
        runner_client, owner, name, (EXAMPLES / "echo_bot.py").read_bytes(), env=env, filename="echo_bot.py"
    )
    res = await call(
        runner_client,
        Op.UPDATE,
        owner,
        name,
        payload=(EXAMPLES / "echo_bot_v2.py").read_bytes(),
        filename="echo_bot_v2.py",
    )
    assert res.ok, res.error

    async def v2() -> bool:
        return "Starting Echo Bot V2" in ((await call(runner_client, Op.LOGS, owner, name)).logs or "")

    await eventually(v2, timeout=30)
    assert len(containers_of(docker_client, owner, name)) == 1


async def test_delete_frees_the_slot_and_removes_everything(
    runner_client: RunnerClient, docker_client: docker.DockerClient, unique_name
) -> None:
    owner, name = owner_id(), unique_name("delete")
    await start_bot(runner_client, owner, name)
    res = await call(runner_client, Op.DELETE, owner, name)
    assert res.ok and res.quota is not None and res.quota.used == 0
    assert containers_of(docker_client, owner, name) == []
    vols = docker_client.volumes.list(filters={"label": [f"botrunner.owner={owner}"]})
    assert vols == []
    res = await call(runner_client, Op.STATUS, owner, name)
    assert res.error is not None and res.error.code is ErrorCode.NOT_FOUND
    # The name is free again.
    await start_bot(runner_client, owner, name)


async def test_crashing_bot_traceback_and_single_alert(
    runner_client: RunnerClient, redis_client: Redis, unique_name
) -> None:
    owner, name = owner_id(), unique_name("crash")
    # It crashes after the health gate's window (2 s here): a crash inside it is the gate's to report.
    late = b"import time\ntime.sleep(3)\n" + (EXAMPLES / "error_bot.py").read_bytes()
    await start_bot(runner_client, owner, name, late, filename="error_bot.py")

    async def gave_up() -> bool:
        r = await call(runner_client, Op.STATUS, owner, name)
        return r.bot is not None and r.bot.state is BotState.CRASHED

    await eventually(gave_up, timeout=60)
    logs = (await call(runner_client, Op.LOGS, owner, name)).logs or ""
    assert "Traceback (most recent call last)" in logs and "ValueError: TEST ERROR" in logs
    status = (await call(runner_client, Op.STATUS, owner, name)).bot
    assert status is not None and status.exit_code == 1 and status.restart_count == 3

    async def all_crashes_seen() -> bool:
        crashes = [e for e in await events_for(redis_client, owner, name) if e.type is EventType.CRASHED]
        return len(crashes) == 4

    await eventually(all_crashes_seen, timeout=60)
    crashes = [e for e in await events_for(redis_client, owner, name) if e.type is EventType.CRASHED]
    assert [e.alert for e in crashes].count(True) == 1  # a crash loop is reported once
    assert crashes[0].alert and "ValueError: TEST ERROR" in (crashes[0].log_tail or "")
    assert [e.crash_loop for e in crashes].count(True) == 1 and crashes[-1].crash_loop


async def test_oom_is_reported_as_oom(runner_client: RunnerClient, redis_client: Redis, unique_name) -> None:
    owner, name = owner_id(), unique_name("oom")
    hog = (
        b"import time\ntime.sleep(3)  # past the health gate\n"
        b"print('eating', flush=True)\nx = []\nwhile True:\n    x.append(bytearray(16 * 1024 * 1024))\n"
    )
    await start_bot(runner_client, owner, name, hog)

    async def oom_event() -> bool:
        evs = await events_for(redis_client, owner, name)
        return any(e.type is EventType.CRASHED and e.oom_killed for e in evs)

    await eventually(oom_event, timeout=40)
    [first] = [e for e in await events_for(redis_client, owner, name) if e.type is EventType.CRASHED][:1]
    assert first.oom_killed and first.exit_code == 137
    assert first.memory_limit_bytes == 256 * 1024 * 1024
    await call(runner_client, Op.STOP, owner, name)


async def test_quota_counts_every_state_and_race_gives_one_success(
    runner_client: RunnerClient, unique_name
) -> None:
    owner = owner_id()
    await start_bot(runner_client, owner, unique_name("q1"))
    second = unique_name("q2")
    await start_bot(runner_client, owner, second)
    await call(runner_client, Op.STOP, owner, second)  # stopped bots count too

    a, b = unique_name("qa"), unique_name("qb")
    results = await asyncio.gather(
        call(runner_client, Op.START, owner, a, payload=SLEEPER),
        call(runner_client, Op.START, owner, b, payload=SLEEPER),
    )
    oks = [r for r in results if r.ok]
    fails = [r for r in results if not r.ok]
    assert len(oks) == 1 and len(fails) == 1
    assert fails[0].error is not None and fails[0].error.code is ErrorCode.QUOTA_EXCEEDED
    assert "maximum 3 bots per user" in fails[0].error.message


async def test_quota_override_and_failed_start_takes_no_slot(
    runner_client: RunnerClient, unique_name
) -> None:
    owner = owner_id()
    res = await call(runner_client, Op.SET_QUOTA, owner, target_owner=owner, quota=1)
    assert not res.ok and res.error is not None and res.error.code is ErrorCode.FORBIDDEN
    res = await call(runner_client, Op.SET_QUOTA, 1, admin=True, target_owner=owner, quota=1)
    assert res.ok and res.quota is not None and res.quota.limit == 1

    bad = await call(runner_client, Op.START, owner, unique_name("bin"), payload=b"\x00\x01\x02binary")
    assert bad.error is not None and bad.error.code is ErrorCode.INVALID_SOURCE
    bad = await call(runner_client, Op.START, owner, "Bad_Name", payload=SLEEPER)
    assert bad.error is not None and bad.error.code is ErrorCode.INVALID_NAME
    bad = await call(runner_client, Op.START, owner, unique_name("env"), payload=SLEEPER, env={"1BAD": "x"})
    assert bad.error is not None and bad.error.code is ErrorCode.INVALID_ENV

    name = unique_name("only")
    await start_bot(runner_client, owner, name)
    res = await call(runner_client, Op.START, owner, name, payload=SLEEPER)
    assert res.error is not None and res.error.code is ErrorCode.ALREADY_EXISTS
    res = await call(runner_client, Op.START, owner, unique_name("over"), payload=SLEEPER)
    assert res.error is not None and res.error.code is ErrorCode.QUOTA_EXCEEDED
    assert "maximum 1 bots per user" in res.error.message
    assert (res.error.params.limit, res.error.params.used) == (1, 1)
    res = await call(runner_client, Op.QUOTA, owner)
    assert res.quota is not None and (res.quota.used, res.quota.limit) == (1, 1)


async def test_set_env_restarts_with_new_values(runner_client: RunnerClient, unique_name) -> None:
    owner, name = owner_id(), unique_name("env")
    code = (
        b"import os\nprint('A=', os.environ.get('A'), 'B=', os.environ.get('B'), flush=True)\n"
        b"import time\ntime.sleep(600)\n"
    )
    await start_bot(runner_client, owner, name, code, env={"A": "1", "B": "2"})
    res = await call(runner_client, Op.SET_ENV, owner, name, env={"A": "new"}, unset=["B"])
    assert res.ok and res.bot is not None and sorted(res.bot.env_masked) == ["A"]

    async def applied() -> bool:
        return "A= new B= None" in ((await call(runner_client, Op.LOGS, owner, name)).logs or "")

    await eventually(applied)


async def test_system_info(runner_client: RunnerClient) -> None:
    res = await call(runner_client, Op.SYSTEM, 1, admin=True)
    assert res.ok and res.system is not None and res.system.docker_version


async def test_logs_since_filters_by_time(runner_client: RunnerClient, unique_name) -> None:
    owner, name = owner_id(), unique_name("since")
    code = (
        b"import time\nprint('early', flush=True)\ntime.sleep(2)\n"
        b"print('late', flush=True)\ntime.sleep(600)\n"
    )
    await start_bot(runner_client, owner, name, code)

    async def both() -> bool:
        return "late" in ((await call(runner_client, Op.LOGS, owner, name)).logs or "")

    await eventually(both)
    everything = await call(runner_client, Op.LOGS, owner, name, since=0)
    assert everything.ok and "early" in (everything.logs or "")
    status = (await call(runner_client, Op.STATUS, owner, name)).bot
    assert status is not None and status.started_at is not None
    recent = await call(runner_client, Op.LOGS, owner, name, since=status.started_at + 1.5)
    assert recent.ok and "late" in (recent.logs or "") and "early" not in (recent.logs or "")
