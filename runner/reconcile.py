"""Bring Docker in line with the state of record, at start-up and periodically."""

from __future__ import annotations

import asyncio
import logging

from protocol.errors import BotrunnerError
from protocol.models import Desired, Event, EventType
from runner.operations import Operations

log = logging.getLogger(__name__)


async def reconcile(ops: Operations, locks: dict[tuple[int, str], asyncio.Lock], *, full: bool) -> int:
    """Adopt running containers, recreate lost ones and, when full (start-up, Docker back),
    start stopped ones that should run. Never stops or duplicates a running bot. Returns fixes."""
    containers = {(owner, name): info for owner, name, info in await ops.backend.managed()}
    fixed = 0
    for rec in await ops.store.all_records():
        async with locks.setdefault(rec.key, asyncio.Lock()):
            current = await ops.store.get(rec.owner, rec.name)
            if current is None or current.desired is not Desired.RUNNING:
                continue
            info = containers.get(rec.key)
            try:
                if info is None or info.request_id != current.request_id:
                    log.warning("bot %s/%s has no container; recreating it", rec.owner, rec.name)
                    await ops.deploy(current)
                elif full and not info.running and not info.restarting:
                    cap = ops.settings.runner_restart_max
                    if (info.exit_code or 0) != 0 and info.restart_count >= cap:
                        continue  # a crash loop that hit its cap stays down until a user acts
                    log.warning("bot %s/%s should run; starting it", rec.owner, rec.name)
                    await ops.backend.start(rec.owner, rec.name)
                else:
                    if current.container_id != info.id:
                        current.container_id = info.id  # adopt
                        await ops.store.save(current)
                    continue
            except BotrunnerError as e:
                log.error("could not bring back %s/%s: %s", rec.owner, rec.name, e)
                await ops.bus.publish(Event(type=EventType.MISSING, owner=rec.owner, name=rec.name))
                continue
            fixed += 1
            await ops.bus.publish(Event(type=EventType.RECOVERED, owner=rec.owner, name=rec.name))
    return fixed
