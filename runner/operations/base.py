"""What every operation stands on: the bot's record, its status, and making its container match."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property

from redis.asyncio import Redis

from protocol import keys
from protocol.errors import InvalidSource, NotFound
from protocol.models import BotStatus, Command, Desired, Limits, SourceKind
from protocol.rules import validate_name
from runner.backend import Backend, ContainerSpec
from runner.events import EventBus, EventWatcher
from runner.healthgate import HealthGate
from runner.releases import ReleaseStore, previous
from runner.secrets import Secrets
from runner.settings import Settings
from runner.sources import Prepared, ProgressFn, Sources, resolve_spec, unpack_files
from runner.state import BotRecord, StateStore
from runner.status import build_status

log = logging.getLogger(__name__)


@dataclass(eq=False)
class OperationsBase:
    settings: Settings
    redis: Redis
    store: StateStore
    backend: Backend
    bus: EventBus
    watcher: EventWatcher
    sources: Sources
    # Opens sealed env values and git URLs (#10); without a key file, a throwaway key pair.
    secrets: Secrets = field(default_factory=Secrets.ephemeral)
    gate: HealthGate | None = field(init=False, default=None)  # set by the runner once its locks exist

    @cached_property
    def limits(self) -> Limits:
        s = self.settings
        return Limits(memory_bytes=s.memory_limit_bytes, cpu=s.bot_cpu_limit, pids=s.bot_pids_limit)

    @cached_property
    def releases(self) -> ReleaseStore:
        s = self.settings
        return ReleaseStore(self.redis, keep=s.runner_keep_releases, keep_log_lines=s.runner_keep_log_lines)

    async def _record(self, cmd: Command) -> BotRecord:
        name = validate_name(cmd.name)
        rec = await self.store.get(cmd.owner, name)
        if rec is None:
            raise NotFound(name)
        return rec

    async def bot_status(self, rec: BotRecord) -> BotStatus:
        info = await self.backend.inspect(rec.owner, rec.name)
        usage = await self.store.usage(rec.owner, rec.name)
        status = build_status(rec, info, usage, self.limits, self.secrets)
        releases, current = await self.releases.load(rec.owner, rec.name)
        before = previous(releases, current)
        status.release, status.previous_release = current, before.number if before else None
        status.checking = self.gate is not None and await self.gate.open(rec.owner, rec.name)
        return status

    def _spec(self, rec: BotRecord, files: dict[str, bytes]) -> ContainerSpec:
        return ContainerSpec(
            owner=rec.owner,
            name=rec.name,
            image=rec.image,
            # A bot built from its own Dockerfile runs the image's CMD, its code in the image.
            command=None if rec.own_image else ["python", rec.entrypoint],
            app_volume=not rec.own_image,
            env=self.secrets.open_env(rec.env),  # plain only on the way into the container
            files=files,
            request_id=rec.request_id,
            memory_bytes=self.limits.memory_bytes,
            cpu=self.limits.cpu,
            pids=self.limits.pids,
            node=rec.node,
        )

    async def deploy(self, rec: BotRecord, files: dict[str, bytes] | None = None) -> None:
        """Make the bot's container match its record: create it when needed, start it if desired."""
        if files is None:
            blob = await self.store.source(rec.owner, rec.name)
            if blob is None:
                raise InvalidSource("the bot's code is lost; update it with a new file")
            files = unpack_files(blob)
        info = await self.backend.deploy(self._spec(rec, files), start=rec.desired is Desired.RUNNING)
        if rec.container_id != info.id or (info.node and rec.node != info.node):
            rec.container_id = info.id
            rec.node = info.node or rec.node  # swarm: where its /data lives, kept for a redeploy
            await self.store.save(rec)

    async def _ensure_running(self, rec: BotRecord) -> None:
        info = await self.backend.inspect(rec.owner, rec.name)
        if info is None or info.request_id != rec.request_id or info.never_started:
            await self.deploy(rec)
        elif not info.running and not info.restarting:
            await self.backend.set_restart_policy(rec.owner, rec.name, restart=True)  # a stop cleared it
            await self.backend.start(rec.owner, rec.name)

    async def _stop_current(self, rec: BotRecord) -> None:
        info = await self.backend.inspect(rec.owner, rec.name)
        if info is not None:
            await self.watcher.expect_stop(info.id)
            if info.running or info.restarting:
                await self.backend.stop(rec.owner, rec.name, self.settings.runner_stop_timeout)

    async def _payload(self, cmd: Command) -> bytes:
        data = await self.redis.get(keys.upload(cmd.request_id))
        if not isinstance(data, bytes):
            raise InvalidSource(
                "the upload expired before the runner read it; send the file again", field="file"
            )
        return data

    async def prepare(self, cmd: Command, progress: ProgressFn, previous: BotRecord | None) -> Prepared:
        """Validate and, where needed, build what the command deploys."""
        spec = resolve_spec(cmd.source, cmd.pull, previous)
        if spec.git_url is not None:  # sealed when it carries credentials
            spec = spec.model_copy(update={"git_url": self.secrets.open_url(spec.git_url)})
        payload = await self._payload(cmd) if spec.kind in (SourceKind.FILE, SourceKind.ZIP) else None
        prefer = (previous.entrypoint,) if previous is not None and previous.entrypoint else ()
        ctx = f"owner={cmd.owner} bot={cmd.name} request={cmd.request_id}"
        return await self.sources.prepare(spec, payload, progress, prefer=prefer, ctx=ctx, admin=cmd.admin)
