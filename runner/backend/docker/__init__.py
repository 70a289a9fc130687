"""The Docker backend, one module per responsibility:

- `containers`: a bot's container, created with its sandbox flags, and its lifecycle; volumes
- `images`: builds, the image cache's sizes, removal, leftovers of failed builds
- `jobs`: one-shot job containers
- `events`, `stats`: what the engine reports about bots
- `engine`: the shared client, and where outages become DockerUnavailable
"""

from __future__ import annotations

from runner.backend.docker.containers import Containers
from runner.backend.docker.events import Events
from runner.backend.docker.images import Images
from runner.backend.docker.jobs import Jobs
from runner.backend.docker.stats import Stats
from runner.backend.egress import EgressGuard


class DockerBackend(Containers, Images, Jobs, Events, Stats):
    """Docker on one host. Construct with instance, network_mode, restart_max (see `Engine`)."""

    # Keeps the bots' bridge to public addresses (runner.backend.egress); None: no guard.
    egress_guard: EgressGuard | None = None

    @property
    def egress(self) -> str:
        return self.egress_guard.describe if self.egress_guard is not None else "open"

    async def guard_egress(self) -> None:
        if self.egress_guard is not None:
            await self.egress_guard.ensure()

    async def engine_id(self) -> str:
        data = await self._call(lambda: self.client.info())
        return str(data.get("ID", ""))

    async def node_count(self) -> int:
        return 1


__all__ = ["DockerBackend"]
