"""A bot as a Swarm service: deployed with its sandbox, scaled to stop and start, and read back.

Every call that changes a service waits, by polling its tasks, until the change has taken effect
(the new task runs or has ended), as the docker backend's calls return once the container has.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import docker.errors

from runner.backend import names
from runner.backend.base import ContainerInfo, ContainerSpec
from runner.backend.docker.containers import volume_usage
from runner.backend.swarm import spec as sp
from runner.backend.swarm import tasks as tk
from runner.backend.swarm.cluster import CONVERGE_TIMEOUT_S
from runner.backend.swarm.delivery import Delivery

REMOVE_TIMEOUT_S = 20.0


def _pinned_node(service: dict[str, Any]) -> str | None:
    for c in service["Spec"]["TaskTemplate"].get("Placement", {}).get("Constraints") or []:
        if c.startswith("node.id=="):
            return str(c.removeprefix("node.id=="))
    return None


def _settled(service: dict[str, Any]) -> Callable[[list[dict[str, Any]]], bool]:
    """A predicate on a task listing: the newest task of the service's era runs or has ended."""

    def done(tasks: list[dict[str, Any]]) -> bool:
        top = tk.newest(tk.current_era(service, tasks))
        return top is not None and (tk.state(top) == "running" or tk.state(top) in tk.ENDED)

    return done


def _fresh_start(s: dict[str, Any]) -> None:
    """One replica, in a new era (restart count 0): start, restart, a deploy that starts."""
    s["Mode"] = {"Replicated": {"Replicas": 1}}
    tt = s["TaskTemplate"]
    tt["ForceUpdate"] = int(tt.get("ForceUpdate") or 0) + 1


def _unwanted(tasks: list[dict[str, Any]]) -> bool:
    """Swarm wants none of the tasks running any more (the scale-down reached them)."""
    return all(t.get("DesiredState") != "running" for t in tasks)


def _quiet(tasks: list[dict[str, Any]]) -> bool:
    return not any(tk.state(t) == "running" or tk.state(t) in tk.PENDING for t in tasks)


