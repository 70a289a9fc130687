"""Releases through the HTTP API and the CLI, against the real control bot, runner, Redis and Docker."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from tests.fixtures.api_users import TICKER, TICKER_V2, ApiUser, api_user, error_of

pytestmark = pytest.mark.e2e
__all__ = ["api_user"]  # fixtures

REPO_ENV = {"PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[2])}
CRASHER = b"print('v3 starting', flush=True)\nraise RuntimeError('API BROKEN AT IMPORT')\n"


def update(user: ApiUser, name: str, source: bytes, **params: str):  # type: ignore[no-untyped-def]
    files = {"file": ("bot.py", source, "text/x-python")}
    return user.http.put(f"/api/bots/{name}", files=files, params=params)


def test_api_releases_rollback_wait_health_and_kept_logs(
    api_user: ApiUser, unique_name: Callable[[str], str]
) -> None:
    name = unique_name("apirel")
    assert api_user.deploy(name, env=["WHO=one"]).status_code == 201
    api_user.wait_log(name, "hello from ONE")  # TICKER prints WHO upper-cased
    # No previous release yet: 409 INVALID_STATE.
    resp = api_user.http.post(f"/api/bots/{name}/rollback", json={})
    assert resp.status_code == 409 and error_of(resp)["code"] == "INVALID_STATE"

    # The API answers at running as before; ?wait=health waits for the verdict.
    t0 = time.monotonic()
    resp = update(api_user, name, TICKER_V2, wait="health")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["health"]["verdict"] == "healthy" and body["release"] == 2
    assert time.monotonic() - t0 >= 1.5  # RUNNER_HEALTH_GRACE = 2 in tests
    api_user.wait_log(name, "v2 says hello from ONE")

    # A crashing update, waited for: rolled back to 2, reported with its traceback.
    resp = update(api_user, name, CRASHER, wait="health")
    health = resp.json()["health"]
    assert (health["verdict"], health["release"], health["restored"]) == ("rolled_back", 3, 2)
    assert "API BROKEN AT IMPORT" in health["log_tail"]
    assert resp.json()["state"] == "running" and resp.json()["release"] == 2

    releases = api_user.http.get(f"/api/bots/{name}/releases").json()["releases"]
    assert [(r["number"], r["current"], r["failed"]) for r in releases] == [
        (3, False, True),
        (2, True, False),
        (1, False, False),
    ]
    # The replaced release 1 kept its output.
    kept = api_user.http.get(
        f"/api/bots/{name}/logs", params={"release": 1}, headers={"Accept": "text/plain"}
    )
    assert kept.status_code == 200 and "hello from ONE" in kept.text and "v2" not in kept.text

    # Roll back to 1 explicitly: a new release 4, release 1's code.
    resp = api_user.http.post(f"/api/bots/{name}/rollback", json={"release": 1})
    assert resp.status_code == 200, resp.text
    assert resp.json()["release"] == 4 and resp.json()["checking"]
    api_user.wait_log(name, "hello from ONE")
    missing = api_user.http.post(f"/api/bots/{name}/rollback", json={"release": 99})
    assert missing.status_code == 409 and error_of(missing)["params"]["release"] == 99


def test_cli_releases_rollback_and_logs_release(api_user: ApiUser, unique_name: Callable[[str], str]) -> None:
    name = unique_name("clirel")
    assert api_user.deploy(name, TICKER, env=["WHO=cli"]).status_code == 201
    api_user.wait_log(name, "hello from CLI")
    assert update(api_user, name, TICKER_V2).status_code == 200
    api_user.wait_log(name, "v2 says hello from CLI")

    out = api_user.cli("releases", name, **REPO_ENV)
    assert out.returncode == 0, out.stderr
    assert "current" in out.stdout and "update" in out.stdout and "start" in out.stdout
    listed = json.loads(api_user.cli("--json", "releases", name, **REPO_ENV).stdout)
    assert [r["number"] for r in listed] == [2, 1]

    logs = api_user.cli("logs", name, "--release", "1", **REPO_ENV)
    assert logs.returncode == 0 and "hello from CLI" in logs.stdout and "v2" not in logs.stdout

    done = api_user.cli("rollback", name, "--to", "1", "--wait", **REPO_ENV)
    assert done.returncode == 0, done.stderr
    assert "now release 3 (healthy)" in done.stdout
    api_user.wait_log(name, "hello from CLI")

    refused = api_user.cli("rollback", name, "--to", "3", **REPO_ENV)
    assert refused.returncode == 1 and refused.stderr.startswith("INVALID_STATE"), refused.stderr
