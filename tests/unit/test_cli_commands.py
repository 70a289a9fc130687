"""Every CLI command in-process, against the real API app served over HTTP with a fake runner."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest
import uvicorn
from click.testing import Result
from redis.asyncio import Redis
from typer.testing import CliRunner

from cli import logs as cli_logs
from cli.app import app
from controlbot.api import create_app
from controlbot.api.server import bind
from protocol.models import Op, SourceKind
from tests.fakes.runner import FakeRunner
from tests.fixtures.api_app import USER, FakeRedis, make_gateway, make_settings

pytestmark = pytest.mark.unit


@dataclass
class Live:
    url: str
    token: str
    runner: FakeRunner
    tmp: Path

    def run(self, *args: str, token: str | None = None, url: str | None = None) -> Result:
        env = {
            "BOTRUNNER_URL": url or self.url,
            "BOTRUNNER_TOKEN": token if token is not None else self.token,
        }
        return CliRunner().invoke(app, list(args), env=env, prog_name="botrunner")

    def bot_file(self, text: str = "print('hi')\n", name: str = "bot.py") -> str:
        path = self.tmp / name
        path.write_text(text)
        return str(path)

    def deploy(self, name: str) -> None:
        result = self.run("start", name, "--simple", self.bot_file())
        assert result.exit_code == 0, result.output


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    runner, redis = FakeRunner(quota=3), FakeRedis()
    token = redis.mint(USER)
    settings = make_settings()
    app_ = create_app(settings, make_gateway(settings, runner), cast(Redis, redis))
    server = uvicorn.Server(uvicorn.Config(app_, log_config=None, lifespan="on"))
    sock = bind("127.0.0.1", 0)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.01)
    try:
        yield Live(f"http://127.0.0.1:{sock.getsockname()[1]}", token, runner, tmp_path)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_start_simple_reports_running(live: Live) -> None:
    result = live.run("start", "echo", "--simple", live.bot_file(), "-e", "GREETING=hi", "-e", "EMPTY=")
    assert result.exit_code == 0, result.output
    assert "🟢 RUNNING  echo deployed" in result.stdout
    cmd = live.runner.commands[-1]
    assert (cmd.op, cmd.name, cmd.env) == (Op.START, "echo", {"GREETING": "hi", "EMPTY": ""})
    assert live.runner.payloads[cmd.request_id] == b"print('hi')\n"


def test_start_git_passes_branch_and_entrypoint(live: Live) -> None:
    args = [
        "start",
        "gitty",
        "--git",
        "https://example.org/r.git",
        "--branch",
        "dev",
        "--entrypoint",
        "app/bot.py",
    ]
    result = live.run(*args, "-e", "A=1")
    assert result.exit_code == 0, result.output
    cmd = live.runner.commands[-1]
    assert cmd.source is not None
    assert (cmd.source.kind, cmd.source.git_url, cmd.source.branch, cmd.source.entrypoint) == (
        SourceKind.GIT,
        "https://example.org/r.git",
        "dev",
        "app/bot.py",
    )
    assert cmd.env == {"A": "1"}


def test_start_existing_stopped_bot(live: Live) -> None:
    live.deploy("sleepy")
    assert live.run("stop", "sleepy").exit_code == 0
    result = live.run("start", "sleepy")
    assert result.exit_code == 0, result.output
    assert "🟢 RUNNING  sleepy started" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["start", "x1", "--simple", "BOT", "--git", "https://e.org/r.git"],
        ["start", "x1", "--branch", "dev"],
        ["start", "x1", "--simple", "/no/such/file.py"],
        ["start", "x1", "-e", "A=1"],
        ["start", "x1", "--simple", "BOT", "-e", "NOEQUALS"],
        ["update", "x1"],
        ["update", "x1", "--simple", "BOT", "--pull"],
        ["update", "x1", "--simple", "BOT", "--commit", "abc"],
        ["logs", "x1", "--since", "last tuesday"],
        ["logs", "x1", "--tail", "0"],
        ["env", "x1"],
        ["env", "x1", "NOEQ"],
        ["nosuchcommand"],
        [],
    ],
)
def test_usage_errors_exit_2(live: Live, args: list[str]) -> None:
    args = [live.bot_file() if a == "BOT" else a for a in args]
    result = live.run(*args)
    assert result.exit_code == 2, result.output
    assert live.runner.commands == []


def test_list_shows_states_and_quota(live: Live) -> None:
    live.deploy("one")
    live.deploy("two")
    live.run("stop", "two")
    result = live.run("list")
    assert result.exit_code == 0, result.output
    assert "bots: 2/3" in result.stdout
    assert "🟢 RUNNING" in result.stdout and "🔴 STOPPED" in result.stdout
    body = json.loads(live.run("--json", "list").stdout)
    assert body["quota"] == {"used": 2, "limit": 3}
    assert [b["name"] for b in body["bots"]] == ["one", "two"]


def test_quota(live: Live) -> None:
    live.deploy("one")
    assert live.run("quota").stdout.strip() == "bots: 1/3"
    assert json.loads(live.run("--json", "quota").stdout) == {"used": 1, "limit": 3}


def test_list_when_empty(live: Live) -> None:
    result = live.run("list")
    assert result.exit_code == 0
    assert "no bots yet (bots: 0/3)" in result.stdout


def test_status_card(live: Live) -> None:
    live.deploy("card")
    result = live.run("status", "card")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "🟢 RUNNING  card" in out
    for label in ("uptime", "restarts", "memory", "cpu", "source", "container"):
        assert label in out
    assert "/ 256 MB" in out and "/ 0.5 CPU" in out
    assert "bot.py (sha " in out
    assert "c0ffeec0ffee" in out
    assert json.loads(live.run("--json", "status", "card").stdout)["name"] == "card"


def test_logs_tail_and_json(live: Live) -> None:
    live.deploy("logsy")
    live.runner.bots[(USER, "logsy")].logs += ["second", "third"]
    result = live.run("logs", "logsy", "--tail", "2", "--since", "1h")
    assert result.exit_code == 0, result.output
    assert result.stdout == "second\nthird\n"
    assert live.runner.commands[-1].tail == 2
    lines = live.run("--json", "logs", "logsy").stdout.splitlines()
    assert [json.loads(line) for line in lines] == [
        {"line": "started logsy"},
        {"line": "second"},
        {"line": "third"},
    ]


def test_logs_follow_streams_new_lines(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--follow` reads one NDJSON stream; the server polls the runner with `since` behind it."""
    monkeypatch.setattr("controlbot.api.follow.FOLLOW_INTERVAL_S", 0.05)
    live.deploy("tail")
    bot = live.runner.bots[(USER, "tail")]
    real_emit = cli_logs._emit

    def emit(lines: list[str], as_json: bool) -> None:
        real_emit(lines, as_json)
        if lines == ["started tail"]:
            bot.logs.append("new line")
        elif "new line" in lines:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli_logs, "_emit", emit)
    result = live.run("logs", "tail", "--follow")
    assert result.exit_code == 0, result.output
    # The fake runner ignores `since`, so each poll returns everything: shown once all the same.
    assert result.stdout == "started tail\nnew line\n"
    follow_polls = [c for c in live.runner.commands if c.op is Op.LOGS][1:]
    assert follow_polls
    assert all(c.since is not None and c.since > time.time() - 60 for c in follow_polls)


