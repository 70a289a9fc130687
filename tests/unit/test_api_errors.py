"""The API's error mapping and auth, against a fake runner: each status of issue 5's table."""

from __future__ import annotations

import pytest

from controlbot.api.errors import STATUS_BY_CODE
from protocol.errors import BotrunnerError, ErrorCode
from tests.fixtures.api_app import BOT_TOKEN, PY, STRANGER, Api, api, error_of

pytestmark = pytest.mark.unit
__all__ = ["api"]  # the fixture


def test_every_error_code_has_a_status() -> None:
    assert set(STATUS_BY_CODE) == set(ErrorCode)
    assert STATUS_BY_CODE[ErrorCode.QUOTA_EXCEEDED] == 403
    assert STATUS_BY_CODE[ErrorCode.ALREADY_EXISTS] == 409
    assert STATUS_BY_CODE[ErrorCode.BUILD_FAILED] == 422
    assert STATUS_BY_CODE[ErrorCode.RUNNER_UNAVAILABLE] == 503
    assert STATUS_BY_CODE[ErrorCode.UNAUTHORIZED] == 401


async def test_missing_token_is_401(api: Api) -> None:
    resp = await api.client.get("/api/bots")
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == "Bearer"
    assert error_of(resp)["code"] == "UNAUTHORIZED"
    assert "/token" in error_of(resp)["message"]


