"""The HTTP API against the real controlbot, runner, Redis and Docker: each status of issue 5's table."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import docker
import httpx
import pytest

from tests.fakes.telegram import FakeTelegram
from tests.fixtures.api_users import (
    TICKER,
    TICKER_V2,
    ApiUser,
    api_user,
    error_of,
    make_api_user,
    private_stack,
)
from tests.fixtures.controlbot import Chat, ControlbotProcess

pytestmark = pytest.mark.e2e
__all__ = ["api_user", "make_api_user"]  # fixtures

TOKEN_RE = re.compile(r"brt_[A-Za-z0-9_-]{43}")


def container(
    docker_client: docker.DockerClient, owner: int, name: str
) -> docker.models.containers.Container:
    return docker_client.containers.get(f"botrunner-{owner}-{name}")


def test_lifecycle_through_the_api(
    api_user: ApiUser, docker_client: docker.DockerClient, unique_name: Callable[[str], str]
) -> None:
    name = unique_name("api")
    resp = api_user.deploy(name, env=["WHO=api-test", "SECRET=hunter22"])
    assert resp.status_code == 201, resp.text
    bot = resp.json()
    assert (bot["name"], bot["owner"], bot["state"]) == (name, api_user.owner, "running")
    assert bot["env_masked"]["SECRET"] != "hunter22"
    box = container(docker_client, api_user.owner, name)
    assert box.status == "running"
    assert box.labels["botrunner.owner"] == str(api_user.owner)
    assert box.id.startswith(bot["container_id"])

    logs = api_user.wait_log(name, "hello from API-TEST")
    assert "hello from API-TEST" in logs
    as_json = api_user.http.get(f"/api/bots/{name}/logs", params={"tail": 5, "since": "10m"})
    assert as_json.headers["content-type"].startswith("application/x-ndjson")
    assert {"line": "hello from API-TEST"} in [json.loads(line) for line in as_json.text.splitlines()]
    assert float(as_json.headers["x-log-time"]) > 0

    listing = api_user.http.get("/api/bots").json()
    assert [b["name"] for b in listing["bots"]] == [name]
    assert listing["quota"] == {"used": 1, "limit": 3}

    stopped = api_user.http.post(f"/api/bots/{name}/stop")
    assert (stopped.status_code, stopped.json()["state"]) == (200, "stopped")
    assert api_user.http.get(f"/api/bots/{name}").json()["state"] == "stopped"
    started = api_user.http.post(f"/api/bots/{name}/start")
    assert (started.status_code, started.json()["state"]) == (200, "running")
    restarted = api_user.http.post(f"/api/bots/{name}/restart")
    assert (restarted.status_code, restarted.json()["state"]) == (200, "running")

    files = {"file": ("v2.py", TICKER_V2, "text/x-python")}
    updated = api_user.http.put(f"/api/bots/{name}", files=files)
    assert updated.status_code == 200, updated.text
    assert updated.json()["source"]["filename"] == "v2.py"
    api_user.wait_log(name, "v2 says hello from API-TEST")

    env = api_user.http.put(f"/api/bots/{name}/env", json={"WHO": "patched", "SECRET": None})
    assert env.status_code == 200, env.text
    assert set(env.json()["env_masked"]) == {"WHO"}
    api_user.wait_log(name, "v2 says hello from PATCHED")

    gone = api_user.http.delete(f"/api/bots/{name}")
    assert (gone.status_code, gone.content) == (204, b"")
    with pytest.raises(docker.errors.NotFound):
        container(docker_client, api_user.owner, name)
    assert api_user.http.get("/api/bots").json()["quota"]["used"] == 0


def test_streamed_deploy_shows_progress(api_user: ApiUser, unique_name: Callable[[str], str]) -> None:
    name = unique_name("stream")
    files = {"file": ("bot.py", TICKER, "text/x-python")}
    resp = api_user.http.post(
        "/api/bots", data={"name": name}, files=files, headers={"Accept": "application/x-ndjson"}
    )
    assert resp.status_code == 201
    events = [json.loads(line) for line in resp.text.splitlines()]
    assert events[-1]["type"] == "result" and events[-1]["bot"]["state"] == "running"
    assert "starting" in [e["stage"] for e in events if e["type"] == "progress"]


def test_missing_token_is_401(controlbot: ControlbotProcess, api_user: ApiUser) -> None:
    resp = httpx.get(f"{api_user.url}/api/bots")
    assert resp.status_code == 401
    assert error_of(resp)["code"] == "UNAUTHORIZED"
    assert resp.headers["www-authenticate"] == "Bearer"


def test_wrong_token_is_401(api_user: ApiUser) -> None:
    for token in ("brt_" + "A" * 43, api_user.token[:-1] + "x", "garbage"):
        resp = httpx.get(f"{api_user.url}/api/bots", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401
        assert error_of(resp)["code"] == "UNAUTHORIZED"


def test_token_from_chat_then_revoked_is_401(
    chat_user: Callable[..., Chat], controlbot: ControlbotProcess
) -> None:
    assert controlbot.api_url is not None
    chat = chat_user("Tokyo")
    mark = chat.mark()
    chat.send("/token")
    shown = chat.wait("API token", after=mark)
    found = TOKEN_RE.search(shown.text or "")
    assert found, shown.text
    token = found.group(0)
    assert any(e.get("type") in ("code", "pre") for e in shown.entities), "the token is in a monospace block"
    headers = {"Authorization": f"Bearer {token}"}
    resp = httpx.get(f"{controlbot.api_url}/api/bots", headers=headers)
    assert resp.status_code == 200, resp.text

    # A new token replaces the old one.
    mark = chat.mark()
    chat.send("/token")
    newer = TOKEN_RE.search(chat.wait("API token", after=mark).text or "")
    assert newer and newer.group(0) != token
    assert httpx.get(f"{controlbot.api_url}/api/bots", headers=headers).status_code == 401
    new_headers = {"Authorization": f"Bearer {newer.group(0)}"}
    assert httpx.get(f"{controlbot.api_url}/api/bots", headers=new_headers).status_code == 200

    mark = chat.mark()
    chat.send("/token revoke")
    chat.wait("revoked", after=mark)
    resp = httpx.get(f"{controlbot.api_url}/api/bots", headers=new_headers)
    assert resp.status_code == 401
    assert error_of(resp)["code"] == "UNAUTHORIZED"


def test_token_refused_to_a_stranger(
    fake_telegram: FakeTelegram, controlbot: ControlbotProcess, stranger_id: int
) -> None:
    stranger = fake_telegram.user(stranger_id, "Mallory")
    msg = stranger.send(controlbot.token, "/token")
    reply = fake_telegram.wait_for_sync(controlbot.token, stranger_id, str(stranger_id), timeout=20)
    assert reply.message_id > msg.message_id
    assert not any(TOKEN_RE.search(m.text or "") for m in fake_telegram.sent(controlbot.token, stranger_id))


def test_unknown_foreign_and_invalid_names_are_404(
    make_api_user: Callable[[], ApiUser], unique_name: Callable[[str], str]
) -> None:
    alice, bob = make_api_user(), make_api_user()
    name = unique_name("private")
    assert alice.deploy(name).status_code == 201
    for method, path in [
        ("GET", f"/api/bots/{name}"),
        ("GET", f"/api/bots/{name}/logs"),
        ("POST", f"/api/bots/{name}/stop"),
        ("DELETE", f"/api/bots/{name}"),
        ("GET", "/api/bots/no-such-bot"),
        ("GET", "/api/bots/Invalid_Name"),
        ("POST", "/api/bots/-x/restart"),
    ]:
        resp = bob.http.request(method, path)
        assert resp.status_code == 404, (method, path, resp.text)
        assert error_of(resp)["code"] == "NOT_FOUND"
    assert alice.http.get(f"/api/bots/{name}").json()["state"] == "running"
    assert bob.http.get("/api/bots").json()["bots"] == []


def test_duplicate_name_is_409(api_user: ApiUser, unique_name: Callable[[str], str]) -> None:
    name = unique_name("dup")
    assert api_user.deploy(name).status_code == 201
    resp = api_user.deploy(name)
    assert resp.status_code == 409
    assert (error_of(resp)["code"], error_of(resp)["field"]) == ("ALREADY_EXISTS", "name")


@pytest.mark.parametrize(
    ("data", "field", "code"),
    [
        ({"name": "Not Valid"}, "name", "INVALID_NAME"),
        ({"name": "okname", "env": ["9LIVES=x"]}, "env", "INVALID_ENV"),
        ({"name": "okname", "git_url": "file:///etc/passwd"}, "git_url", "GIT_REFUSED"),
        ({"name": "okname", "git_url": "ext::sh -c id"}, "git_url", "GIT_REFUSED"),
    ],
)
def test_invalid_input_is_422_naming_the_field(
    api_user: ApiUser, data: dict[str, object], field: str, code: str
) -> None:
    files = None if "git_url" in data else {"file": ("bot.py", TICKER, "text/x-python")}
    resp = api_user.http.post("/api/bots", data=data, files=files)
    assert resp.status_code == 422, resp.text
    assert (error_of(resp)["field"], error_of(resp)["code"]) == (field, code)


def test_binary_file_is_422_from_the_runner(api_user: ApiUser) -> None:
    files = {"file": ("bot.py", b"\x00\x01binary", "application/octet-stream")}
    resp = api_user.http.post("/api/bots", data={"name": "binbot"}, files=files)
    assert resp.status_code == 422
    assert (error_of(resp)["code"], error_of(resp)["field"]) == ("INVALID_SOURCE", "file")
    assert api_user.http.get("/api/bots").json()["quota"]["used"] == 0


def test_quota_exceeded_is_403(api_user: ApiUser, unique_name: Callable[[str], str]) -> None:
    for _ in range(3):
        assert api_user.deploy(unique_name("q")).status_code == 201
    resp = api_user.deploy(unique_name("q"))
    assert resp.status_code == 403
    err = error_of(resp)
    assert err["code"] == "QUOTA_EXCEEDED"
    assert "maximum 3 bots per user" in err["message"]


def test_healthz_with_the_runner_up(api_user: ApiUser) -> None:
    resp = httpx.get(f"{api_user.url}/healthz")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ok" and body["redis"] is True and body["runner"]["docker_ok"] is True


def test_503_while_the_runner_is_stopped(
    fake_telegram: FakeTelegram, base_image: str, test_session_id: str, tmp_path: Path
) -> None:
    with private_stack(fake_telegram, base_image, test_session_id, tmp_path, API_ENABLED="true") as stack:
        user = stack.user(870_101)
        assert user.http.get("/api/bots").status_code == 200
        assert httpx.get(f"{stack.api_url}/healthz").status_code == 200
        stack.runner.stop()
        resp = user.http.get("/api/bots")
        deadline_polls = 0
        while resp.status_code == 200 and deadline_polls < 100:  # until the heartbeat is stale
            deadline_polls += 1
            time.sleep(0.1)
            resp = user.http.get("/api/bots")
        assert resp.status_code == 503, resp.text
        assert error_of(resp)["code"] == "RUNNER_UNAVAILABLE"
        assert user.deploy("while-down").status_code == 503
        health = httpx.get(f"{stack.api_url}/healthz")
        assert (health.status_code, health.json()["status"]) == (503, "unavailable")
        # Nothing was queued for later: a runner that comes back finds no command.
        stack.runner.start()
        assert user.http.get("/api/bots").json()["bots"] == []


def test_git_credentials_are_never_echoed(api_user: ApiUser, unique_name: Callable[[str], str]) -> None:
    # Port 9 on loopback: nothing listens, so the clone fails at once and nothing leaves the host.
    data = {"name": unique_name("cred"), "git_url": "https://user:s3cr3t-t0ken@127.0.0.1:9/none.git"}
    resp = api_user.http.post("/api/bots", data=data)
    assert resp.status_code == 422, resp.text
    assert error_of(resp)["code"] in ("GIT_FAILED", "GIT_REFUSED")
    assert "s3cr3t" not in resp.text
    assert api_user.http.get("/api/bots").json()["quota"]["used"] == 0
