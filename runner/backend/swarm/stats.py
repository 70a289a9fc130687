"""Resource use of bots whose task runs on this node: `docker stats` is per engine.

A bot on another node is left out of the sweep, as a stopped one is (docs/backends.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

import docker.errors

from protocol.errors import DockerUnavailable
from runner.backend import names
from runner.backend.base import ResourceUsage
from runner.backend.docker.stats import SWEEP_CONCURRENCY, usage_of
from runner.backend.swarm.cluster import Cluster


class SwarmStats(Cluster):
    def _local_containers(
        self, owner: int | None = None, name: str | None = None
    ) -> dict[tuple[int, str], str]:
        """(owner, bot) -> the id of its running task container on this node, in one call."""
        flt = [f"{names.LABEL_INSTANCE}={self.instance}", f"{names.LABEL_KIND}=container"]
        if owner is not None and name is not None:
            flt += [f"{names.LABEL_OWNER}={owner}", f"{names.LABEL_BOT}={name}"]
        out: dict[tuple[int, str], str] = {}
        for c in self.client.api.containers(filters={"label": flt, "status": "running"}):
            labels = c.get("Labels") or {}
            try:
                out[(int(labels[names.LABEL_OWNER]), labels[names.LABEL_BOT])] = str(c["Id"])
            except (KeyError, ValueError):
                continue
        return out

    def _sample(self, container_id: str) -> ResourceUsage | None:
        try:
            s: dict[str, Any] = dict(self.client.api.stats(container_id, stream=False))
        except docker.errors.NotFound:
            return None
        if not s.get("cpu_stats", {}).get("system_cpu_usage"):
            return None  # it stopped between the listing and the sample
        return usage_of(s)

    async def stats(self, owner: int, name: str) -> ResourceUsage | None:
        found = await self._call(self._local_containers, owner, name)
        cid = found.get((owner, name))
        return await self._call(self._sample, cid) if cid else None

    async def stats_many(self, bots: list[tuple[int, str]]) -> dict[tuple[int, str], ResourceUsage]:
        local = await self._call(self._local_containers)
        slots = asyncio.Semaphore(SWEEP_CONCURRENCY)
        out: dict[tuple[int, str], ResourceUsage] = {}

        async def one(key: tuple[int, str], cid: str) -> None:
            async with slots:
                usage = await self._call(self._sample, cid)
            if usage is not None:
                out[key] = usage

        results = await asyncio.gather(
            *(one(k, local[k]) for k in bots if k in local), return_exceptions=True
        )
        for r in results:
            if isinstance(r, DockerUnavailable):
                raise r
        return out
