"""BOT_DISK_LIMIT: what one bot may hold in /app and /data.

On overlay2 and ext4 volumes Docker has no per-volume quota, so the limit is enforced by
measuring: every stats interval, one engine call gives every volume's size, and a bot over its
limit is stopped (its record says stopped, so nothing brings it back) and its owner is told,
with the limit and the usage. Where the storage supports hard quotas (xfs project quotas), the
operator can add them; the README says so.
"""

from __future__ import annotations

import logging

from protocol.errors import DockerUnavailable
from protocol.models import Desired, Event, EventType
from runner.backend import Backend
from runner.events import EventBus, EventWatcher
from runner.state import StateStore

log = logging.getLogger(__name__)


class DiskWatch:
    def __init__(
        self,
        store: StateStore,
        backend: Backend,
        bus: EventBus,
        watcher: EventWatcher,
        *,
        limit_bytes: int,
        stop_timeout: float,
    ) -> None:
        self.store, self.backend, self.bus, self.watcher = store, backend, bus, watcher
        self.limit_bytes = limit_bytes
        self.stop_timeout = stop_timeout

    async def check(self) -> None:
        try:
            usage = await self.backend.volume_usage()
        except DockerUnavailable:
            return
        for (owner, name), used in usage.items():
            if used <= self.limit_bytes:
                continue
            rec = await self.store.get(owner, name)
            if rec is None or rec.desired is not Desired.RUNNING:
                continue
            log.warning(
                "bot owner=%s bot=%s holds %d bytes, over its disk limit: stopping it", owner, name, used
            )
            rec.desired = Desired.STOPPED
            await self.store.save(rec)
            info = await self.backend.inspect(owner, name)
            if info is not None:
                await self.watcher.expect_stop(info.id)
            await self.backend.stop(owner, name, self.stop_timeout)
            await self.bus.publish(
                Event(
                    type=EventType.DISK_LIMIT_EXCEEDED,
                    owner=owner,
                    name=name,
                    disk_limit_bytes=self.limit_bytes,
                    disk_used_bytes=used,
                )
            )
