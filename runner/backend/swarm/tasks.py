"""Swarm tasks read as the runner's ContainerInfo, and their state changes read as events. Pure.

A bot is one service; what it is doing is its newest task. Swarm replaces a failed task with a new
one (a new container), so a service's restart count is the number of tasks of its current "era",
less one. Every change that starts a bot afresh (deploy, start, restart) raises the service's
`ForceUpdate`, which each task carries in its own spec: that counter, not a timestamp (Swarm
touches `UpdatedAt` on its own, e.g. when it allocates the service), tells the eras apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runner.backend import names
from runner.backend.base import ContainerInfo, DockerEvent
from runner.backend.docker.containers import parse_ts

# Swarm deletes the tasks of a service scaled to 0, so `stop` keeps their end on the service.
LABEL_STOPPED_EXIT = "botrunner.stopped-exit"
LABEL_STOPPED_AT = "botrunner.stopped-at"

# Task states before its container runs, and after it ended (swarmkit's TaskState).
PENDING = {"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting"}
STOPPED_EXIT = 143  # SIGTERM, through init
ENDED = {"complete", "shutdown", "failed", "rejected", "orphaned", "remove"}


@dataclass(frozen=True)
class LocalState:
    """What the local engine knows of a task's container (when the task ran on this node)."""

    oom_killed: bool
    started_at: float | None
    finished_at: float | None


def bot_id(service_id: str, request_id: str | None) -> str:
    """What the runner knows as the bot's container id: the service's id with the request that
    last deployed it. Stable across the tasks Swarm replaces (as a container's id is across its
    restarts), new with each deploy (as the docker backend makes a new container)."""
    return f"{service_id}.{request_id or ''}"


def task_request(task: dict[str, Any]) -> str | None:
    labels = task.get("Spec", {}).get("ContainerSpec", {}).get("Labels") or {}
    value = labels.get(names.LABEL_REQUEST)
    return str(value) if value is not None else None


def bot_of(task_or_service: dict[str, Any]) -> tuple[int, str] | None:
    spec = task_or_service.get("Spec", {})
    labels = spec.get("Labels") or spec.get("ContainerSpec", {}).get("Labels") or {}
    try:
        return int(labels[names.LABEL_OWNER]), str(labels[names.LABEL_BOT])
    except (KeyError, ValueError):
        return None


def state(task: dict[str, Any]) -> str:
    return str(task.get("Status", {}).get("State", ""))


def container_id(task: dict[str, Any]) -> str:
    return str(task.get("Status", {}).get("ContainerStatus", {}).get("ContainerID") or "")


def exit_code(task: dict[str, Any]) -> int | None:
    status = task.get("Status", {})
    if state(task) not in ENDED:
        return None
    code = status.get("ContainerStatus", {}).get("ExitCode")
    return int(code) if code is not None else None


def task_oom(task: dict[str, Any]) -> bool:
    """The task status tells of an OOM kill only in its error text, when it does at all."""
    return "oom" in str(task.get("Status", {}).get("Err") or "").lower()


def era_of(task_or_service: dict[str, Any]) -> int:
    spec = task_or_service.get("Spec", {})
    template = spec.get("TaskTemplate", spec)  # a service's spec holds it; a task's spec is it
    return int(template.get("ForceUpdate") or 0)


