"""The swarm backend's shared state and its plumbing: the cluster, its nodes, raw service calls.

docker-py's `update_service` merges a spec from keyword arguments and drops fields it does not
know (`Limits.Pids`); every create and update here sends the whole raw spec instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import docker
import docker.errors

from runner.backend import names
from runner.backend.docker.engine import Engine
from runner.backend.swarm import tasks as tk

log = logging.getLogger(__name__)

# The swarm's default network for bots; RUNNER_NETWORK_MODE's docker default maps to it.
SWARM_NETWORK = "botrunner-bots-swarm"
DOCKER_DEFAULT_NETWORK = "botrunner-bots"
# Between task listings while a command waits for its task: a listing costs ~5 ms on the manager,
# and a task's states change every few hundred ms, so waits poll briskly.
POLL_S = 0.05
POLL_SLOW_S = 0.25  # after POLL_FAST_FOR_S
POLL_FAST_FOR_S = 10.0
CONVERGE_TIMEOUT_S = 60.0


class ClusterError(Exception):
    """The engine is no swarm manager this runner can work with; the text says why, in one line."""


class Cluster(Engine):
    def __init__(
        self,
        *,
        registry: str | None = None,
        placement: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("network_mode") == DOCKER_DEFAULT_NETWORK:
            kwargs["network_mode"] = SWARM_NETWORK
        super().__init__(**kwargs)
        self.registry = registry.rstrip("/") if registry else None
        self.placement = list(placement or [])
        self._node_id: str | None = None

    # -- the cluster ---------------------------------------------------------------------------
    def local_node(self) -> str:
        if self._node_id is None:
            info = self.client.info().get("Swarm") or {}
            self._node_id = str(info.get("NodeID") or "")
        return self._node_id

    def check_cluster(self) -> int:
        """Raise ClusterError unless this engine is a manager that can place every bot; returns
        the number of nodes."""
        swarm = self.client.info().get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
            raise ClusterError(
                "RUNNER_BACKEND=swarm needs a swarm manager: run `docker swarm init` on this host "
                "(or run the runner on a manager node)"
            )
        nodes = int(swarm.get("Nodes") or 1)
        if nodes > 1 and not self.registry:
            raise ClusterError(
                f"RUNNER_BACKEND=swarm: the swarm has {nodes} nodes but RUNNER_REGISTRY is not set, "
                "so bots' images would exist on this node only; set RUNNER_REGISTRY (see README, "
                "'More than one host')"
            )
        return nodes

    def tune(self) -> None:
        """Keep few old tasks per bot: every listing (the event poll, status) reads them all. Enough
        remain to count a crash loop's restarts. Cluster-wide; raised, never lowered below that."""
        spec = self.client.api.inspect_swarm()
        want = max(self.restart_max + 2, 2)
        orchestration = spec.get("Spec", {}).get("Orchestration") or {}
        if int(orchestration.get("TaskHistoryRetentionLimit") or 0) < want:
            self.client.api.update_swarm(
                version=spec["Version"]["Index"],
                swarm_spec={
                    **spec["Spec"],
                    "Orchestration": {**orchestration, "TaskHistoryRetentionLimit": want},
                },
            )
            log.info("swarm: task history retention set to %d", want)

    # -- services, raw -------------------------------------------------------------------------
    def _service(self, owner: int, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.client.api.inspect_service(names.container_name(owner, name)))
        except docker.errors.NotFound:
            return None

    def _tasks(self, service_id: str) -> list[dict[str, Any]]:
        return list(self.client.api.tasks(filters={"service": service_id}))

    def _all_tasks(self) -> list[dict[str, Any]]:
        """Every task of this instance's bots, in one call (tasks match their service's labels)."""
        flt = {"label": [f"{names.LABEL_INSTANCE}={self.instance}", f"{names.LABEL_KIND}=service"]}
        return list(self.client.api.tasks(filters=flt))

    def _create(self, spec: dict[str, Any]) -> str:
        api = self.client.api
        resp = api._post_json(api._url("/services/create"), data=spec)
        return str(api._result(resp, json=True)["ID"])

    def _update(self, service: dict[str, Any], spec: dict[str, Any]) -> None:
        api = self.client.api
        url = api._url("/services/{0}/update", service["ID"])
        resp = api._post_json(url, data=spec, params={"version": service["Version"]["Index"]})
        api._raise_for_status(resp)

    def _respec(self, service: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> None:
        """Update the service with its own spec changed in place; retries a lost version race."""
        for attempt in range(3):
            spec = dict(service["Spec"])
            change(spec)
            try:
                self._update(service, spec)
                return
            except docker.errors.APIError as e:
                if "out of sequence" not in str(e) or attempt == 2:
                    raise
                service = dict(self.client.api.inspect_service(service["ID"]))

    def _wait(
        self, service_id: str, done: Callable[[list[dict[str, Any]]], bool], timeout: float
    ) -> list[dict[str, Any]]:
        """Poll the service's tasks until done(tasks) or the timeout; returns the last listing."""
        start = time.monotonic()
        while True:
            tasks = self._tasks(service_id)
            waited = time.monotonic() - start
            if done(tasks) or waited > timeout:
                return tasks
            time.sleep(POLL_S if waited < POLL_FAST_FOR_S else POLL_SLOW_S)

    def _local(self, task: dict[str, Any] | None) -> tk.LocalState | None:
        """The task's container on this node, for OOM and exact times; None elsewhere."""
        if task is None or task.get("NodeID") != self.local_node():
            return None
        cid = tk.container_id(task)
        if not cid:
            return None
        try:
            st = self.client.api.inspect_container(cid).get("State", {})
        except docker.errors.NotFound:
            return None
        from runner.backend.docker.containers import parse_ts

        return tk.LocalState(
            oom_killed=bool(st.get("OOMKilled")),
            started_at=parse_ts(st.get("StartedAt")),
            finished_at=parse_ts(st.get("FinishedAt")) if not st.get("Running") else None,
        )
