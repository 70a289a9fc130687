"""Each API route against a fake runner: what it sends the runner and what it answers."""

from __future__ import annotations

import json

import pytest

from protocol.models import Op, SourceKind
from tests.fixtures.api_app import ADMIN, PY, USER, Api, api, error_of

pytestmark = pytest.mark.unit
__all__ = ["api"]  # the fixture, re-used


async def test_deploy_answers_201_with_the_running_bot(api: Api) -> None:
    resp = await api.deploy("echo", env=["GREETING=hi there", "EMPTY="])
    assert resp.status_code == 201, resp.text
    bot = resp.json()
    assert (bot["name"], bot["state"], bot["owner"]) == ("echo", "running", USER)
    assert bot["source"]["filename"] == "bot.py"
    assert set(bot["env_masked"]) == {"GREETING", "EMPTY"}
    cmd = api.runner.commands[-1]
    assert (cmd.op, cmd.owner, cmd.actor, cmd.admin) == (Op.START, USER, USER, False)
    assert cmd.env == {"GREETING": "hi there", "EMPTY": ""}
    assert api.runner.payloads[cmd.request_id] == PY


async def test_deploy_from_git_passes_url_branch_and_entrypoint(api: Api) -> None:
    data = {
        "name": "gitty",
        "git_url": "https://example.org/r.git",
        "branch": "dev",
        "entrypoint": "src/bot.py",
    }
    resp = await api.client.post("/api/bots", data=data, headers=api.auth())
    assert resp.status_code == 201, resp.text
    source = api.runner.commands[-1].source
    assert source is not None
    assert (source.kind, source.git_url, source.branch, source.entrypoint) == (
        SourceKind.GIT,
        "https://example.org/r.git",
        "dev",
        "src/bot.py",
    )


async def test_list_carries_the_quota(api: Api) -> None:
    await api.deploy("one")
    await api.deploy("two")
    resp = await api.client.get("/api/bots", headers=api.auth())
    assert resp.status_code == 200
    body = resp.json()
    assert [b["name"] for b in body["bots"]] == ["one", "two"]
    assert body["quota"] == {"used": 2, "limit": 3}


async def test_quota(api: Api) -> None:
    await api.deploy("one")
    resp = await api.client.get("/api/quota", headers=api.auth())
    assert (resp.status_code, resp.json()) == (200, {"used": 1, "limit": 3})
    assert (await api.client.get("/api/quota")).status_code == 401


async def test_only_admins_list_everyone(api: Api) -> None:
    await api.deploy("one")
    resp = await api.client.get("/api/bots?all=true", headers=api.auth())
    assert (resp.status_code, error_of(resp)["code"]) == (403, "FORBIDDEN")
    resp = await api.client.get("/api/bots?all=true", headers=api.auth(api.admin_token))
    assert [b["name"] for b in resp.json()["bots"]] == ["one"]
    assert api.runner.commands[-1].admin is True
    assert api.runner.commands[-1].owner == ADMIN


async def test_status_stop_start_restart(api: Api) -> None:
    await api.deploy("cycle")
    get = await api.client.get("/api/bots/cycle", headers=api.auth())
    assert get.json()["state"] == "running"
    stop = await api.client.post("/api/bots/cycle/stop", headers=api.auth())
    assert (stop.status_code, stop.json()["state"]) == (200, "stopped")
    start = await api.client.post("/api/bots/cycle/start", headers=api.auth())
    assert (start.status_code, start.json()["state"]) == (200, "running")
    restart = await api.client.post("/api/bots/cycle/restart", headers=api.auth())
    assert (restart.status_code, restart.json()["restart_count"]) == (200, 1)


async def test_logs_are_json_lines_or_text(api: Api) -> None:
    await api.deploy("logsy")
    api.runner.bots[(USER, "logsy")].logs += ["line two", 'quote " and \\ slash']
    resp = await api.client.get("/api/bots/logsy/logs?tail=5&since=10m", headers=api.auth())
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/x-ndjson")
    assert float(resp.headers["x-log-time"]) > 0
    lines = [json.loads(line) for line in resp.text.splitlines()]
    assert lines == [{"line": "started logsy"}, {"line": "line two"}, {"line": 'quote " and \\ slash'}]
    cmd = api.runner.commands[-1]
    assert (cmd.op, cmd.tail) == (Op.LOGS, 5)
    assert cmd.since is not None
    text = await api.client.get("/api/bots/logsy/logs", headers={**api.auth(), "Accept": "text/plain"})
    assert text.headers["content-type"].startswith("text/plain")
    assert text.text == 'started logsy\nline two\nquote " and \\ slash\n'


async def test_logs_since_an_rfc3339_time(api: Api) -> None:
    await api.deploy("logsy")
    resp = await api.client.get("/api/bots/logsy/logs?since=2024-05-01T12:00:00Z", headers=api.auth())
    assert resp.status_code == 200
    assert api.runner.commands[-1].since == 1714564800.0
    naive = await api.client.get("/api/bots/logsy/logs?since=2024-05-01T12:00:00", headers=api.auth())
    assert naive.status_code == 422  # the API needs the offset; the CLI adds the local one


async def test_update_with_a_file(api: Api) -> None:
    await api.deploy("upd", env=["KEEP=1"])
    files = {"file": ("v2.py", b"print('v2')\n", "text/x-python")}
    resp = await api.client.put("/api/bots/upd", files=files, headers=api.auth())
    assert resp.status_code == 200, resp.text
    cmd = api.runner.commands[-1]
    assert cmd.op is Op.UPDATE
    assert cmd.source is not None and cmd.source.filename == "v2.py"
    assert cmd.env is None  # no env given: the runner keeps the current one


