"""Operations that read (status, logs, list, system) and the admin's quota setting."""

from __future__ import annotations

from protocol.errors import BotrunnerError, ErrorCode
from protocol.models import BotStatus, Command, QuotaInfo, Result, SystemInfo
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
