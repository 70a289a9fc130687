"""Operations that read (status, logs, list, system) and the admin's quota setting."""

from __future__ import annotations

import time

from protocol.errors import BotrunnerError, ErrorCode
from protocol.heartbeats import live_runners
from protocol.models import BotStats, BotStatus, Command, QuotaInfo, Result, RunnerInfo, SystemInfo
from runner.history import History
from runner.operations.releases import ReleaseOps
from runner.sources import ProgressFn


class QueryOps(ReleaseOps):
    async def status(self, cmd: Command, progress: ProgressFn) -> Result:
        rec = await self._record(cmd)
        return Result(request_id=cmd.request_id, bot=await self.bot_status(rec))

    async def logs(self, cmd: Command, progress: ProgressFn) -> Result:
        rec = await self._record(cmd)
        if cmd.release is not None:  # a kept release's output (issue 12)
            text = await self.release_logs(rec, cmd.release)
            lines = text.splitlines()[-max(1, cmd.tail) :] if cmd.tail else text.splitlines()
            return Result(request_id=cmd.request_id, logs="\n".join(lines) + ("\n" if lines else ""))
        tail = max(1, min(cmd.tail, 100_000)) if cmd.tail else None
        text = await self.backend.logs(rec.owner, rec.name, tail, cmd.since)
        # The reply rests in Redis: a bot that prints its token must not leave it there.
        return Result(request_id=cmd.request_id, logs=self.secrets.masker(rec.env)(text))

    async def list(self, cmd: Command, progress: ProgressFn) -> Result:
        owners = await self.store.owners() if cmd.all_owners and cmd.admin else [cmd.owner]
        bots: list[BotStatus] = []
        for owner in owners:
            for rec in await self.store.records(owner):
                bots.append(await self.bot_status(rec))
        used, limit = await self.store.quota(cmd.owner)
        return Result(request_id=cmd.request_id, bots=bots, quota=QuotaInfo(used=used, limit=limit))

    async def quota(self, cmd: Command, progress: ProgressFn) -> Result:
        used, limit = await self.store.quota(cmd.owner)
        return Result(request_id=cmd.request_id, quota=QuotaInfo(used=used, limit=limit))

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

    async def stats(self, cmd: Command, progress: ProgressFn) -> Result:
        """A bot's resource history since `cmd.since` (default: the last hour)."""
        rec = await self._record(cmd)
        since = cmd.since if cmd.since is not None else time.time() - 3600
        history = History(self.redis)
        stats = BotStats(
            owner=rec.owner,
            name=rec.name,
            limits=self.limits,
            samples=await history.samples(rec.owner, rec.name, since),
            restarts=await history.marks(rec.owner, rec.name, since),
        )
        return Result(request_id=cmd.request_id, stats=stats)

    async def system(self, cmd: Command, progress: ProgressFn) -> Result:
        version = await self.backend.version()
        records = await self.store.all_records()
        running = 0
        for rec in records:
            info = await self.backend.inspect(rec.owner, rec.name)
            running += bool(info and info.running)
        now = time.time()
        runners = [
            RunnerInfo(
                runner_id=h.runner_id,
                heartbeat_age_seconds=max(0.0, now - h.ts),
                backend=h.backend,
                nodes=h.nodes,
                docker_ok=h.docker_ok,
                leader=h.leader,
            )
            for h in sorted(await live_runners(self.redis), key=lambda h: h.runner_id)
        ]
        return Result(
            request_id=cmd.request_id,
            system=SystemInfo(
                runner_id=self.settings.runner_id,
                docker_version=version,
                bots_running=running,
                bots_total=len(records),
                backend=str(getattr(self.settings, "runner_backend", "docker")),
                egress=self.backend.egress,
                runners=runners,
            ),
        )
