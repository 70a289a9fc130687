"""Bot events under Swarm: synthesised from task states, sped up by this node's container events.

Engine 20.10 emits no task events, and Swarm replaces a failed task with a new container. So a
poller lists every bot task of this instance in one call per interval and reports the changes,
while this node's `start`, `die` and `oom` container events report them here at once. A task's
start and death are reported once each, by whichever source sees them first, and never a start
after its death. Events carry `tasks.bot_id` as container id, as `inspect` does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import docker.errors

from protocol.errors import DockerUnavailable
from runner.backend import names
from runner.backend.base import DockerEvent
from runner.backend.docker.events import EventFeed, event_time
from runner.backend.swarm.cluster import Cluster
from runner.backend.swarm.tasks import ENDED, TaskTracker, bot_id, state

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 1.0  # one task listing per interval, for every bot of the instance
TASK_SETTLE_S = 3.0  # at most, between the engine's die event and Swarm marking the task ended
SWARM_SERVICE_ID = "com.docker.swarm.service.id"
SWARM_TASK_ID = "com.docker.swarm.task.id"


def local_event(ev: dict[str, Any]) -> tuple[DockerEvent, str] | None:
    """A local container's start/die/oom event as the service's event, with the task id."""
    attrs = ev.get("Actor", {}).get("Attributes", {})
    action = str(ev.get("Action") or ev.get("status", ""))
    if action not in ("start", "die", "oom") or attrs.get(names.LABEL_KIND) != "container":
        return None
    service_id, task_id = attrs.get(SWARM_SERVICE_ID), attrs.get(SWARM_TASK_ID)
    try:
        owner, bot = int(attrs[names.LABEL_OWNER]), attrs[names.LABEL_BOT]
    except (KeyError, ValueError):
        return None
    if not service_id or not task_id:
        return None  # not a swarm task: a docker-backend container of the same instance
    code = attrs.get("exitCode")
    cid = bot_id(str(service_id), attrs.get(names.LABEL_REQUEST))
    ev_out = DockerEvent(action, owner, bot, cid, int(code) if code is not None else None, event_time(ev))
    return ev_out, str(task_id)


Item = tuple[DockerEvent, str]  # the event, and the task it is about


class SwarmEvents(Cluster):
    async def _poll(self, feed: EventFeed[Item], tracker: TaskTracker) -> None:
        """Every bot task of the instance, listed in one call per interval."""
        while True:
            try:
                listing = await self._call(self._all_tasks)
            except DockerUnavailable as e:
                feed.put(e)
                return
            for item in tracker.update(listing):
                feed.put(item)
            await asyncio.sleep(POLL_INTERVAL_S)

    def _task_ended(self, task_id: str) -> None:
        """Wait (briefly) until Swarm has seen the death the engine reported, so that `inspect`
        answers with the task's end (and whether Swarm gave up) rather than with it running."""
        deadline = time.monotonic() + TASK_SETTLE_S
        while time.monotonic() < deadline:
            try:
                if state(self.client.api.inspect_task(task_id)) in ENDED:
                    return
            except docker.errors.NotFound:
                return
            time.sleep(0.05)

    async def events(self, since: float | None = None) -> AsyncIterator[DockerEvent]:
        feed: EventFeed[Item] = EventFeed("swarm event source", self._reset)
        feed.start(self.client, self.instance, local_event, "swarm-pump", since)
        tracker = TaskTracker(since)
        poller = asyncio.create_task(self._poll(feed, tracker), name="swarm-task-poll")
        try:
            while True:
                ev, task_id = await feed.get()
                # Each death once, whoever saw it first.
                if ev.action == "start" and not tracker.mark_started(task_id):
                    continue
                if ev.action == "die":
                    if not tracker.mark_dead(task_id):
                        continue
                    await self._call(self._task_ended, task_id)
                yield ev
        finally:
            poller.cancel()
            feed.close()
