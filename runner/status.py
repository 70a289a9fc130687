"""Derive a bot's visible state from its record, its container and the latest resource sample.

Env values show masked (protocol.sealing.mask) and as the runner's HMACs, never plain."""

from __future__ import annotations

import time

from protocol.models import BotState, BotStatus, Desired, Limits
from protocol.sealing import mask
from runner.backend import ContainerInfo, ResourceUsage
from runner.secrets import Secrets
from runner.state import BotRecord

__all__ = ["build_status", "derive_state", "mask"]


def derive_state(rec: BotRecord, info: ContainerInfo | None) -> BotState:
    if info is None:
        return BotState.MISSING if rec.desired is Desired.RUNNING else BotState.STOPPED
    if info.restarting:
        return BotState.RESTARTING
    if info.running:
        return BotState.RUNNING
    if info.status == "created":
        return BotState.STARTING if rec.desired is Desired.RUNNING else BotState.STOPPED
    if rec.desired is Desired.STOPPED:
        return BotState.STOPPED
    if info.oom_killed or (info.exit_code or 0) != 0:
        return BotState.CRASHED
    return BotState.STOPPED


def build_status(
    rec: BotRecord,
    info: ContainerInfo | None,
    usage: ResourceUsage | None,
    limits: Limits,
    secrets: Secrets,
) -> BotStatus:
    env = secrets.open_env(rec.env)
    state = derive_state(rec, info)
    running = state is BotState.RUNNING
    started = info.started_at if info else None
    return BotStatus(
        owner=rec.owner,
        name=rec.name,
        state=state,
        desired=rec.desired,
        uptime_seconds=round(time.time() - started, 1) if running and started else None,
        started_at=started,
        finished_at=info.finished_at if info else None,
        exit_code=info.exit_code if info else None,
        oom_killed=info.oom_killed if info else False,
        restart_count=info.restart_count if info else 0,
        memory_bytes=usage.memory_bytes if usage and running else None,
        cpu_percent=usage.cpu_percent if usage and running else None,
        limits=limits,
        source=rec.source,
        env_masked={k: mask(v) for k, v in sorted(env.items())},
        env_hmac={k: secrets.hmac(v) for k, v in sorted(env.items())},
        usernames=dict(sorted(rec.usernames.items())),
        backup_daily=rec.backup_daily,
        container_id=info.id[:12] if info else None,
        image=rec.image,
        created_at=rec.created_at,
        updated_at=rec.updated_at,
    )
