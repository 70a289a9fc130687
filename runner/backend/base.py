"""The small interface the runner needs from a container engine.

Docker on one host implements it today (`runner.backend.docker`); Swarm or Kubernetes can stand
beside it without touching the queue or the operations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to create one bot's container."""

    owner: int
    name: str
    image: str
    command: list[str] | None  # None: the image's own CMD/ENTRYPOINT
    env: dict[str, str]
    files: dict[str, bytes]  # relative path inside /app -> content, copied in before start
    request_id: str
    memory_bytes: int
    cpu: float
    pids: int
    labels: dict[str, str] = field(default_factory=dict)
    # False for an image that carries its code (a bot's own Dockerfile): no /app volume, no files,
    # and the image's WORKDIR.
    app_volume: bool = True


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    status: str  # created | running | restarting | paused | exited | dead | removing
    running: bool
    restarting: bool
    exit_code: int | None
    oom_killed: bool
    started_at: float | None
    finished_at: float | None
    restart_count: int
    image: str
    request_id: str | None


@dataclass(frozen=True)
class ResourceUsage:
    memory_bytes: int
    cpu_percent: float


@dataclass(frozen=True)
class DockerEvent:
    action: str  # start | die | oom | destroy | ...
    owner: int
    name: str
    container_id: str
    exit_code: int | None


class Backend(Protocol):
    async def version(self) -> str: ...

    async def prepare(self) -> None:
        """Create what bots need once (their network)."""

    async def deploy(self, spec: ContainerSpec, *, start: bool = True) -> ContainerInfo:
        """Create (or adopt, when it carries spec.request_id) the container, copy files, start."""

    async def inspect(self, owner: int, name: str) -> ContainerInfo | None: ...

    async def start(self, owner: int, name: str) -> None: ...

    async def stop(self, owner: int, name: str, timeout: float) -> None: ...

    async def restart(self, owner: int, name: str, timeout: float) -> None: ...

    async def remove(self, owner: int, name: str, *, volumes: bool) -> None:
        """Remove the container; with volumes, its code and data volumes too. Missing is fine."""

    async def logs(self, owner: int, name: str, tail: int | None, since: float | None) -> str: ...

    async def stats(self, owner: int, name: str) -> ResourceUsage | None: ...

    async def managed(self) -> list[tuple[int, str, ContainerInfo]]:
        """Every container this runner instance manages, by label."""

    def events(self) -> AsyncIterator[DockerEvent]:
        """Container events of this instance, as they happen; reconnects on its own."""
