"""Backups of /data and webhook removal through the HTTP API and the CLI, against the real runner."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.test_chat_backups import NOTES_BOT, members, targz
from tests.fakes.telegram import FakeTelegram
from tests.fixtures.api_users import ApiUser, api_user  # noqa: F401  (a fixture)

pytestmark = pytest.mark.e2e


def test_backup_and_restore_through_the_api_and_the_cli(
    api_user: ApiUser,  # noqa: F811
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    name = unique_name("apidata")
    assert api_user.deploy(name, NOTES_BOT).status_code == 201
    api_user.wait_log(name, "notes: first notes", timeout=60)

    resp = api_user.http.get(f"/api/bots/{name}/data")
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/gzip"
    assert f'filename="{name}-data-' in resp.headers["content-disposition"]
    assert members(resp.content) == {"notes.txt": b"first notes"}

    archive = tmp_path / "new.tar.gz"
    archive.write_bytes(targz({"notes.txt": b"from the cli"}))
    result = api_user.cli("restore", name, str(archive))
    assert result.returncode == 0, result.stderr
    api_user.wait_log(name, "notes: from the cli", timeout=60)

    out = tmp_path / "back.tar.gz"
    result = api_user.cli("backup", name, "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert members(out.read_bytes()) == {"notes.txt": b"from the cli"}

    # A hostile archive through the API: refused whole, /data untouched.
    evil = targz({"../../etc/x": b"x"})
    resp = api_user.http.put(
        f"/api/bots/{name}/data", content=evil, headers={"Content-Type": "application/gzip"}
    )
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "INVALID_SOURCE"
    assert members(api_user.http.get(f"/api/bots/{name}/data").content) == {"notes.txt": b"from the cli"}


def test_delete_webhook_through_the_api_and_the_cli(
    api_user: ApiUser,  # noqa: F811
    fake_telegram: FakeTelegram,
    unique_name: Callable[[str], str],
) -> None:
    token = fake_telegram.new_token("apihook")
    fake_telegram.set_webhook(token, "https://example.invalid/hook")
    name = unique_name("apihook")
    resp = api_user.deploy(name, NOTES_BOT, env=[f"BOT_TOKEN={token}"])
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert [n["kind"] for n in body["notes"]] == ["webhook_set"]
    assert body["usernames"] == {"BOT_TOKEN": fake_telegram.bot_user(token)["username"]}
    resp = api_user.http.delete(f"/api/bots/{name}/webhook")
    assert resp.status_code == 200 and fake_telegram.webhook(token) == ""
    fake_telegram.set_webhook(token, "https://example.invalid/again")
    result = api_user.cli("delete-webhook", name)
    assert result.returncode == 0 and "webhook removed" in result.stdout
    assert fake_telegram.webhook(token) == ""
    # A token Telegram rejects: 422 TOKEN_INVALID, nothing created.
    resp = api_user.deploy(
        unique_name("x"), NOTES_BOT, env=["T=7999999996:TEST-never-issued-wwwwwwwwwwwwwwwwwww"]
    )
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "TOKEN_INVALID"
