"""Pure pieces of the runner and the protocol: no Redis, no Docker."""

from __future__ import annotations

import time

import pytest

from protocol.errors import ErrorCode, InvalidName
from protocol.models import (
    REPLY_ADAPTER,
    BotState,
    Desired,
    Progress,
    Result,
    SourceInfo,
    SourceKind,
    Stage,
)
from protocol.rules import validate_name
from runner.backend import ContainerInfo
from runner.backend.names import app_volume, container_name, data_volume
from runner.settings import Settings, parse_memory
from runner.sources import pack_files, safe_py_filename, unpack_files
from runner.state import BotRecord
from runner.status import derive_state, mask

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", ["ab", "echo", "my-bot-2", "0x", "a" * 31])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["a", "-ab", "Ab", "a_b", "a b", "a" * 32, "", "ab/cd", "../x"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidName) as e:
        validate_name(name)
    assert e.value.code is ErrorCode.INVALID_NAME


def test_container_names_never_collide_across_owners() -> None:
    # The avtomatika runner's bot_{user}_{bot} collided; digits-then-dash cannot.
    assert container_name(12, "3-x") != container_name(123, "x")
    assert container_name(1, "ab") == "botrunner-1-ab"
    assert len({app_volume(1, "a-data"), data_volume(1, "a"), data_volume(1, "a-app")}) == 3


def test_settings_parse_lists_sizes_and_reject_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_ALLOWED_SCHEMES", "https,git")
    monkeypatch.setenv("BOT_MEMORY_LIMIT", "512m")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.git_allowed_schemes == ["https", "git"]
    assert s.memory_limit_bytes == 512 * 1024 * 1024
    assert s.runner_network_mode == "botrunner-bots" and s.runner_base_image == "python:3.12-slim"
    assert (s.max_bots_per_user, s.bot_cpu_limit, s.bot_pids_limit) == (3, 0.5, 128)
    monkeypatch.setenv("BOT_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="bot_memory_limit"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_a_restart_max_of_0_is_refused_where_it_would_mean_forever(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_RESTART_MAX", "0")
    assert Settings(_env_file=None).runner_restart_max == 0  # type: ignore[call-arg]  # docker: no policy
    monkeypatch.setenv("RUNNER_BACKEND", "swarm")
    with pytest.raises(ValueError, match="RUNNER_RESTART_MAX=0"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_parse_memory() -> None:
    assert parse_memory("256m") == 256 * 1024**2
    assert parse_memory("1g") == 1024**3
    assert parse_memory("100") == 100
    with pytest.raises(ValueError):
        parse_memory("1t")


def test_mask_never_reveals_a_value() -> None:
    token = "123456:TEST-abcdefghijklmnopqrstuvwxyz"
    assert token not in mask(token) and "TEST-abc" not in mask(token)
    assert mask("short") == "••••••"


def _info(**kw: object) -> ContainerInfo:
    base: dict[str, object] = dict(
        id="c1",
        status="running",
        running=True,
        restarting=False,
        exit_code=None,
        oom_killed=False,
        started_at=time.time(),
        finished_at=None,
        restart_count=0,
        image="img",
        request_id="r",
    )
    base.update(kw)
    return ContainerInfo(**base)  # type: ignore[arg-type]


def _rec(desired: Desired = Desired.RUNNING) -> BotRecord:
    return BotRecord(
        owner=1,
        name="ab",
        desired=desired,
        source=SourceInfo(kind=SourceKind.FILE),
        image="i",
        entrypoint="bot.py",
        request_id="r",
    )


def test_derive_state() -> None:
    assert derive_state(_rec(), _info()) is BotState.RUNNING
    assert derive_state(_rec(), _info(running=False, restarting=True)) is BotState.RESTARTING
    assert derive_state(_rec(), _info(status="exited", running=False, exit_code=1)) is BotState.CRASHED
    assert (
        derive_state(_rec(), _info(status="exited", running=False, exit_code=137, oom_killed=True))
        is BotState.CRASHED
    )
    assert (
        derive_state(_rec(Desired.STOPPED), _info(status="exited", running=False, exit_code=143))
        is BotState.STOPPED
    )
    assert derive_state(_rec(), None) is BotState.MISSING
    assert derive_state(_rec(Desired.STOPPED), None) is BotState.STOPPED


def test_replies_round_trip_as_json() -> None:
    p = Progress(request_id="x", stage=Stage.STARTING)
    assert REPLY_ADAPTER.validate_json(p.model_dump_json()) == p
    r = Result(request_id="x", ok=True)
    assert isinstance(REPLY_ADAPTER.validate_json(r.model_dump_json()), Result)


def test_files_pack_round_trip_and_safe_filenames() -> None:
    files = {"main.py": b"print(1)\n", "pkg/mod.py": b"x = 1\n"}
    assert unpack_files(pack_files(files)) == files
    assert safe_py_filename("../../etc/passwd") == "passwd.py"
    assert safe_py_filename("my bot.py") == "my_bot.py"
    assert safe_py_filename(None) == "bot.py"
