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


class DockerBackend(Containers, Images, Jobs, Events, Stats):
    """Docker on one host. Construct with instance, network_mode, restart_max (see `Engine`)."""

    async def version(self) -> str:
        data = await self._call(lambda: self.client.version())
        return str(data.get("Version", "?"))

    async def engine_id(self) -> str:
        data = await self._call(lambda: self.client.info())
        return str(data.get("ID", ""))


__all__ = ["DockerBackend"]
