"""Settings: comma-separated ids, placeholder tokens refused, and one clear line per bad variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from controlbot.settings import Settings, describe_errors

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456:TEST-control-settings"


def make(**env: str) -> Settings:
    return Settings(_env_file=None, **env)  # type: ignore[arg-type]


def errors_of(**env: str) -> list[str]:
    with pytest.raises(ValidationError) as info:
        make(**env)
    return describe_errors(info.value)


def test_comma_separated_ids() -> None:
    s = make(bot_token=TOKEN, admin_ids="111,222", allowed_user_ids="333, 444")
    assert s.admin_ids == [111, 222] and s.allowed_user_ids == [333, 444]
    assert s.is_admin(111) and not s.is_admin(333)
    assert s.is_allowed(333) and s.is_allowed(222) and not s.is_allowed(555)


def test_defaults() -> None:
    s = make(bot_token=TOKEN, admin_ids="1")
    assert s.redis_url == "redis://localhost:6379/0"
    assert s.telegram_api_url == "https://api.telegram.org"
    assert s.api_enabled and s.api_host == "127.0.0.1" and s.api_port == 8080
    assert s.max_upload_bytes == 20 * 1024 * 1024
    assert s.allowed_user_ids == []


def test_single_admin_and_url_slash() -> None:
    s = make(bot_token=TOKEN, admin_ids="7", telegram_api_url="http://127.0.0.1:9/")
    assert s.admin_ids == [7] and s.telegram_api_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    "token", ["", "changeme", "<your token>", "YOUR_BOT_TOKEN", "notatoken", "123:ab cd"]
)
def test_placeholder_or_malformed_token_is_refused(token: str) -> None:
    (line,) = errors_of(bot_token=token, admin_ids="1")
    assert line.startswith("BOT_TOKEN is invalid")


def test_missing_required() -> None:
    lines = errors_of()
    assert "BOT_TOKEN is required but not set" in lines
    assert "ADMIN_IDS is required but not set" in lines


@pytest.mark.parametrize("ids", ["abc", "1,x", "", "-5"])
def test_bad_admin_ids(ids: str) -> None:
    (line,) = errors_of(bot_token=TOKEN, admin_ids=ids)
    assert line.startswith("ADMIN_IDS is invalid")


def test_bad_port() -> None:
    (line,) = errors_of(bot_token=TOKEN, admin_ids="1", api_port="99999")
    assert line.startswith("API_PORT is invalid")


def test_process_exits_2_with_one_line_naming_the_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k.upper() not in {"BOT_TOKEN", "ADMIN_IDS"}}
    env.update(BOT_TOKEN="changeme", ADMIN_IDS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "controlbot"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "BOT_TOKEN" in lines[0] and "Traceback" not in proc.stderr
