"""The swarm backend's pure parts: the service spec (the sandbox), code configs, task reading."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runner.backend.base import ContainerSpec
from runner.backend.swarm import ClusterError, SwarmBackend
from runner.backend.swarm import spec as sp
from runner.backend.swarm import tasks as tk
from runner.backend.swarm.delivery import constraint_holds


def bot_spec(files: dict[str, bytes]) -> ContainerSpec:
    return ContainerSpec(
        owner=42,
        name="echo",
        image="img:1",
        command=["python", "bot.py"],
        env={"A": "1"},
        files=files,
        request_id="r1",
        memory_bytes=256 << 20,
        cpu=0.5,
        pids=128,
    )


def test_the_sandbox_is_in_the_raw_spec() -> None:
    spec = bot_spec({"bot.py": b"print(1)"})
    config = sp.config_for(spec)
    assert config is not None and config.name.startswith("botrunner-42-echo-") and config.path == "bot.py"
    body = sp.service_spec(
        spec,
        instance="i",
        image="img:1",
        config=config,
        network="host",
        constraints=sp.pinned(["node.labels.botrunner==true"], "n1"),
        restart_max=3,
        replicas=1,
    )
    assert body["Name"] == "botrunner-42-echo"
    tt = body["TaskTemplate"]
    cs = tt["ContainerSpec"]
    assert cs["User"] == "65534:65534" and cs["ReadOnly"] and cs["CapabilityDrop"] == ["ALL"] and cs["Init"]
    assert cs["Labels"]["botrunner.bot"] == "echo" and cs["Labels"]["botrunner.request"] == "r1"
    assert body["Labels"]["botrunner.kind"] == "service"
    assert cs["Configs"][0]["File"]["Name"] == "/app/bot.py"
    assert tt["Resources"]["Limits"] == {"NanoCPUs": 500_000_000, "MemoryBytes": 256 << 20, "Pids": 128}
    assert tt["RestartPolicy"]["Condition"] == "on-failure" and tt["RestartPolicy"]["MaxAttempts"] == 3
    assert tt["LogDriver"]["Name"] == "json-file" and "max-size" in tt["LogDriver"]["Options"]
    assert tt["Placement"]["Constraints"] == ["node.labels.botrunner==true", "node.id==n1"]
    assert body["UpdateConfig"]["Order"] == "stop-first"
    assert body["Mode"] == {"Replicated": {"Replicas": 1}}


def test_trees_and_big_files_need_an_image() -> None:
    assert sp.config_for(bot_spec({"a.py": b"1", "b.py": b"2"})) is None
    assert sp.config_for(bot_spec({"bot.py": b"x" * (sp.CONFIG_MAX_BYTES + 1)})) is None
    assert sp.config_for(bot_spec({"bot.py": b"x" * sp.CONFIG_MAX_BYTES})) is not None


def test_constraints_against_a_node() -> None:
    node = {"ID": "n1", "Spec": {"Role": "worker", "Labels": {"botrunner": "true"}}, "Description": {}}
    assert constraint_holds("node.labels.botrunner==true", node)
    assert not constraint_holds("node.role==manager", node)
    assert constraint_holds("node.role != manager", node)
    assert constraint_holds("engine.labels.x==y", node)  # unknown: Swarm decides


def task(tid: str, state: str, created: str, code: int | None = None) -> dict[str, object]:
    status: dict[str, object] = {"State": state, "Timestamp": created}
    if code is not None:
        status["ContainerStatus"] = {"ContainerID": f"c{tid}", "ExitCode": code}
    labels = {"botrunner.owner": "42", "botrunner.bot": "echo", "botrunner.request": "r1"}
    return {
        "ID": tid,
        "ServiceID": "s1",
        "CreatedAt": created,
        "Status": status,
        "Spec": {"ContainerSpec": {"Labels": labels}},
    }


SERVICE = {
    "ID": "s1",
    "UpdatedAt": "2026-01-01T00:00:00Z",
    "Spec": {"Labels": {"botrunner.request": "r1"}, "Mode": {"Replicated": {"Replicas": 1}}},
}


def test_a_crash_loop_read_from_tasks() -> None:
    tasks = [task(str(i), "failed", f"2026-01-01T00:00:0{i + 1}Z", 1) for i in range(4)]
    info = tk.service_info(SERVICE, tasks, restart_max=3)
    assert info.id == "s1.r1" and info.restart_count == 3 and info.exit_code == 1
    assert not info.running and not info.restarting and info.status == "exited"
    info = tk.service_info(SERVICE, tasks[:2], restart_max=3)
    assert info.restarting and info.status == "restarting"


def test_a_stopped_service_keeps_its_end() -> None:
    stopped = {**SERVICE, "Spec": {**SERVICE["Spec"], "Mode": {"Replicated": {"Replicas": 0}}}}  # type: ignore[dict-item]
    info = tk.service_info(stopped, [], restart_max=3)
    assert info.status == "exited" and info.exit_code == 143 and not info.restarting
    assert not info.never_started  # no start time, but a /start starts it: nothing half made


def test_the_tracker_reports_each_start_and_death_once() -> None:
    tracker = tk.TaskTracker()
    assert tracker.update([]) == []  # primes
    running = task("a", "running", "2026-01-01T00:00:01Z")
    [(start, tid)] = tracker.update([running])
    assert start.action == "start" and start.container_id == "s1.r1" and tid == "a"
    assert tracker.mark_started("a")
    assert tracker.mark_dead("a")  # the engine's die event came first
    assert tracker.update([task("a", "failed", "2026-01-01T00:00:01Z", 1)]) == []
    assert not tracker.mark_started("a")  # never a start after its death
    [(died, _)] = tracker.update([task("b", "failed", "2026-01-01T00:00:02Z", 2)])
    assert died.action == "die" and died.exit_code == 2


def test_the_first_listing_reports_what_changed_since_the_watchers_moment() -> None:
    """A new leader watches from a moment; a task that died (or started) after it, before the
    first listing, is an event, not primed away. Earlier ones are primed, as before."""
    since = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC).timestamp()
    tracker = tk.TaskTracker(since)
    before = task("a", "failed", "2026-01-01T00:00:04Z", 1)  # caught up from state, or reconcile's
    after = task("b", "failed", "2026-01-01T00:00:06Z", 2)
    again = task("c", "running", "2026-01-01T00:00:07Z")  # the policy's replacement
    reported = tracker.update([before, after, again])
    assert [(ev.action, tid, ev.exit_code) for ev, tid in reported] == [("die", "b", 2), ("start", "c", None)]
    assert tracker.update([before, after, again]) == []
    assert tk.TaskTracker().update([before, after, again]) == []  # no moment: all primed


def test_eras_are_told_apart_by_force_update() -> None:
    old = task("a", "failed", "2026-01-01T00:00:01Z", 1)
    new = task("b", "running", "2026-01-01T00:00:00Z")  # an older timestamp does not matter
    new["Spec"]["ForceUpdate"] = 1  # type: ignore[index]
    service = {**SERVICE, "Spec": {**SERVICE["Spec"], "TaskTemplate": {"ForceUpdate": 1}}}  # type: ignore[dict-item]
    info = tk.service_info(service, [old, new], restart_max=3)
    assert info.running and info.restart_count == 0


class _Client:
    def __init__(self, swarm: dict[str, object]) -> None:
        self.swarm = swarm

    def info(self) -> dict[str, object]:
        return {"Swarm": self.swarm}


def cluster(swarm: dict[str, object], registry: str | None = None) -> SwarmBackend:
    return SwarmBackend(
        instance="i",
        network_mode="host",
        restart_max=3,
        registry=registry,
        client_factory=lambda: _Client(swarm),  # type: ignore[arg-type,return-value]
    )


def test_the_runner_refuses_a_swarm_it_cannot_serve() -> None:
    manager = {"LocalNodeState": "active", "ControlAvailable": True}
    assert cluster({**manager, "Nodes": 1}).check_cluster() == 1
    with pytest.raises(ClusterError, match="RUNNER_REGISTRY is not set"):
        cluster({**manager, "Nodes": 3}).check_cluster()
    assert cluster({**manager, "Nodes": 3}, registry="127.0.0.1:5000").check_cluster() == 3
    with pytest.raises(ClusterError, match="swarm manager"):
        cluster({"LocalNodeState": "inactive"}).check_cluster()


def test_the_docker_default_network_becomes_the_swarm_overlay() -> None:
    backend = SwarmBackend(instance="i", network_mode="botrunner-bots", restart_max=3)
    assert backend.network_mode == "botrunner-bots-swarm"
