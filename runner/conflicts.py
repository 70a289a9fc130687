"""Telegram's 409 Conflict in a running bot's output: its owner hears of it once an hour.

Docker has no call that reads many containers' logs at once, so this reads each running bot's
output since the last look, every RUNNER_CONFLICT_INTERVAL (default a minute): one short logs call
per running bot per interval, off the command path.
"""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis

from protocol import keys
from protocol.errors import DockerUnavailable
from protocol.models import Desired, Event, EventType
from runner.backend import Backend
from runner.events import EventBus
from runner.state import StateStore

log = logging.getLogger(__name__)

CONFLICT_TEXT = "terminated by other getUpdates request"
NOTICE_EVERY_S = 3600
MAX_LINES = 2000


class ConflictWatch:
    def __init__(
        self, redis: Redis, store: StateStore, backend: Backend, bus: EventBus, interval: float
    ) -> None:
        self.redis, self.store, self.backend, self.bus = redis, store, backend, bus
        self.interval = interval
        self._since: dict[tuple[int, str], float] = {}

    async def check(self) -> None:
        now = time.time()
        for rec in await self.store.all_records():
            if rec.desired is not Desired.RUNNING:
                continue
            since = self._since.get(rec.key, now - self.interval)
            try:
                text = await self.backend.logs(rec.owner, rec.name, MAX_LINES, since)
            except DockerUnavailable:
                return
            self._since[rec.key] = now
            if CONFLICT_TEXT not in text:
                continue
            first = await self.redis.set(
                keys.conflict_notice(rec.owner, rec.name), 1, nx=True, ex=NOTICE_EVERY_S
            )
            if first:
                log.info("409 Conflict in the output of owner=%s bot=%s", rec.owner, rec.name)
                await self.bus.publish(Event(type=EventType.CONFLICT, owner=rec.owner, name=rec.name))