class Services(Delivery):
    def _info(self, service: dict[str, Any], tasks: list[dict[str, Any]] | None = None) -> ContainerInfo:
        tasks = self._tasks(service["ID"]) if tasks is None else tasks
        local = self._local(tk.newest(tk.current_era(service, tasks) or tasks))
        info = tk.service_info(service, tasks, restart_max=self.restart_max, local=local)
        return ContainerInfo(**{**info.__dict__, "node": _pinned_node(service)})

    def _converge(self, service_id: str, *, started: bool) -> dict[str, Any]:
        service = dict(self.client.api.inspect_service(service_id))
        self._wait(service_id, _settled(service) if started else _quiet, CONVERGE_TIMEOUT_S)
        return service

    # -- deploy ------------------------------------------------------------------------------
    async def deploy(self, spec: ContainerSpec, *, start: bool = True) -> ContainerInfo:
        return await self._call(self._deploy, spec, start)

    def _deploy(self, spec: ContainerSpec, start: bool) -> ContainerInfo:
        existing = self._service(spec.owner, spec.name)
        labels = (existing["Spec"].get("Labels") or {}) if existing is not None else {}
        if existing is not None and labels.get(names.LABEL_REQUEST) == spec.request_id:
            # A redelivered command: the service is already ours; just make sure it runs.
            if start and tk.replicas(existing) == 0:
                self._respec(existing, _fresh_start)
            return self._info(self._converge(existing["ID"], started=start))
        image, config = self._deliver(spec)
        node = self._place(spec.node or (_pinned_node(existing) if existing else None))
        body = sp.service_spec(
            spec,
            instance=self.instance,
            image=image,
            config=config,
            network=self.network_mode,
            constraints=sp.pinned(self.placement, node),
            restart_max=self.restart_max,
            replicas=1 if start else 0,
        )
        if existing is None:
            try:
                service_id = self._create(body)
            except docker.errors.APIError as e:
                if e.status_code != 409:
                    raise
                return self._deploy(spec, start)  # a concurrent delivery made it: adopt or update
        else:
            service_id = existing["ID"]
            old = existing["Spec"]["TaskTemplate"]
            grace = old["ContainerSpec"].get("StopGracePeriod")
            if grace:
                body["TaskTemplate"]["ContainerSpec"]["StopGracePeriod"] = grace
            body["TaskTemplate"]["ForceUpdate"] = int(old.get("ForceUpdate") or 0) + 1  # a new era

            def replace(s: dict[str, Any]) -> None:
                s.clear()
                s.update(body)

            self._respec(existing, replace)
        service = self._converge(service_id, started=start)
        # The old task has stopped (stop-first), so the old code's config is free to go.
        self._prune_configs(spec.owner, spec.name, {config.config_id} if config else set())
        return self._info(service)

    # -- reading ----------------------------------------------------------------------------
    async def inspect(self, owner: int, name: str) -> ContainerInfo | None:
        def run() -> ContainerInfo | None:
            service = self._service(owner, name)
            return self._info(service) if service is not None else None

        return await self._call(run)

    async def managed(self) -> list[tuple[int, str, ContainerInfo]]:
        def run() -> list[tuple[int, str, ContainerInfo]]:
            flt = {"label": [f"{names.LABEL_INSTANCE}={self.instance}", f"{names.LABEL_KIND}=service"]}
            services = self.client.api.services(filters=flt)
            by_service: dict[str, list[dict[str, Any]]] = {}
            for t in self._all_tasks():  # one call for every bot's tasks
                by_service.setdefault(str(t.get("ServiceID")), []).append(t)
            out = []
            for s in services:
                bot = tk.bot_of(s)
                if bot is None:
                    continue
                info = tk.service_info(s, by_service.get(s["ID"], []), restart_max=self.restart_max)
                out.append((bot[0], bot[1], ContainerInfo(**{**info.__dict__, "node": _pinned_node(s)})))
            # Configs of replaced code that an earlier deploy could not remove yet.
            used = {
                c["ConfigID"]
                for s in services
                for c in s["Spec"]["TaskTemplate"]["ContainerSpec"].get("Configs") or []
            }
            self._prune_configs(None, None, used)
            return out

        return await self._call(run)

    # -- lifecycle --------------------------------------------------------------------------
    def _required(self, owner: int, name: str) -> dict[str, Any]:
        service = self._service(owner, name)
        if service is None:
            raise docker.errors.NotFound(f"no service {names.container_name(owner, name)}")
        return service

    async def start(self, owner: int, name: str) -> None:
        def run() -> None:
            service = self._required(owner, name)
            if tk.replicas(service) > 0 and self._info(service).running:
                return  # as `docker start` of a running container: nothing to do
            self._respec(service, _fresh_start)  # after a crash loop too: a fresh task
            self._converge(service["ID"], started=True)

        await self._call(run)

    async def stop(self, owner: int, name: str, timeout: float) -> None:
        await self._call(self._stop, owner, name, timeout)

    def _stop(self, owner: int, name: str, timeout: float) -> None:
        """0 replicas. Swarm's agent waits 2 s for gossip before it stops a task with a network
        attachment (host included), so on this node the runner stops the container itself, as
        `docker stop` does, once Swarm no longer wants it running (so that it is no failure)."""
        service = self._service(owner, name)
        if service is None:
            return

        def change(s: dict[str, Any]) -> None:
            s["Mode"] = {"Replicated": {"Replicas": 0}}  # stopped: 0 replicas, the record stays
            s["TaskTemplate"]["ContainerSpec"]["StopGracePeriod"] = int(max(1.0, timeout) * sp.SEC)

        self._respec(service, change)
        unwanted = self._wait(service["ID"], _unwanted, CONVERGE_TIMEOUT_S)
        code: int | None = None
        me = self.local_node()
        for t in unwanted:
            cid = tk.container_id(t)
            if t.get("NodeID") == me and cid and tk.state(t) == "running":
                with contextlib.suppress(docker.errors.NotFound):
                    self.client.api.stop(cid, timeout=int(max(1, timeout)))
                    code = int(self.client.api.inspect_container(cid)["State"].get("ExitCode", 0))
        if code is None:  # elsewhere: Swarm stops it, after its gossip delay
            last = tk.newest(self._wait(service["ID"], _quiet, timeout + 15))
            code = tk.exit_code(last) if last is not None else None
        service = dict(self.client.api.inspect_service(service["ID"]))

        def keep_end(s: dict[str, Any]) -> None:  # labels only: no new task
            s["Labels"] = {
                **(s.get("Labels") or {}),
                tk.LABEL_STOPPED_EXIT: str(code if code is not None else tk.STOPPED_EXIT),
                tk.LABEL_STOPPED_AT: f"{time.time():.3f}",
            }

        self._respec(service, keep_end)

    async def restart(self, owner: int, name: str, timeout: float) -> None:
        """Stop (fast on this node, see `_stop`), then a fresh task."""

        def run() -> None:
            self._required(owner, name)
            self._stop(owner, name, timeout)
            service = self._required(owner, name)
            self._respec(service, _fresh_start)
            self._converge(service["ID"], started=True)

        await self._call(run)

    async def remove(self, owner: int, name: str, *, volumes: bool) -> None:
        def run() -> None:
            with contextlib.suppress(docker.errors.NotFound):
                self.client.api.remove_service(names.container_name(owner, name))
            self._prune_configs(owner, name, set())
            if not volumes:
                return
            # The agent removes the task containers a moment (seconds) later, and the volume is in
            # use until then; on this node the runner removes them at once. Volumes on other nodes
            # stay (docs/backends.md).
            flt = {
                "label": [
                    f"{names.LABEL_INSTANCE}={self.instance}",
                    f"{names.LABEL_OWNER}={owner}",
                    f"{names.LABEL_BOT}={name}",
                    f"{names.LABEL_KIND}=container",
                ]
            }
            deadline = time.monotonic() + REMOVE_TIMEOUT_S
            while time.monotonic() < deadline:
                left = self.client.api.containers(all=True, filters=flt)
                if not left:
                    break
                for c in left:
                    with contextlib.suppress(docker.errors.APIError):
                        self.client.api.remove_container(c["Id"], force=True)
                time.sleep(0.05)
            roles = ("data", "data-prev", "backups")  # /data, what a restore replaced, backups
            for vol in (names.app_volume(owner, name), *(names.bot_volume(owner, name, r) for r in roles)):
                with contextlib.suppress(docker.errors.NotFound):
                    self.client.api.remove_volume(vol, force=True)

        await self._call(run)

    # -- what bots say and hold ---------------------------------------------------------------
    async def logs(self, owner: int, name: str, tail: int | None, since: float | None) -> str:
        def run() -> str:
            kwargs: dict[str, Any] = {"stdout": True, "stderr": True, "tail": tail if tail else "all"}
            if since is not None and since > 0:
                kwargs["since"] = int(since)
            try:
                raw = self.client.api.service_logs(names.container_name(owner, name), **kwargs)
            except docker.errors.NotFound:
                return ""
            data = raw if isinstance(raw, bytes) else b"".join(raw)
            return data.decode("utf-8", "replace")

        return await self._call(run)

    async def volume_usage(self) -> dict[tuple[int, str], int]:
        """This node's volumes only: `docker system df` is per engine (docs/backends.md)."""
        return await self._call(volume_usage, self.client, self.instance)