def test_logs_follow_ends_with_the_error_that_ended_the_stream(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bot is deleted while followed: the stream's last line is the error, the CLI exits 1."""
    monkeypatch.setattr("controlbot.api.follow.FOLLOW_INTERVAL_S", 0.05)
    live.deploy("gone")
    real_emit = cli_logs._emit

    def emit(lines: list[str], as_json: bool) -> None:
        real_emit(lines, as_json)
        live.runner.bots.pop((USER, "gone"), None)

    monkeypatch.setattr(cli_logs, "_emit", emit)
    result = live.run("logs", "gone", "--follow")
    assert result.exit_code == 1, result.output
    assert result.stdout == "started gone\n"
    assert "NOT_FOUND" in result.stderr


def test_stop_and_restart(live: Live) -> None:
    live.deploy("cyc")
    result = live.run("stop", "cyc")
    assert (result.exit_code, result.stdout.strip()) == (0, "🔴 STOPPED  cyc stopped")
    result = live.run("restart", "cyc")
    assert (result.exit_code, result.stdout.strip()) == (0, "🟢 RUNNING  cyc restarted")


def test_update_simple_reports_both_steps(live: Live) -> None:
    live.deploy("upd")
    result = live.run("update", "upd", "--simple", live.bot_file("print('v2')\n", "v2.py"), "-e", "X=1")
    assert result.exit_code == 0, result.output
    assert "Step 1/2: stopping… ✓\nStep 2/2: starting the new code… ✓ updated\n" in result.stdout
    cmd = live.runner.commands[-1]
    assert (cmd.op, cmd.env) == (Op.UPDATE, {"X": "1"})
    assert cmd.source is not None and cmd.source.filename == "v2.py"


def test_update_pull_of_a_git_bot(live: Live) -> None:
    live.run("start", "gp", "--git", "git://127.0.0.1/r.git")
    result = live.run("update", "gp", "--pull", "--branch", "main", "--commit", "abc1234")
    assert result.exit_code == 0, result.output
    assert "✓ updated" in result.stdout
    cmd = live.runner.commands[-1]
    assert cmd.pull and cmd.source is not None
    assert (cmd.source.branch, cmd.source.commit) == ("main", "abc1234")


def test_update_pull_of_a_file_bot_fails_with_the_code(live: Live) -> None:
    live.deploy("plain")
    result = live.run("update", "plain", "--pull")
    assert result.exit_code == 1
    assert result.stderr.startswith("INVALID_SOURCE: ")


def test_rm(live: Live) -> None:
    live.deploy("gone")
    result = live.run("rm", "gone")
    assert (result.exit_code, result.stdout.strip()) == (0, "🗑  gone deleted")
    result = live.run("status", "gone")
    assert result.exit_code == 1
    assert result.stderr.startswith("NOT_FOUND: ")


def test_env_sets_and_unsets_without_echoing_values(live: Live) -> None:
    live.deploy("envy")
    result = live.run("env", "envy", "TOKEN=s3cr3t-value", "-OLD", "--", "-ALSO")
    assert result.exit_code == 0, result.output
    assert "set TOKEN; unset OLD, ALSO" in result.stdout
    assert "s3cr3t" not in result.output
    cmd = live.runner.commands[-1]
    assert (cmd.op, cmd.env, sorted(cmd.unset)) == (Op.SET_ENV, {"TOKEN": "s3cr3t-value"}, ["ALSO", "OLD"])


def test_quota_exceeded_exits_1_with_code_and_message(live: Live) -> None:
    for n in range(3):
        live.deploy(f"q-{n}")
    result = live.run("start", "q-3", "--simple", live.bot_file())
    assert result.exit_code == 1
    assert result.stderr.startswith("QUOTA_EXCEEDED: maximum 3 bots per user")


def test_json_errors_go_to_stdout(live: Live) -> None:
    result = live.run("--json", "status", "ghost")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["code"] == "NOT_FOUND"


def test_missing_wrong_token_and_no_server(live: Live) -> None:
    result = live.run("list", token="")
    assert (result.exit_code, result.stderr.split(":")[0]) == (1, "UNAUTHORIZED")
    result = live.run("list", token="brt_" + "x" * 43)
    assert (result.exit_code, result.stderr.split(":")[0]) == (1, "UNAUTHORIZED")
    result = live.run("list", url="http://127.0.0.1:9")
    assert (result.exit_code, result.stderr.split(":")[0]) == (1, "CONNECTION_FAILED")


def test_global_options_before_the_command(live: Live) -> None:
    result = CliRunner().invoke(
        app, ["--url", live.url, "--token", live.token, "--json", "list"], env={}, prog_name="botrunner"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["bots"] == []
