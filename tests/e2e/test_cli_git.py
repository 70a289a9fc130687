"""`botrunner start --git` and `update --pull` against a local git server; the CLI with the runner down.

These run on a private stack (its own Redis, runner and controlbot) whose API allows git:// URLs,
so the session's stack keeps its defaults and its runner is never stopped.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.telegram import FakeTelegram
from tests.fixtures.api_users import (
    PRIVATE_USERS,
    TICKER,
    ApiUser,
    GitServer,
    PrivateStack,
    git_server,
    private_stack,
)

pytestmark = pytest.mark.e2e

BOT_V1 = TICKER.replace(b"hello from", b"git v1 hello from")
BOT_V2 = TICKER.replace(b"hello from", b"git v2 hello from")
BOT_DEV = TICKER.replace(b"hello from", b"git dev hello from")


@pytest.fixture(scope="module")
def stack(
    fake_telegram: FakeTelegram,
    base_image: str,
    test_session_id: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PrivateStack]:
    workdir = tmp_path_factory.mktemp("cli-git-stack")
    with private_stack(
        fake_telegram, base_image, test_session_id, workdir, API_ENABLED="true", GIT_ALLOWED_SCHEMES="git"
    ) as s:
        yield s


@pytest.fixture(scope="module")
def git(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    with git_server(tmp_path_factory.mktemp("git-repos")) as server:
        yield server


_owners = iter(PRIVATE_USERS[:10])


@pytest.fixture
def user(stack: PrivateStack) -> Iterator[ApiUser]:
    u = stack.user(next(_owners))
    try:
        yield u
    finally:
        u.delete_all()


def test_start_from_git_then_pull_the_branch_head_and_a_commit(user: ApiUser, git: GitServer) -> None:
    first = git.create("pullme", {"main.py": BOT_V1})
    result = user.cli("start", "gitbot", "--git", git.url("pullme"), "--branch", "main", "-e", "WHO=git")
    assert result.returncode == 0, result.stderr
    assert "🟢 RUNNING  gitbot deployed" in result.stdout
    user.wait_log("gitbot", "git v1 hello from GIT", timeout=120)
    status = json.loads(user.cli("--json", "status", "gitbot").stdout)
    assert status["source"]["kind"] == "git" and status["source"]["commit"].startswith(first[:7])
    assert first[:7] in user.cli("status", "gitbot").stdout

    second = git.commit("pullme", {"main.py": BOT_V2}, "v2")
    result = user.cli("update", "gitbot", "--pull")
    assert result.returncode == 0, result.stderr
    assert "Step 1/2: stopping… ✓\nStep 2/2: starting the new code… ✓ updated" in result.stdout
    user.wait_log("gitbot", "git v2 hello from GIT", timeout=120)
    assert json.loads(user.cli("--json", "status", "gitbot").stdout)["source"]["commit"].startswith(
        second[:7]
    )

    result = user.cli("update", "gitbot", "--pull", "--commit", first)
    assert result.returncode == 0, result.stderr
    user.wait_log("gitbot", "git v1 hello from GIT", timeout=120)


def test_start_from_git_with_an_entrypoint(user: ApiUser, git: GitServer) -> None:
    git.create("entry", {"src/run_me.py": BOT_DEV})
    result = user.cli("start", "entrybot", "--git", git.url("entry"), "--entrypoint", "src/run_me.py")
    assert result.returncode == 0, result.stderr
    user.wait_log("entrybot", "git dev hello from", timeout=120)


def test_refused_git_urls_exit_1(user: ApiUser) -> None:
    for url in ("https://example.org/repo.git", "file:///etc", "ext::sh -c id", "-u/tmp"):
        result = user.cli("start", "refused", "--git", url)
        assert result.returncode == 1, (url, result.stdout)
        assert result.stderr.startswith("GIT_REFUSED: "), (url, result.stderr)


def test_a_failed_build_is_422_with_the_log_tail(user: ApiUser, git: GitServer) -> None:
    missing = f"botrunner-no-such-package-{secrets.token_hex(4)}"
    git.create("baddeps", {"requirements.txt": f"{missing}==0.0.1\n".encode(), "main.py": BOT_V1})
    resp = user.http.post("/api/bots", data={"name": "baddeps", "git_url": git.url("baddeps")})
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "BUILD_FAILED"
    assert missing in error["detail"] and 0 < len(error["detail"].splitlines()) <= 40
    result = user.cli("start", "baddeps", "--git", git.url("baddeps"))
    assert result.returncode == 1 and result.stderr.startswith("BUILD_FAILED: "), result.stderr
    assert json.loads(user.cli("--json", "list").stdout)["quota"]["used"] == 0  # no slot taken


def test_pull_of_a_file_bot_fails(user: ApiUser, tmp_path: Path) -> None:
    path = tmp_path / "bot.py"
    path.write_bytes(TICKER)
    assert user.cli("start", "filebot", "--simple", str(path)).returncode == 0
    result = user.cli("update", "filebot", "--pull")
    assert result.returncode == 1
    assert result.stderr.split(":")[0] == "INVALID_SOURCE", result.stderr


def test_cli_while_the_runner_is_stopped(stack: PrivateStack, user: ApiUser, tmp_path: Path) -> None:
    """Last in this module: it stops the private runner (and starts it again)."""
    path = tmp_path / "bot.py"
    path.write_bytes(TICKER)
    stack.runner.stop()
    try:
        result = user.cli("list")
        for _ in range(100):  # until the heartbeat is stale
            if result.returncode != 0:
                break
            result = user.cli("list")
        assert result.returncode == 1
        assert result.stderr.startswith("RUNNER_UNAVAILABLE: "), result.stderr
        result = user.cli("start", "downbot", "--simple", str(path))
        assert (result.returncode, result.stderr.split(":")[0]) == (1, "RUNNER_UNAVAILABLE")
    finally:
        stack.runner.start()
