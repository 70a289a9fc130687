"""More than one runner on one Redis: the leader lease, and the check that runners may share.

Every runner consumes commands. The cluster's background work (the event watcher's alerts,
reconcile, stats sampling) runs in one of them only, the holder of keys.LEADER: two watchers of
one engine would send every crash alert twice. A leader that dies stops renewing; another runner
takes the lease within its TTL (RUNNER_CLAIM_IDLE_MS) and starts the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from redis.asyncio import Redis

from protocol import keys
from protocol.aio import cancel_and_wait
from protocol.heartbeats import live_runners
from runner.lease import Lease

log = logging.getLogger(__name__)

Job = Callable[[], Coroutine[Any, Any, None]]


class Leadership:
    """Holds (or waits for) the leader lease; runs `jobs` while it holds it, cancels them when not."""

    def __init__(self, redis: Redis, runner_id: str, ttl_ms: int, jobs: dict[str, Job]) -> None:
        self.lease = Lease(redis, keys.LEADER, ttl_ms, holder=runner_id)
        self.runner_id = runner_id
        self.jobs = jobs
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def leading(self) -> bool:
        return bool(self._tasks)

    async def run(self) -> None:
        try:
            while True:
                try:
                    held = await (self.lease.renew() if self.leading else self.lease.try_acquire())
                except Exception as e:  # Redis away: keep what we have until the lease would lapse
                    log.warning("leader lease check failed: %s", e)
                    held = self.leading
                if held and not self.leading:
                    log.info("runner %s leads: watching events, reconciling, sampling", self.runner_id)
                    self._tasks = [asyncio.create_task(job(), name=name) for name, job in self.jobs.items()]
                elif not held and self.leading:
                    log.warning("runner %s lost the leader lease; its background work stops", self.runner_id)
                    await self._stop()
                await asyncio.sleep(self.lease.ttl_ms / 3000)
        finally:
            await self._stop()
            with contextlib.suppress(Exception):
                await self.lease.release()  # a clean stop hands over at once, not after the TTL

    async def _stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(tasks)  # a job in a Redis call may drop one cancel (protocol/aio.py)


async def peer_conflict(
    redis: Redis, *, runner_id: str, instance: str, backend: str, engine_id: str
) -> str | None:
    """One clear line when this runner must not join the live ones, else None.

    Runners on one Redis share one queue and one state of record, so they must drive one engine:
    a second docker engine would not see the first one's containers, and reconcile would start
    every bot twice.
    """
    for peer in await live_runners(redis):
        if peer.runner_id == runner_id:
            continue
        if peer.instance is not None and peer.instance != instance:
            log.warning(
                "runner %s on this Redis has RUNNER_INSTANCE=%s, this one %s; runners sharing a "
                "Redis should share it",
                peer.runner_id,
                peer.instance,
                instance,
            )
        if backend == "docker" and peer.engine_id and engine_id and peer.engine_id != engine_id:
            return (
                f"runner {runner_id}: refusing to start: runner {peer.runner_id} on this Redis drives "
                f"another Docker engine ({peer.engine_id}, this one is {engine_id}); runners sharing "
                "a Redis must share one engine (or use RUNNER_BACKEND=swarm)"
            )
    return None
