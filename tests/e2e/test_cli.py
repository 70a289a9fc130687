"""`botrunner` run as a subprocess for every command, against the real controlbot, runner and Docker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from tests.fixtures.api_users import BOTRUNNER, TICKER, TICKER_V2, ApiUser, api_user, make_api_user

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "bots"
__all__ = ["api_user", "make_api_user"]  # fixtures

COUNTER = b"""\
import itertools, time
for i in itertools.count():
    print(f"tick {i}", flush=True)
    time.sleep(0.3)
"""


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    )
    return result.stdout


def test_every_command_of_a_bots_life(
    api_user: ApiUser, tmp_path: Path, docker_client: docker.DockerClient, unique_name: Callable[[str], str]
) -> None:
    name = unique_name("cli")
    bot_py = write(tmp_path, "bot.py", TICKER)
    out = ok(api_user.cli("start", name, "--simple", bot_py, "-e", "WHO=cli-test", "-e", "SECRET=hunter22"))
    assert f"🟢 RUNNING  {name} deployed" in out
    assert docker_client.containers.get(f"botrunner-{api_user.owner}-{name}").status == "running"

    out = ok(api_user.cli("list"))
    assert name in out and "🟢 RUNNING" in out and "bots: 1/3" in out
    listing = json.loads(ok(api_user.cli("--json", "list")))
    assert listing["quota"] == {"used": 1, "limit": 3}

    out = ok(api_user.cli("status", name))
    assert f"🟢 RUNNING  {name}" in out
    for label in ("uptime", "restarts", "memory", "cpu", "source", "container"):
        assert label in out, out
    assert "/ 256 MB" in out and "bot.py (sha " in out
    status = json.loads(ok(api_user.cli("--json", "status", name)))
    assert status["container_id"][:12] in out
    assert "hunter22" not in out

    api_user.wait_log(name, "hello from CLI-TEST")
    assert "hello from CLI-TEST" in ok(api_user.cli("logs", name, "--tail", "5", "--since", "10m"))
    lines = ok(api_user.cli("--json", "logs", name)).splitlines()
    assert {"line": "hello from CLI-TEST"} in [json.loads(line) for line in lines]

    assert ok(api_user.cli("stop", name)).strip() == f"🔴 STOPPED  {name} stopped"
    assert ok(api_user.cli("start", name)).strip() == f"🟢 RUNNING  {name} started"
    assert ok(api_user.cli("restart", name)).strip() == f"🟢 RUNNING  {name} restarted"

    v2 = write(tmp_path, "v2.py", TICKER_V2)
    out = ok(api_user.cli("update", name, "--simple", v2, "-e", "WHO=updated"))
    assert "Step 1/2: stopping… ✓\nStep 2/2: starting the new code… ✓ updated\n" in out
    api_user.wait_log(name, "v2 says hello from UPDATED")

    out = ok(api_user.cli("env", name, "WHO=env-cmd", "-SECRET"))
    assert "set WHO; unset SECRET" in out and "env-cmd" not in out
    api_user.wait_log(name, "v2 says hello from ENV-CMD")
    assert set(json.loads(ok(api_user.cli("--json", "status", name)))["env_masked"]) == {"WHO"}

    assert ok(api_user.cli("rm", name)).strip() == f"🗑  {name} deleted"
    gone = api_user.cli("status", name)
    assert gone.returncode == 1
    assert gone.stderr.startswith("NOT_FOUND: ")


def test_logs_follow_prints_each_line_once(
    api_user: ApiUser, tmp_path: Path, unique_name: Callable[[str], str]
) -> None:
    name = unique_name("follow")
    ok(api_user.cli("start", name, "--simple", write(tmp_path, "counter.py", COUNTER)))
    api_user.wait_log(name, "tick 2")
    env = {**os.environ, "BOTRUNNER_URL": api_user.url, "BOTRUNNER_TOKEN": api_user.token}
    proc = subprocess.Popen(
        [str(BOTRUNNER), "logs", name, "--tail", "3", "--follow"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        seen: list[int] = []
        deadline = time.monotonic() + 30
        while len(seen) < 12 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line.startswith("tick "), line
            seen.append(int(line.split()[1]))
    finally:
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(10)
    assert len(seen) == 12, seen
    # Consecutive, each once: the polls with `since` neither lose nor repeat a line.
    assert seen == list(range(seen[0], seen[0] + 12)), seen
    assert rc == 0


def test_quota_exceeded_exits_1_with_code_and_message(
    api_user: ApiUser, tmp_path: Path, unique_name: Callable[[str], str]
) -> None:
    bot_py = write(tmp_path, "bot.py", TICKER)
    for _ in range(3):
        ok(api_user.cli("start", unique_name("q"), "--simple", bot_py))
    result = api_user.cli("start", unique_name("q"), "--simple", bot_py)
    assert result.returncode == 1
    assert result.stderr.startswith("QUOTA_EXCEEDED: maximum 3 bots per user"), result.stderr
    as_json = api_user.cli("--json", "start", unique_name("q"), "--simple", bot_py)
    assert (as_json.returncode, json.loads(as_json.stdout)["error"]["code"]) == (1, "QUOTA_EXCEEDED")


def test_failures_and_usage_errors(api_user: ApiUser, tmp_path: Path) -> None:
    result = api_user.cli("status", "nobody-here")
    assert (result.returncode, result.stderr.split(":")[0]) == (1, "NOT_FOUND")
    result = api_user.cli("list", BOTRUNNER_TOKEN="brt_" + "0" * 43)
    assert (result.returncode, result.stderr.split(":")[0]) == (1, "UNAUTHORIZED")
    result = api_user.cli("list", BOTRUNNER_TOKEN="")
    assert (result.returncode, result.stderr.split(":")[0]) == (1, "UNAUTHORIZED")
    result = api_user.cli("start", "Bad_Name", "--simple", write(tmp_path, "b.py", TICKER))
    assert (result.returncode, result.stderr.split(":")[0]) == (1, "INVALID_NAME")
    for args in (
        ["start", "x1", "--simple", "/no/such.py"],
        ["update", "x1"],
        ["logs", "x1", "--since", "someday"],
        ["env", "x1"],
        ["frobnicate"],
    ):
        result = api_user.cli(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
    result = api_user.cli("list", BOTRUNNER_URL="http://127.0.0.1:9")
    assert (result.returncode, result.stderr.split(":")[0]) == (1, "CONNECTION_FAILED")


def test_a_crashing_bot_shows_its_exit_code_and_traceback(
    api_user: ApiUser, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    name = unique_name("err")
    # It crashes after the health gate's window: a crash inside it would leave the bot stopped.
    late = tmp_path / "error_bot.py"
    late.write_bytes(b"import time\ntime.sleep(3)\n" + (EXAMPLES / "error_bot.py").read_bytes())
    ok(api_user.cli("start", name, "--simple", str(late)))
    api_user.wait_log(name, "ValueError: TEST ERROR")
    assert "ValueError: TEST ERROR" in ok(api_user.cli("logs", name, "--tail", "50"))
    deadline = time.monotonic() + 60
    while json.loads(ok(api_user.cli("--json", "status", name)))["state"] != "crashed":
        assert time.monotonic() < deadline, "the bot never settled as crashed"
        time.sleep(0.5)
    out = ok(api_user.cli("status", name))
    assert f"💥 CRASHED  {name}" in out
    assert "exit code 1" in out
