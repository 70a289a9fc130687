"""The Docker backend's pure parts: what it reads out of docker's answers."""

from __future__ import annotations

import docker.errors
import pytest

from runner.backend import names
from runner.backend.docker.containers import container_info, on_failure, parse_ts
from runner.backend.docker.engine import retry_while
from runner.backend.docker.events import parse_event
from runner.backend.docker.stats import usage_of

pytestmark = pytest.mark.unit


def test_timestamps_with_nanoseconds_and_the_zero_time() -> None:
    assert parse_ts("0001-01-01T00:00:00Z") is None
    assert parse_ts("2024-05-01T12:00:00.123456789Z") == pytest.approx(1714564800.123456)


def test_an_exited_container_reports_its_exit_code_and_request() -> None:
    info = container_info(
        {
            "Id": "abc",
            "State": {"Status": "exited", "Running": False, "ExitCode": 137, "OOMKilled": True},
            "Config": {"Image": "img", "Labels": {names.LABEL_REQUEST: "r1"}},
            "RestartCount": 2,
        }
    )
    assert (info.exit_code, info.oom_killed, info.restart_count, info.request_id) == (137, True, 2, "r1")
    assert not info.running and info.started_at is None


def test_only_a_created_container_that_never_ran_may_be_half_made() -> None:
    def info(status: str, started: str) -> bool:
        state = {"Status": status, "Running": status == "running", "StartedAt": started}
        return container_info({"Id": "c", "State": state, "Config": {}}).never_started

    assert info("created", "0001-01-01T00:00:00Z")
    assert not info("exited", "2026-01-01T00:00:00Z")  # ran, then stopped: whole
    assert not info("running", "2026-01-01T00:00:00Z")


def test_a_restart_max_of_0_is_no_docker_policy_not_forever() -> None:
    """Docker reads a MaximumRetryCount of 0 as no limit; RUNNER_RESTART_MAX=0 is never (and is
    refused under swarm, runner/settings.py)."""
    assert on_failure(0) == {"Name": "no"}
    assert on_failure(2) == {"Name": "on-failure", "MaximumRetryCount": 2}


def test_only_bot_containers_make_events() -> None:
    attrs = {names.LABEL_KIND: "container", names.LABEL_OWNER: "7", names.LABEL_BOT: "b", "exitCode": "1"}
    ev = parse_event({"Action": "die", "id": "c1", "Actor": {"Attributes": attrs}})
    assert ev is not None and (ev.action, ev.owner, ev.name, ev.exit_code) == ("die", 7, "b", 1)
    job = {**attrs, names.LABEL_KIND: "job"}
    assert parse_event({"Action": "die", "id": "c2", "Actor": {"Attributes": job}}) is None


def test_usage_is_memory_less_cache_and_cpu_over_the_interval() -> None:
    sample = {
        "memory_stats": {"usage": 300, "stats": {"cache": 100}},
        "cpu_stats": {"cpu_usage": {"total_usage": 2_000}, "system_cpu_usage": 20_000, "online_cpus": 2},
        "precpu_stats": {"cpu_usage": {"total_usage": 1_000}, "system_cpu_usage": 10_000},
    }
    usage = usage_of(sample)
    assert usage.memory_bytes == 200 and usage.cpu_percent == 20.0


def test_a_transient_engine_answer_is_tried_again_and_any_other_is_raised() -> None:
    answers: list[Exception | str] = [
        docker.errors.APIError("500: Cannot update container 7d50: cannot update a stopped container"),
        docker.errors.APIError("500: Cannot update container 7d50: runc: container not running"),
        "updated",
    ]

    def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert retry_while(call, "Cannot update container", attempts=5, pause=0) == "updated"
    answers[:] = [docker.errors.APIError("500: no such thing")]
    with pytest.raises(docker.errors.APIError, match="no such thing"):
        retry_while(call, "Cannot update container", attempts=5, pause=0)
    answers[:] = [docker.errors.APIError("500: Cannot update container 7d50: not running")] * 2
    with pytest.raises(docker.errors.APIError):  # attempts=2: the second answer is final
        retry_while(call, "Cannot update container", attempts=2, pause=0)