async def test_update_by_git_pull(api: Api) -> None:
    await api.client.post(
        "/api/bots", data={"name": "gp", "git_url": "git://127.0.0.1/r.git"}, headers=api.auth()
    )
    resp = await api.client.put("/api/bots/gp", data={"commit": "abc1234", "env": "A=1"}, headers=api.auth())
    assert resp.status_code == 200, resp.text
    cmd = api.runner.commands[-1]
    assert cmd.pull is True
    assert cmd.source is not None and (cmd.source.kind, cmd.source.commit) == (SourceKind.GIT, "abc1234")
    assert cmd.env == {"A": "1"}


async def test_pull_on_a_file_bot_is_422(api: Api) -> None:
    await api.deploy("filebot")
    resp = await api.client.put("/api/bots/filebot", data={"branch": "main"}, headers=api.auth())
    assert (resp.status_code, error_of(resp)["code"]) == (422, "INVALID_SOURCE")  # as the real runner


async def test_update_with_file_and_commit_is_422(api: Api) -> None:
    await api.deploy("both")
    files = {"file": ("v2.py", b"print(2)\n", "text/x-python")}
    resp = await api.client.put("/api/bots/both", data={"commit": "abcd"}, files=files, headers=api.auth())
    assert (resp.status_code, error_of(resp)["field"]) == (422, "file")


async def test_env_patch_merges_and_null_unsets(api: Api) -> None:
    await api.deploy("envy", env=["OLD=1", "KEEP=2"])
    resp = await api.client.put("/api/bots/envy/env", json={"NEW": "3", "OLD": None}, headers=api.auth())
    assert resp.status_code == 200, resp.text
    assert set(resp.json()["env_masked"]) == {"KEEP", "NEW"}
    cmd = api.runner.commands[-1]
    assert (cmd.op, cmd.env, cmd.unset) == (Op.SET_ENV, {"NEW": "3"}, ["OLD"])


@pytest.mark.parametrize("patch", [{}, {"1BAD": "x"}, {"A": 5}, {"A": "nul\x00"}])
async def test_bad_env_patch_is_422_on_env(api: Api, patch: dict[str, object]) -> None:
    await api.deploy("envy")
    resp = await api.client.put("/api/bots/envy/env", json=patch, headers=api.auth())
    assert resp.status_code == 422
    assert (error_of(resp)["code"], error_of(resp)["field"]) == ("INVALID_ENV", "env")


async def test_delete_is_204_and_frees_the_slot(api: Api) -> None:
    await api.deploy("gone")
    resp = await api.client.delete("/api/bots/gone", headers=api.auth())
    assert (resp.status_code, resp.content) == (204, b"")
    assert (await api.client.get("/api/bots/gone", headers=api.auth())).status_code == 404
    assert (await api.client.get("/api/bots", headers=api.auth())).json()["quota"]["used"] == 0


async def test_streamed_update_reports_each_step(api: Api) -> None:
    await api.deploy("streamy")
    files = {"file": ("v2.py", b"print(2)\n", "text/x-python")}
    headers = {**api.auth(), "Accept": "application/x-ndjson"}
    resp = await api.client.put("/api/bots/streamy", files=files, headers=headers)
    assert resp.status_code == 200
    events = [json.loads(line) for line in resp.text.splitlines()]
    assert [e["type"] for e in events] == ["progress", "progress", "result"]
    assert [e["stage"] for e in events[:2]] == ["stopping", "starting"]
    assert events[-1]["bot"]["name"] == "streamy"


async def test_streamed_deploy_ends_with_the_error(api: Api) -> None:
    await api.deploy("dup")
    files = {"file": ("bot.py", PY, "text/x-python")}
    headers = {**api.auth(), "Accept": "application/x-ndjson"}
    resp = await api.client.post("/api/bots", data={"name": "dup"}, files=files, headers=headers)
    events = [json.loads(line) for line in resp.text.splitlines()]
    assert events[-1] == {
        "type": "error",
        "status": 409,
        "error": {
            "code": "ALREADY_EXISTS",
            "message": events[-1]["error"]["message"],
            "field": "name",
            "params": {},
            "detail": None,
        },
    }


async def test_healthz(api: Api) -> None:
    resp = await api.client.get("/healthz")
    assert resp.status_code == 200
    body = resp.json()
    assert (body["status"], body["redis"], body["runner"]["docker_ok"]) == ("ok", True, True)
    assert 0 <= body["runner"]["heartbeat_age_seconds"] < 5


async def test_openapi_declares_the_error_body_on_every_api_operation(api: Api) -> None:
    doc = (await api.client.get("/openapi.json")).json()
    assert doc["components"]["schemas"]["ErrorBody"]["properties"]["error"]
    operations = [
        (p, m, op) for p, item in doc["paths"].items() for m, op in item.items() if p.startswith("/api")
    ]
    assert len(operations) >= 17  # every /api operation, whatever its count, is checked below
    for path, method, op in operations:
        for status in ("401", "403", "404", "409", "422", "503"):
            content = op["responses"][status]["content"]["application/json"]["schema"]
            assert content == {"$ref": "#/components/schemas/ErrorBody"}, (path, method, status)
        assert op["security"] == [{"token": []}]
    assert "StreamEvent" in doc["components"]["schemas"]
    create = doc["components"]["schemas"]["Body_create_bot_api_bots_post"]
    assert create["oneOf"] and create["properties"]["file"]["contentMediaType"] == "application/octet-stream"


async def test_logs_since_before_the_epoch_means_everything(api: Api) -> None:
    await api.deploy("old")
    resp = await api.client.get("/api/bots/old/logs?since=0038-08-01T10:05:54-19:48", headers=api.auth())
    assert resp.status_code == 200
    assert api.runner.commands[-1].since is None