@pytest.mark.parametrize("token", ["nonsense", "brt_" + "A" * 43, "Basic abc"])
async def test_wrong_token_is_401(api: Api, token: str) -> None:
    resp = await api.client.get("/api/bots", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401
    assert error_of(resp)["code"] == "UNAUTHORIZED"


async def test_revoked_token_is_401(api: Api) -> None:
    assert (await api.client.get("/api/bots", headers=api.auth())).status_code == 200
    api.redis.data.clear()
    resp = await api.client.get("/api/bots", headers=api.auth())
    assert resp.status_code == 401
    assert "revoked" in error_of(resp)["message"]


async def test_token_of_a_user_no_longer_allowed_is_403(api: Api) -> None:
    resp = await api.client.get("/api/bots", headers=api.auth(api.redis.mint(STRANGER)))
    assert resp.status_code == 403
    assert error_of(resp)["code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    "path", ["/api/bots/Bad_Name", "/api/bots/x", "/api/bots/-lead/logs", "/api/bots/%20"]
)
async def test_invalid_name_in_path_is_404(api: Api, path: str) -> None:
    resp = await api.client.get(path, headers=api.auth())
    assert resp.status_code == 404
    assert error_of(resp)["code"] == "NOT_FOUND"


async def test_unknown_or_foreign_bot_is_404(api: Api) -> None:
    assert (await api.deploy("mine")).status_code == 201
    resp = await api.client.get("/api/bots/mine", headers=api.auth(api.admin_token))
    assert resp.status_code == 404  # the admin's own namespace has no "mine"
    resp = await api.client.post("/api/bots/ghost/stop", headers=api.auth())
    assert resp.status_code == 404
    assert error_of(resp) == {**error_of(resp), "code": "NOT_FOUND", "field": "name"}


async def test_duplicate_name_is_409(api: Api) -> None:
    assert (await api.deploy("echo")).status_code == 201
    resp = await api.deploy("echo")
    assert resp.status_code == 409
    assert error_of(resp)["code"] == "ALREADY_EXISTS"


async def test_quota_exceeded_is_403(api: Api) -> None:
    for n in range(3):
        assert (await api.deploy(f"bot-{n}")).status_code == 201
    resp = await api.deploy("bot-3")
    assert resp.status_code == 403
    err = error_of(resp)
    assert err["code"] == "QUOTA_EXCEEDED"
    assert "maximum 3 bots per user" in err["message"]


@pytest.mark.parametrize(
    ("data", "field", "code"),
    [
        ({"name": "Bad Name"}, "name", "INVALID_NAME"),
        ({"name": "ok-name", "env": "1BAD=x"}, "env", "INVALID_ENV"),
        ({"name": "ok-name", "env": "NOEQUALS"}, "env", "INVALID_ENV"),
        ({"name": "ok-name", "env": f"TOKEN={BOT_TOKEN}"}, "env", "INVALID_ENV"),
        ({"name": "ok-name", "git_url": "https://example.org/r.git"}, "file", "INVALID_INPUT"),
        ({"name": "ok-name", "branch": "-evil"}, "branch", "GIT_REFUSED"),
        ({"name": "ok-name", "branch": "main"}, "branch", "INVALID_INPUT"),
    ],
)
async def test_invalid_deploy_input_is_422_naming_the_field(
    api: Api, data: dict[str, str], field: str, code: str
) -> None:
    resp = await api.deploy(**data)
    assert resp.status_code == 422, resp.text
    err = error_of(resp)
    assert (err["field"], err["code"]) == (field, code)
    assert BOT_TOKEN not in resp.text
    assert api.runner.bots == {}


@pytest.mark.parametrize(
    ("git_url", "branch"),
    [
        ("file:///etc", None),
        ("ext::sh -c touch% /tmp/pwned", None),
        ("ssh://git@example.org/r.git", None),
        ("/srv/repo", None),
        ("-uhttps://example.org/r.git", None),
        ("https://", None),
        ("https://user:secret@[::1/r.git", None),
    ],
)
async def test_refused_git_urls_never_reach_the_runner(api: Api, git_url: str, branch: str | None) -> None:
    resp = await api.client.post("/api/bots", data={"name": "g-bot", "git_url": git_url}, headers=api.auth())
    assert resp.status_code == 422, resp.text
    err = error_of(resp)
    assert (err["code"], err["field"]) == ("GIT_REFUSED", "git_url")
    assert "secret" not in resp.text
    assert api.runner.commands == []


async def test_no_source_is_422(api: Api) -> None:
    resp = await api.client.post("/api/bots", data={"name": "nosrc"}, headers=api.auth())
    assert resp.status_code == 422
    assert error_of(resp)["field"] == "file"


@pytest.mark.parametrize(("filename", "content"), [("bot.txt", PY), ("bot.py", b"")])
async def test_bad_upload_is_422(api: Api, filename: str, content: bytes) -> None:
    files = {"file": (filename, content, "application/octet-stream")}
    resp = await api.client.post("/api/bots", data={"name": "up"}, files=files, headers=api.auth())
    assert resp.status_code == 422
    assert (error_of(resp)["code"], error_of(resp)["field"]) == ("INVALID_SOURCE", "file")


async def test_build_failed_is_422_with_the_log_tail(api: Api) -> None:
    data = {"name": "gitbot", "git_url": "git://127.0.0.1/broken.git"}
    resp = await api.client.post("/api/bots", data=data, headers=api.auth())
    assert resp.status_code == 422
    err = error_of(resp)
    assert err["code"] == "BUILD_FAILED"
    assert "No matching dist" in err["detail"]


async def test_runner_unavailable_is_503(api: Api) -> None:
    api.runner.up = False
    resp = await api.client.get("/api/bots", headers=api.auth())
    assert resp.status_code == 503
    assert error_of(resp)["code"] == "RUNNER_UNAVAILABLE"
    assert resp.headers["retry-after"]
    health = await api.client.get("/healthz")
    assert health.status_code == 503
    assert health.json() == {"status": "unavailable", "redis": True, "runner": None}


async def test_redis_unavailable_is_503(api: Api) -> None:
    api.redis.down = True
    resp = await api.client.get("/api/bots", headers=api.auth())
    assert resp.status_code == 503
    assert error_of(resp)["code"] == "STORE_UNAVAILABLE"  # what failed is Redis, not the runner
    assert (await api.client.get("/healthz")).json()["redis"] is False


@pytest.mark.parametrize(
    ("code", "status"),
    [(ErrorCode.TIMEOUT, 503), (ErrorCode.DOCKER_UNAVAILABLE, 503)],
)
async def test_runner_errors_map_through_the_one_table(api: Api, code: ErrorCode, status: int) -> None:
    api.runner.fail_next = BotrunnerError("boom", code=code)
    resp = await api.client.get("/api/bots", headers=api.auth())
    assert resp.status_code == status
    assert error_of(resp)["code"] == code.value


async def test_query_validation_is_422_naming_the_field(api: Api) -> None:
    await api.deploy("logsy")
    resp = await api.client.get("/api/bots/logsy/logs?tail=0", headers=api.auth())
    assert (resp.status_code, error_of(resp)["field"]) == (422, "tail")
    resp = await api.client.get("/api/bots/logsy/logs?since=yesterday", headers=api.auth())
    assert (resp.status_code, error_of(resp)["field"]) == (422, "since")


async def test_unknown_path_and_method(api: Api) -> None:
    resp = await api.client.get("/api/nothing", headers=api.auth())
    assert (resp.status_code, error_of(resp)["code"]) == (404, "NOT_FOUND")
    resp = await api.client.patch("/api/bots", headers=api.auth())
    assert resp.status_code == 405
    assert "GET" in resp.headers["allow"]
    assert error_of(resp)["code"] == "METHOD_NOT_ALLOWED"


async def test_malformed_json_body_is_422(api: Api) -> None:
    await api.deploy("envy")
    headers = {**api.auth(), "Content-Type": "application/json"}
    resp = await api.client.put("/api/bots/envy/env", content=b"{not json", headers=headers)
    assert resp.status_code == 422
    resp = await api.client.put("/api/bots/envy/env", json=["A=1"], headers=api.auth())
    assert resp.status_code == 422
    assert error_of(resp)["field"] == "body"


async def test_unknown_query_parameter_is_422_naming_it(api: Api) -> None:
    resp = await api.client.get("/api/bots?everyone=1", headers=api.auth())
    assert resp.status_code == 422
    assert (error_of(resp)["code"], error_of(resp)["field"]) == ("INVALID_INPUT", "everyone")
    await api.deploy("logsy")
    resp = await api.client.get("/api/bots/logsy/logs?tial=5", headers=api.auth())
    assert (resp.status_code, error_of(resp)["field"]) == (422, "tial")
    assert (await api.client.get("/api/bots/logsy/logs?tail=5", headers=api.auth())).status_code == 200


@pytest.mark.parametrize(
    ("field", "code"), [("entrypoint", "GIT_REFUSED"), ("branch", "GIT_REFUSED"), ("env", "INVALID_ENV")]
)
async def test_an_empty_form_field_is_422_not_absent(api: Api, field: str, code: str) -> None:
    resp = await api.deploy("empty", **{field: ""})
    assert resp.status_code == 422, resp.text
    assert (error_of(resp)["field"], error_of(resp)["code"]) == (field, code)


@pytest.mark.parametrize(
    ("field", "code"), [("branch", "GIT_REFUSED"), ("commit", "GIT_REFUSED"), ("env", "INVALID_ENV")]
)
async def test_an_empty_form_field_of_an_update_is_422_not_absent(api: Api, field: str, code: str) -> None:
    await api.deploy("empty-up")
    resp = await api.client.put("/api/bots/empty-up", data={field: ""}, headers=api.auth())
    assert resp.status_code == 422, resp.text
    assert (error_of(resp)["field"], error_of(resp)["code"]) == (field, code)
    assert [c.op for c in api.runner.commands] == ["start"]  # the update never reached the runner


@pytest.mark.parametrize(
    ("method", "data", "field"),
    [
        ("POST", {"git_url": "https://example.org/r.git"}, "file"),
        ("POST", {"branch": "dev"}, "branch"),
        ("POST", {"entrypoint": "main.py"}, "entrypoint"),
        ("PUT", {"branch": "dev"}, "file"),
        ("PUT", {"commit": "abcd123"}, "file"),
    ],
)
async def test_a_file_with_git_fields_is_422_naming_the_field(
    api: Api, method: str, data: dict[str, str], field: str
) -> None:
    await api.deploy("mixed")
    files = {"file": ("bot.py", PY, "text/x-python")}
    url, data = ("/api/bots", {"name": "mixed2", **data}) if method == "POST" else ("/api/bots/mixed", data)
    resp = await api.client.request(method, url, data=data, files=files, headers=api.auth())
    assert (resp.status_code, error_of(resp)["code"], error_of(resp)["field"]) == (
        422,
        "INVALID_INPUT",
        field,
    )
    assert len(api.runner.commands) == 1  # only the first deploy


async def test_405_allows_every_method_of_the_path(api: Api) -> None:
    resp = await api.client.patch("/api/bots/some-bot", headers=api.auth())
    assert resp.status_code == 405
    assert resp.headers["allow"] == "DELETE, GET, PUT"