def current_era(service: dict[str, Any], tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    era = era_of(service)
    return [t for t in tasks if era_of(t) == era]


def newest(tasks: list[dict[str, Any]]) -> dict[str, Any] | None:
    return max(tasks, key=lambda t: (parse_ts(t.get("CreatedAt")) or 0.0, t.get("ID", "")), default=None)


def replicas(service: dict[str, Any]) -> int:
    return int(service.get("Spec", {}).get("Mode", {}).get("Replicated", {}).get("Replicas") or 0)


def service_info(
    service: dict[str, Any], tasks: list[dict[str, Any]], *, restart_max: int, local: LocalState | None = None
) -> ContainerInfo:
    """The service as the runner sees a container (its id: `bot_id`)."""
    spec = service.get("Spec", {})
    era = current_era(service, tasks)
    restart_count = max(len(era) - 1, 0)
    want = replicas(service)
    labels = spec.get("Labels") or {}
    if want == 0 and not any(state(t) == "running" for t in tasks):
        # Stopped: 0 replicas, its tasks deleted by Swarm; their end was kept by `stop`.
        return ContainerInfo(
            id=bot_id(str(service.get("ID", "")), labels.get(names.LABEL_REQUEST)),
            status="exited",
            running=False,
            restarting=False,
            exit_code=int(labels.get(LABEL_STOPPED_EXIT, STOPPED_EXIT)),
            oom_killed=False,
            started_at=None,
            finished_at=float(labels[LABEL_STOPPED_AT]) if LABEL_STOPPED_AT in labels else None,
            restart_count=0,
            image=str(spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Image", "")).split("@")[0],
            request_id=labels.get(names.LABEL_REQUEST),
        )
    top = newest(era or tasks)
    st = state(top) if top is not None else ""
    running = st == "running"
    restarting = want > 0 and (
        top is None or st in PENDING or (st == "failed" and restart_count < restart_max)
    )
    if running:
        status = "running"
    elif restarting:
        status = "restarting"
    else:
        status = "exited" if top is not None else "created"
    stamp = parse_ts(top.get("Status", {}).get("Timestamp")) if top is not None else None
    created = parse_ts(top.get("CreatedAt")) if top is not None else None
    started = local.started_at if local is not None and local.started_at else (stamp if running else created)
    ended = st in ENDED
    finished = (local.finished_at if local is not None and local.finished_at else stamp) if ended else None
    return ContainerInfo(
        id=bot_id(str(service.get("ID", "")), (spec.get("Labels") or {}).get(names.LABEL_REQUEST)),
        status=status,
        running=running,
        restarting=restarting and not running,
        exit_code=exit_code(top) if top is not None and ended else None,
        oom_killed=ended and top is not None and (task_oom(top) or (local is not None and local.oom_killed)),
        started_at=started,
        finished_at=finished,
        restart_count=restart_count,
        image=str(spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Image", "")).split("@")[0],
        request_id=(spec.get("Labels") or {}).get(names.LABEL_REQUEST),
    )


class TaskTracker:
    """Turns successive listings of all tasks into start/die events, each task's once."""

    def __init__(self, since: float | None = None) -> None:
        self.since = since  # the first listing reports the changes from then on (Backend.events)
        self._seen: dict[str, str] = {}  # task id -> the state last seen
        self._died: set[str] = set()  # task ids whose death was reported (by a poll or the engine)
        self._started: set[str] = set()  # task ids whose start was reported
        self._primed = False

    def mark_started(self, task_id: str) -> bool:
        """Record a start; False if this task's start (or death) was reported already. A start
        that comes late (the poll lags the engine) must not follow the task's own death."""
        if task_id in self._started or task_id in self._died:
            return False
        self._started.add(task_id)
        return True

    def mark_dead(self, task_id: str) -> bool:
        """Record a death reported elsewhere (the local engine's die event); False if known."""
        if task_id in self._died:
            return False
        self._died.add(task_id)
        return True

    def update(self, tasks: list[dict[str, Any]]) -> list[tuple[DockerEvent, str]]:
        """Events since the last listing, with their task ids. The first listing only primes,
        but for the tasks that changed state since `since`: what happened before the runner
        watched is the event watcher's catch-up or reconcile's business."""
        out: list[tuple[DockerEvent, str]] = []
        present: dict[str, str] = {}
        for task in sorted(tasks, key=lambda t: parse_ts(t.get("CreatedAt")) or 0.0):
            tid, st, bot = str(task.get("ID", "")), state(task), bot_of(task)
            present[tid] = st
            before = self._seen.get(tid)
            priming = not self._primed and not self._changed_since(task)
            if bot is None or before == st or priming:
                if priming:
                    (self._died if st in ENDED else self._started).add(tid)
                continue
            service_id = bot_id(str(task.get("ServiceID", "")), task_request(task))
            if st == "running" and before != "running":
                out.append((DockerEvent("start", bot[0], bot[1], service_id, None), tid))
            elif st in ENDED and (before == "running" or before in PENDING or before is None):
                if st == "rejected" or tid in self._died:
                    continue
                if task_oom(task):
                    out.append((DockerEvent("oom", bot[0], bot[1], service_id, None), tid))
                out.append((DockerEvent("die", bot[0], bot[1], service_id, exit_code(task)), tid))
        # Forget tasks Swarm no longer lists (task history pruned them); a death the engine
        # reported before Swarm listed the task stays until it is listed and gone.
        self._died = {t for t in self._died if t in present or t not in self._seen}
        self._started = {t for t in self._started if t in present or t not in self._seen}
        self._seen = present
        self._primed = True
        return out

    def _changed_since(self, task: dict[str, Any]) -> bool:
        stamp = parse_ts(task.get("Status", {}).get("Timestamp"))
        return self.since is not None and stamp is not None and stamp >= self.since
