"""Bring the engine in line with the state of record, both ways, at start-up and periodically.

- A bot that should run and has no container (or an old one) gets its container back.
- A bot that should run and is down is started, on a full pass (runner start, Docker back): a
  periodic pass leaves it, since a bot that exited 0 on its own or hit its crash cap stays down
  until a user acts.
- A bot that should not run and runs is stopped, on every pass: dockerd restarts every on-failure
  container that last exited non-zero, a user's SIGTERM'd bot (143) included, so a stopped bot's
  container also loses its restart policy (full pass; user stops clear it themselves).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from protocol.aio import cancel_and_wait
from protocol.errors import BotrunnerError
from protocol.models import Desired, Event, EventType
from runner.backend import ContainerInfo
from runner.operations import Operations
from runner.state import BotRecord

log = logging.getLogger(__name__)

BotLock = Callable[[int, str], AbstractAsyncContextManager[None]]


async def reconcile(ops: Operations, lock: BotLock, *, full: bool) -> int:
    """Returns how many bots it fixed. Takes each bot's lock (a lease shared by every runner), so
    it never races a command on that bot."""
    containers = {(owner, name): info for owner, name, info in await ops.backend.managed()}
    fixed = 0
    for rec in await ops.store.all_records():
        async with lock(rec.owner, rec.name):
            current = await ops.store.get(rec.owner, rec.name)
            if current is None:
                continue
            info = containers.get(rec.key)
            if not _agrees(current, info):  # listed before the lock: a command may have changed it since
                info = await ops.backend.inspect(rec.owner, rec.name)
            try:
                if current.desired is Desired.RUNNING:
                    changed = await _should_run(ops, current, info, full=full)
                else:
                    changed = await _should_not_run(ops, current, info, full=full)
            except BotrunnerError as e:
                log.error("could not bring back %s/%s: %s", rec.owner, rec.name, e)
                await ops.bus.publish(Event(type=EventType.MISSING, owner=rec.owner, name=rec.name))
                continue
            if changed:
                fixed += 1
                if current.desired is Desired.RUNNING:
                    await ops.bus.publish(Event(type=EventType.RECOVERED, owner=rec.owner, name=rec.name))
    return fixed


async def reconcile_pass(ops: Operations, lock: BotLock, *, full: bool) -> int:
    """reconcile() in a task of its own: a bot's lease lost mid-pass (another runner took it)
    cancels the task holding it, and that must end this pass only, never the caller's loop."""
    one_pass = asyncio.create_task(reconcile(ops, lock, full=full), name="reconcile pass")
    try:
        await asyncio.wait([one_pass])
    finally:
        await cancel_and_wait([one_pass])  # the caller itself was stopped: the pass stops too
    if one_pass.cancelled():
        log.warning("reconciliation pass cut short: another runner took a bot's lock")
        return 0
    return one_pass.result()


def _agrees(rec: BotRecord, info: ContainerInfo | None) -> bool:
    """Whether the listing shows the bot as its record wants it (then there is nothing to look at
    again; else, under the bot's lock, its container is inspected afresh before anything is done)."""
    if rec.desired is not Desired.RUNNING:
        return info is None or not (info.running or info.restarting)
    return (
        info is not None
        and info.request_id == rec.request_id
        and info.id == rec.container_id
        and (info.running or info.restarting)
    )


async def _should_run(ops: Operations, rec: BotRecord, info: ContainerInfo | None, *, full: bool) -> bool:
    if info is None or info.request_id != rec.request_id:
        log.warning("bot %s/%s has no container; recreating it", rec.owner, rec.name)
        await ops.deploy(rec)
        return True
    if full and info.never_started:  # maybe half made: a deploy makes it again
        log.warning("bot %s/%s has a container that never started; making it again", rec.owner, rec.name)
        await ops.deploy(rec)
        return True
    if full and not info.running and not info.restarting:
        cap = ops.settings.runner_restart_max
        if (info.exit_code or 0) != 0 and info.restart_count >= cap:
            return False  # a crash loop that hit its cap stays down until a user acts
        log.warning("bot %s/%s should run; starting it", rec.owner, rec.name)
        await ops.backend.set_restart_policy(rec.owner, rec.name, restart=True)
        await ops.backend.start(rec.owner, rec.name)
        return True
    if rec.container_id != info.id:
        rec.container_id = info.id  # adopt
        await ops.store.save(rec)
    return False


async def _should_not_run(ops: Operations, rec: BotRecord, info: ContainerInfo | None, *, full: bool) -> bool:
    if info is None:
        return False
    if full:  # containers stopped before stops cleared the policy; cheap, and idempotent
        await ops.backend.set_restart_policy(rec.owner, rec.name, restart=False)
    if not info.running and not info.restarting:
        return False
    log.warning("bot %s/%s should be stopped and runs; stopping it", rec.owner, rec.name)
    await ops.backend.set_restart_policy(rec.owner, rec.name, restart=False)
    await ops.watcher.expect_stop(info.id)
    await ops.backend.stop(rec.owner, rec.name, ops.settings.runner_stop_timeout)
    return True
