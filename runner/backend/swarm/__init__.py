"""The Swarm backend: one bot is one service, driven through the Docker SDK on a manager node.

- `spec`: a bot's raw service spec (the sandbox) and its code config; pure
- `tasks`: tasks read as ContainerInfo and as events; pure
- `cluster`: the cluster, its nodes, raw service calls and waits
- `delivery`: code as configs or images, the registry, which node a bot's /data lives on
- `services`: a bot's lifecycle; `events`, `stats`: what the cluster reports about bots
Images are built, and one-shot jobs run, on this node's engine with the docker backend's code.
"""

from __future__ import annotations

import logging

from runner.backend import names
from runner.backend.docker.jobs import Jobs
from runner.backend.egress import EgressGuard
from runner.backend.swarm.cluster import SWARM_NETWORK, ClusterError
from runner.backend.swarm.events import SwarmEvents
from runner.backend.swarm.services import Services
from runner.backend.swarm.stats import SwarmStats

log = logging.getLogger(__name__)
_BUILTIN_NETWORKS = {"host", "bridge", "none", "default"}


class SwarmBackend(Services, SwarmEvents, SwarmStats, Jobs):
    """Swarm from a manager node. Construct with instance, network_mode, restart_max, and
    optionally registry (RUNNER_REGISTRY) and placement (RUNNER_PLACEMENT)."""

    egress_guard: EgressGuard | None = None

    @property
    def _overlay(self) -> bool:
        return self.network_mode not in _BUILTIN_NETWORKS

    @property
    def egress(self) -> str:
        if self._overlay:  # the guard's rules are for bridges; overlay traffic leaves elsewhere
            return "open (swarm overlay: no egress guard; use host firewalls)"
        return self.egress_guard.describe if self.egress_guard is not None else "open"

    async def guard_egress(self) -> None:
        if self.egress_guard is not None and not self._overlay:
            await self.egress_guard.ensure()

    async def engine_id(self) -> str:
        """The cluster's id: every manager of one swarm answers the same."""
        data = await self._call(lambda: self.client.info())
        return str((data.get("Swarm") or {}).get("Cluster", {}).get("ID") or data.get("ID", ""))

    async def set_restart_policy(self, owner: int, name: str, *, restart: bool) -> None:
        """Nothing to do: a stopped service has 0 replicas, which no daemon restart brings back."""

    async def node_count(self) -> int:
        def run() -> int:
            nodes = self.client.api.nodes()
            return sum(1 for n in nodes if n.get("Status", {}).get("State") == "ready")

        return await self._call(run)

    async def prepare(self) -> None:
        await self._call(self._prepare)

    def _prepare(self) -> None:
        self.check_cluster()
        self.tune()
        if self.network_mode in _BUILTIN_NETWORKS:
            return
        if self.client.networks.list(names=[self.network_mode]):
            return
        # An overlay cannot turn off traffic between its containers (no icc switch): swarm bots
        # on it can reach each other (docs/backends.md).
        self.client.networks.create(
            self.network_mode,
            driver="overlay",
            attachable=True,
            labels={names.LABEL_MANAGED: "true", names.LABEL_INSTANCE: self.instance},
        )
        log.info("created overlay network %s for bots", self.network_mode)
        log.warning(
            "swarm: bots on the overlay %s can reach each other, and no egress guard applies to it "
            "(docs/backends.md)",
            self.network_mode,
        )


__all__ = ["SWARM_NETWORK", "ClusterError", "SwarmBackend"]
