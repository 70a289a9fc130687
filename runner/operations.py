"""What each command does. Every operation is idempotent: a redelivered command changes nothing twice."""

from __future__ import annotations

import logging

from redis.asyncio import Redis

from protocol import keys
from protocol.errors import BotrunnerError, ErrorCode, InvalidSource, NotFound
from protocol.models import (
    BotStatus,
    Command,
    Desired,
    Event,
    EventType,
    Limits,
    Note,
    NoteKind,
    Op,
    QuotaInfo,
    Result,
    SourceKind,
    Stage,
    SystemInfo,
)
from protocol.rules import check_env, is_bot_token, validate_name
from runner.backend import Backend, ContainerSpec, ResourceUsage
from runner.events import EventBus, EventWatcher
from runner.settings import Settings
from runner.sources import Prepared, ProgressFn, Sources, pack_files, resolve_spec, unpack_files
from runner.state import BotRecord, StateStore
from runner.status import build_status

log = logging.getLogger(__name__)


def validate_env(env: dict[str, str]) -> dict[str, str]:
    return check_env(env)


class Operations:
    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        store: StateStore,
        backend: Backend,
        bus: EventBus,
        watcher: EventWatcher,
        sources: Sources,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.store = store
        self.backend = backend
        self.bus = bus
        self.watcher = watcher
        self.sources = sources
        self.limits = Limits(
            memory_bytes=settings.memory_limit_bytes, cpu=settings.bot_cpu_limit, pids=settings.bot_pids_limit
        )

    async def handle(self, cmd: Command, progress: ProgressFn) -> Result:
        handler = {
            Op.START: self.start,
            Op.STOP: self.stop,
            Op.RESTART: self.restart,
            Op.UPDATE: self.update,
            Op.DELETE: self.delete,
            Op.STATUS: self.status,
            Op.LOGS: self.logs,
            Op.LIST: self.list,
            Op.SET_ENV: self.set_env,
            Op.SET_QUOTA: self.set_quota,
            Op.SYSTEM: self.system,
        }[cmd.op]
        return await handler(cmd, progress)

    # -- helpers ----------------------------------------------------------------------------
    async def _record(self, cmd: Command) -> BotRecord:
        name = validate_name(cmd.name)
        rec = await self.store.get(cmd.owner, name)
        if rec is None:
            raise NotFound(name)
        return rec

    async def _usage(self, owner: int, name: str) -> ResourceUsage | None:
        raw = await self.redis.get(keys.stats(owner, name))
        if raw is None:
            return None
        mem, _, cpu = (raw.decode() if isinstance(raw, bytes) else raw).partition(" ")
        return ResourceUsage(memory_bytes=int(mem), cpu_percent=float(cpu))

    async def bot_status(self, rec: BotRecord) -> BotStatus:
        info = await self.backend.inspect(rec.owner, rec.name)
        return build_status(rec, info, await self._usage(rec.owner, rec.name), self.limits)

    def _spec(self, rec: BotRecord, files: dict[str, bytes]) -> ContainerSpec:
        return ContainerSpec(
            owner=rec.owner,
            name=rec.name,
            image=rec.image,
            # A bot built from its own Dockerfile runs the image's CMD, its code in the image.
            command=None if rec.own_image else ["python", rec.entrypoint],
            app_volume=not rec.own_image,
            env=rec.env,
            files=files,
            request_id=rec.request_id,
            memory_bytes=self.limits.memory_bytes,
            cpu=self.limits.cpu,
            pids=self.limits.pids,
        )

    async def deploy(self, rec: BotRecord, files: dict[str, bytes] | None = None) -> None:
        """Make the bot's container match its record: create it when needed, start it if desired."""
        if files is None:
            blob = await self.store.source(rec.owner, rec.name)
            if blob is None:
                raise InvalidSource("the bot's code is lost; update it with a new file")
            files = unpack_files(blob)
        info = await self.backend.deploy(self._spec(rec, files), start=rec.desired is Desired.RUNNING)
        if rec.container_id != info.id:
            rec.container_id = info.id
            await self.store.save(rec)

    async def _ensure_running(self, rec: BotRecord) -> None:
        info = await self.backend.inspect(rec.owner, rec.name)
        if info is None or info.request_id != rec.request_id:
            await self.deploy(rec)
        elif not info.running and not info.restarting:
            await self.backend.start(rec.owner, rec.name)

    async def _stop_current(self, rec: BotRecord) -> None:
        info = await self.backend.inspect(rec.owner, rec.name)
        if info is not None:
            self.watcher.expect_stop(info.id)
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
        payload = await self._payload(cmd) if spec.kind in (SourceKind.FILE, SourceKind.ZIP) else None
        prefer = (previous.entrypoint,) if previous is not None and previous.entrypoint else ()
        ctx = f"owner={cmd.owner} bot={cmd.name} request={cmd.request_id}"
        return await self.sources.prepare(spec, payload, progress, prefer=prefer, ctx=ctx)

    async def shared_tokens(self, rec: BotRecord, values: dict[str, str] | None) -> list[Note]:
        """A note for each token-shaped value just set that another of the owner's bots already uses:
        two bots polling one token get 409 Conflict from Telegram."""
        tokens = {key: value.strip() for key, value in (values or {}).items() if is_bot_token(value)}
        if not tokens:
            return []
        others = [r for r in await self.store.records(rec.owner) if r.name != rec.name]
        notes = []
        for key, token in sorted(tokens.items()):
            bots = sorted(r.name for r in others if token in (v.strip() for v in r.env.values()))
            if bots:
                notes.append(Note(kind=NoteKind.TOKEN_SHARED, key=key, bots=bots))
        return notes

    # -- operations -------------------------------------------------------------------------
    async def start(self, cmd: Command, progress: ProgressFn) -> Result:
        name = validate_name(cmd.name)
        rec = await self.store.get(cmd.owner, name)
        if cmd.source is None:
            if rec is None:
                raise NotFound(name)
            rec.desired = Desired.RUNNING
            await self.store.save(rec)
            self.watcher.reset_streak(rec.owner, rec.name)
            await progress(Stage.STARTING, "")
            await self._ensure_running(rec)
            return Result(request_id=cmd.request_id, bot=await self.bot_status(rec))
        if rec is not None and rec.request_id == cmd.request_id:
            await self._ensure_running(rec)  # redelivered after the record was written
            return Result(request_id=cmd.request_id, bot=await self.bot_status(rec))
        env = validate_env(cmd.env or {})
        await self.store.reserve(cmd.owner, name, cmd.request_id)
        try:
            prepared = await self.prepare(cmd, progress, None)
            rec = BotRecord(
                owner=cmd.owner,
                name=name,
                source=prepared.info,
                env=env,
                image=prepared.image,
                entrypoint=prepared.entrypoint,
                request_id=cmd.request_id,
                git_url=prepared.git_url,
                own_image=prepared.own_image,
            )
            await self.store.save(rec, source=pack_files(prepared.files))
            await progress(Stage.STARTING, "")
            await self.deploy(rec, prepared.files)
        except BaseException:
            # A start that fails creates no bot and takes no slot.
            try:
                await self.backend.remove(cmd.owner, name, volumes=True)
            finally:
                await self.store.release(cmd.owner, name)
            raise
        notes = [*prepared.notes, *await self.shared_tokens(rec, cmd.env)]
        return Result(request_id=cmd.request_id, bot=await self.bot_status(rec), notes=notes)

    async def stop(self, cmd: Command, progress: ProgressFn) -> Result:
        rec = await self._record(cmd)
        if rec.desired is not Desired.STOPPED:
            rec.desired = Desired.STOPPED
            await self.store.save(rec)
        await progress(Stage.STOPPING, "")
        await self._stop_current(rec)
        return Result(request_id=cmd.request_id, bot=await self.bot_status(rec))

    async def restart(self, cmd: Command, progress: ProgressFn) -> Result:
        rec = await self._record(cmd)
        rec.desired = Desired.RUNNING
        await self.store.save(rec)
        self.watcher.reset_streak(rec.owner, rec.name)
        info = await self.backend.inspect(rec.owner, rec.name)
        if info is None or info.request_id != rec.request_id:
            await self.deploy(rec)
        else:
            self.watcher.expect_stop(info.id)
            await self.backend.restart(rec.owner, rec.name, self.settings.runner_stop_timeout)
        return Result(request_id=cmd.request_id, bot=await self.bot_status(rec))

    async def update(self, cmd: Command, progress: ProgressFn) -> Result:
        rec = await self._record(cmd)
        if rec.request_id == cmd.request_id:  # redelivered: the new code is already recorded
            await self.deploy(rec)
            return Result(request_id=cmd.request_id, bot=await self.bot_status(rec))
        env = dict(rec.env)
        if cmd.env is not None:
            env.update(validate_env(cmd.env))
        prepared = await self.prepare(cmd, progress, rec)
        await progress(Stage.STOPPING, "")
        await self._stop_current(rec)
        rec.source, rec.image, rec.entrypoint = prepared.info, prepared.image, prepared.entrypoint
        rec.git_url, rec.own_image = prepared.git_url, prepared.own_image
        rec.env, rec.request_id, rec.desired = env, cmd.request_id, Desired.RUNNING
        await self.store.save(rec, source=pack_files(prepared.files))
        self.watcher.reset_streak(rec.owner, rec.name)
        await progress(Stage.STARTING, "")
        await self.deploy(rec, prepared.files)
        notes = [*prepared.notes, *await self.shared_tokens(rec, cmd.env)]
        return Result(request_id=cmd.request_id, bot=await self.bot_status(rec), notes=notes)

    async def set_env(self, cmd: Command, progress: ProgressFn) -> Result:
        rec = await self._record(cmd)
        if rec.request_id != cmd.request_id:
            env = dict(rec.env)
            env.update(validate_env(cmd.env or {}))
            for key in cmd.unset:
                env.pop(key, None)
            validate_env(env)
            await self._stop_current(rec)
            rec.env, rec.request_id = env, cmd.request_id
            await self.store.save(rec)
        await progress(Stage.STARTING, "")
        await self.deploy(rec)
        notes = await self.shared_tokens(rec, cmd.env)
        return Result(request_id=cmd.request_id, bot=await self.bot_status(rec), notes=notes)

    async def delete(self, cmd: Command, progress: ProgressFn) -> Result:
        rec = await self._record(cmd)
        await self._stop_current(rec)
        await self.backend.remove(rec.owner, rec.name, volumes=True)
        await self.store.release(rec.owner, rec.name)
        await self.bus.publish(Event(type=EventType.DELETED, owner=rec.owner, name=rec.name))
        used, limit = await self.store.quota(cmd.owner)
        return Result(request_id=cmd.request_id, quota=QuotaInfo(used=used, limit=limit))

    async def status(self, cmd: Command, progress: ProgressFn) -> Result:
        rec = await self._record(cmd)
        return Result(request_id=cmd.request_id, bot=await self.bot_status(rec))

    async def logs(self, cmd: Command, progress: ProgressFn) -> Result:
        rec = await self._record(cmd)
        tail = max(1, min(cmd.tail, 100_000)) if cmd.tail else None
        text = await self.backend.logs(rec.owner, rec.name, tail, cmd.since)
        return Result(request_id=cmd.request_id, logs=text)

    async def list(self, cmd: Command, progress: ProgressFn) -> Result:
        owners = await self.store.owners() if cmd.all_owners and cmd.admin else [cmd.owner]
        bots: list[BotStatus] = []
        for owner in owners:
            for rec in await self.store.records(owner):
                bots.append(await self.bot_status(rec))
        used, limit = await self.store.quota(cmd.owner)
        return Result(request_id=cmd.request_id, bots=bots, quota=QuotaInfo(used=used, limit=limit))

    async def set_quota(self, cmd: Command, progress: ProgressFn) -> Result:
        if not cmd.admin:
            raise BotrunnerError("only admins may change quotas", code=ErrorCode.FORBIDDEN)
        target = cmd.target_owner if cmd.target_owner is not None else cmd.owner
        if cmd.quota is not None and cmd.quota < 0:
            raise BotrunnerError(
                "a quota is a number of bots, 0 or more", code=ErrorCode.INVALID_INPUT, field="quota"
            )
        await self.store.set_quota(target, cmd.quota)
        used, limit = await self.store.quota(target)
        return Result(request_id=cmd.request_id, quota=QuotaInfo(used=used, limit=limit))

    async def system(self, cmd: Command, progress: ProgressFn) -> Result:
        version = await self.backend.version()
        records = await self.store.all_records()
        running = 0
        for rec in records:
            info = await self.backend.inspect(rec.owner, rec.name)
            running += bool(info and info.running)
        return Result(
            request_id=cmd.request_id,
            system=SystemInfo(
                runner_id=self.settings.runner_id,
                docker_version=version,
                bots_running=running,
                bots_total=len(records),
            ),
        )
