"""Operations that change a bot: start (a new bot or a stopped one), stop, restart, update, env, delete."""

from __future__ import annotations

import logging

from protocol.errors import NotFound
from protocol.models import Command, Desired, Event, EventType, Op, QuotaInfo, Result, Stage
from protocol.rules import validate_name
from runner.operations.env import merged_env, refuse_tokens_in_use
from runner.operations.releases import ReleaseOps
from runner.sources import ProgressFn, pack_files
from runner.state import BotRecord

log = logging.getLogger(__name__)


class LifecycleOps(ReleaseOps):
    async def start(self, cmd: Command, progress: ProgressFn) -> Result:
        name = validate_name(cmd.name)
        rec = await self.store.get(cmd.owner, name)
        if cmd.source is None:
            if rec is None:
                raise NotFound(name)
            rec.desired = Desired.RUNNING
            await self.store.save(rec)
            await self.watcher.reset_streak(rec.owner, rec.name)
            await progress(Stage.STARTING, "")
            await self._ensure_running(rec)
            return Result(request_id=cmd.request_id, bot=await self.bot_status(rec))
        if rec is not None and rec.request_id == cmd.request_id:
            await self._ensure_running(rec)  # redelivered after the record was written
            await self.released(rec, Op.START, cmd.actor)
            return Result(request_id=cmd.request_id, bot=await self.bot_status(rec))
        env = merged_env(self.secrets, {}, cmd.env)
        await refuse_tokens_in_use(self.store, self.secrets, cmd.owner, name, env)
        await self.store.reserve(cmd.owner, name, cmd.request_id)
        try:
            prepared = await self.prepare(cmd, progress, None)
            blob = pack_files(prepared.files)
            await self.check_source_bytes(cmd.owner, len(blob))
            rec = BotRecord(
                owner=cmd.owner,
                name=name,
                source=prepared.info,
                env=env,
                image=prepared.image,
                entrypoint=prepared.entrypoint,
                request_id=cmd.request_id,
                git_url=self.secrets.seal_url(prepared.git_url),
                own_image=prepared.own_image,
                usernames={k: u for k, u in cmd.usernames.items() if k in env},
            )
            await self.store.save(rec, source=blob)
            await progress(Stage.STARTING, "")
            await self.deploy(rec, prepared.files)
        except BaseException:
            # A start that fails creates no bot and takes no slot. A cleanup that fails too is
            # logged, never raised in place of the reason the start failed.
            try:
                await self.backend.remove(cmd.owner, name, volumes=True)
            except Exception:
                log.exception("cleanup after a failed start of owner=%s bot=%s", cmd.owner, name)
            finally:
                await self.store.release(cmd.owner, name)
            raise
        await self.released(rec, Op.START, cmd.actor, blob=blob)
        return Result(request_id=cmd.request_id, bot=await self.bot_status(rec), notes=list(prepared.notes))

    async def stop(self, cmd: Command, progress: ProgressFn) -> Result:
        rec = await self._record(cmd)
        if rec.desired is not Desired.STOPPED:
            rec.desired = Desired.STOPPED
            await self.store.save(rec)
        await progress(Stage.STOPPING, "")
        # First the policy: a daemon restart must not bring back what a user stopped (reconcile).
        await self.backend.set_restart_policy(rec.owner, rec.name, restart=False)
        await self._stop_current(rec)
        return Result(request_id=cmd.request_id, bot=await self.bot_status(rec))

    async def restart(self, cmd: Command, progress: ProgressFn) -> Result:
        rec = await self._record(cmd)
        rec.desired = Desired.RUNNING
        await self.store.save(rec)
        await self.watcher.reset_streak(rec.owner, rec.name)
        info = await self.backend.inspect(rec.owner, rec.name)
        if info is None or info.request_id != rec.request_id:
            await self.deploy(rec)
        else:
            await self.watcher.expect_stop(info.id)
            await self.backend.set_restart_policy(rec.owner, rec.name, restart=True)  # a stop cleared it
            await self.backend.restart(rec.owner, rec.name, self.settings.runner_stop_timeout)
        return Result(request_id=cmd.request_id, bot=await self.bot_status(rec))

    async def update(self, cmd: Command, progress: ProgressFn) -> Result:
        rec = await self._record(cmd)
        if rec.request_id == cmd.request_id:  # redelivered: the new code is already recorded
            await self.deploy(rec)
            await self.released(rec, Op.UPDATE, cmd.actor)
            return Result(request_id=cmd.request_id, bot=await self.bot_status(rec))
        env = merged_env(self.secrets, rec.env, cmd.env)  # the caps hold after the merge
        await refuse_tokens_in_use(self.store, self.secrets, rec.owner, rec.name, cmd.env)
        prepared = await self.prepare(cmd, progress, rec)
        blob = pack_files(prepared.files)
        await self.check_source_bytes(cmd.owner, len(blob))
        await progress(Stage.STOPPING, "")
        await self.keep_logs(rec)
        await self._stop_current(rec)
        rec.source, rec.image, rec.entrypoint = prepared.info, prepared.image, prepared.entrypoint
        rec.git_url, rec.own_image = self.secrets.seal_url(prepared.git_url), prepared.own_image
        rec.set_env(env, cmd.env, cmd.usernames)
        rec.request_id, rec.desired = cmd.request_id, Desired.RUNNING
        await self.store.save(rec, source=blob)
        await self.watcher.reset_streak(rec.owner, rec.name)
        await progress(Stage.STARTING, "")
        await self.deploy(rec, prepared.files)
        await self.released(rec, Op.UPDATE, cmd.actor, blob=blob)
        return Result(request_id=cmd.request_id, bot=await self.bot_status(rec), notes=list(prepared.notes))

    async def set_env(self, cmd: Command, progress: ProgressFn) -> Result:
        rec = await self._record(cmd)
        if rec.request_id != cmd.request_id:
            env = merged_env(self.secrets, rec.env, cmd.env, cmd.unset)  # the caps hold after the merge
            await refuse_tokens_in_use(self.store, self.secrets, rec.owner, rec.name, cmd.env)
            await self.keep_logs(rec)
            await self._stop_current(rec)
            rec.set_env(env, {**(cmd.env or {}), **dict.fromkeys(cmd.unset, "")}, cmd.usernames)
            rec.request_id = cmd.request_id
            await self.store.save(rec)
        await progress(Stage.STARTING, "")
        await self.deploy(rec)
        await self.released(rec, Op.SET_ENV, cmd.actor)
        return Result(request_id=cmd.request_id, bot=await self.bot_status(rec))

    async def delete(self, cmd: Command, progress: ProgressFn) -> Result:
        rec = await self._record(cmd)
        await self._stop_current(rec)
        await self.backend.remove(rec.owner, rec.name, volumes=True)
        await self.store.release(rec.owner, rec.name)
        await self.releases.forget(rec.owner, rec.name)
        await self.bus.publish(Event(type=EventType.DELETED, owner=rec.owner, name=rec.name))
        used, limit = await self.store.quota(cmd.owner)
        return Result(request_id=cmd.request_id, quota=QuotaInfo(used=used, limit=limit))
