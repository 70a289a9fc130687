"""Resource use of bots: one container at a time, or all running bots in one sweep."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import docker.errors

from protocol.errors import DockerUnavailable
from runner.backend import names
from runner.backend.base import ResourceUsage
from runner.backend.docker.engine import Engine

log = logging.getLogger(__name__)

# A non-one-shot stats call blocks a thread for 1-2 s (dockerd waits for a second sample), so
# a sweep without one-shot runs this many at a time.
SWEEP_CONCURRENCY = 4
ONE_SHOT_API = (1, 41)  # one_shot=true: dockerd answers at once, without the second sample


def _memory(s: dict[str, Any]) -> int:
    mem = s.get("memory_stats", {})
    return max(int(mem.get("usage", 0)) - int(mem.get("stats", {}).get("cache", 0)), 0)


def _cpu_totals(s: dict[str, Any]) -> tuple[int, int, int]:
    """(container cpu ns, system cpu ns, cpus) of one sample."""
    cpu = s.get("cpu_stats", {})
    ncpu = cpu.get("online_cpus") or len(cpu.get("cpu_usage", {}).get("percpu_usage") or [1])
    return int(cpu.get("cpu_usage", {}).get("total_usage", 0)), int(cpu.get("system_cpu_usage", 0)), ncpu


def _percent(now: tuple[int, int, int], before: tuple[int, int, int]) -> float:
    cpu_delta, sys_delta = now[0] - before[0], now[1] - before[1]
    pct = (cpu_delta / sys_delta) * now[2] * 100.0 if sys_delta > 0 and cpu_delta > 0 else 0.0
    return round(pct, 2)


def usage_of(s: dict[str, Any]) -> ResourceUsage:
    """A two-sample stats answer (precpu_stats filled in) as usage."""
    pre = {"cpu_stats": s.get("precpu_stats", {})}
    return ResourceUsage(memory_bytes=_memory(s), cpu_percent=_percent(_cpu_totals(s), _cpu_totals(pre)))


class Stats(Engine):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._last_sample: dict[str, tuple[int, int, int]] = {}  # container -> cpu totals
        self._one_shot: bool | None = None  # None until the engine's API version is known

    async def stats(self, owner: int, name: str) -> ResourceUsage | None:
        def run() -> ResourceUsage | None:
            try:
                s = self.client.api.stats(names.container_name(owner, name), stream=False)
            except docker.errors.NotFound:
                return None
            return usage_of(s)

        return await self._call(run)

    def _supports_one_shot(self) -> bool:
        raw = str(self.client.version().get("ApiVersion", "0.0"))
        major, _, minor = raw.partition(".")
        return (int(major), int(minor or 0)) >= ONE_SHOT_API

    async def stats_many(self, bots: list[tuple[int, str]]) -> dict[tuple[int, str], ResourceUsage]:
        """With one-shot stats, each bot costs one quick call, and CPU is measured between this
        sweep and the last (a bot new to the sweep gets one full two-sample call). Without it,
        a bounded number of two-sample calls run at once."""
        if self._one_shot is None:
            self._one_shot = await self._call(self._supports_one_shot)
        slots = asyncio.Semaphore(SWEEP_CONCURRENCY)
        out: dict[tuple[int, str], ResourceUsage] = {}
        seen: set[str] = set()

        async def one(owner: int, name: str) -> None:
            cname = names.container_name(owner, name)
            seen.add(cname)
            before = self._last_sample.get(cname)
            if self._one_shot and before is not None:
                s = await self._call(self._sample, cname, True)
            else:
                async with slots:
                    s = await self._call(self._sample, cname, False)
            if s is None or not s.get("cpu_stats", {}).get("system_cpu_usage"):
                self._last_sample.pop(cname, None)  # not running: its next run starts afresh
                return
            totals = _cpu_totals(s)
            self._last_sample[cname] = totals
            if before is not None and self._one_shot:
                out[(owner, name)] = ResourceUsage(_memory(s), _percent(totals, before))
            else:
                out[(owner, name)] = usage_of(s)

        results = await asyncio.gather(*(one(o, n) for o, n in bots), return_exceptions=True)
        for r in results:
            if isinstance(r, DockerUnavailable):
                raise r
        for gone in set(self._last_sample) - seen:
            del self._last_sample[gone]
        return out

    def _sample(self, cname: str, one_shot: bool) -> dict[str, Any] | None:
        try:
            kwargs: dict[str, Any] = {"stream": False}
            if one_shot:
                kwargs["one_shot"] = True
            return dict(self.client.api.stats(cname, **kwargs))
        except docker.errors.NotFound:
            return None
