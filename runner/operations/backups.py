"""/backup and /restore: a bot's /data as an archive, made and unpacked by sandboxed job containers."""

from __future__ import annotations

import logging
import time

from protocol import archive, keys
from protocol.errors import BotrunnerError, ErrorCode, ErrorParams
from protocol.models import ArchiveInfo, BackupEntry, BackupMode, Command, Desired, Result, Stage
from runner import backups
from runner.backend import JobResult, JobSpec
from runner.operations.base import OperationsBase
from runner.sources import ProgressFn

log = logging.getLogger(__name__)

JOB_TIMEOUT_S = 600.0
NOTHING_TO_UNDO = 3  # undo_job's exit code when no restore left a copy behind


class BackupOps(OperationsBase):
    async def _job(self, spec: JobSpec, what: str) -> JobResult:
        result = await self.backend.run_job(spec)
        if result.exit_code != 0 and result.exit_code != NOTHING_TO_UNDO:
            log.error("%s job failed (%s): %s", what, result.exit_code, result.stderr[-500:])
            raise BotrunnerError(
                f"the {what} failed" + (" (it took too long)" if result.timed_out else ""),
                code=ErrorCode.INTERNAL,
                detail=result.stderr.decode(errors="replace")[-2000:],
            )
        return result

    async def backup(self, cmd: Command, progress: ProgressFn) -> Result:
        rec = await self._record(cmd)
        image = await self.sources.runtime()
        mode = cmd.backup or BackupMode.NOW
        if mode in (BackupMode.DAILY, BackupMode.OFF):
            rec.backup_daily = mode is BackupMode.DAILY
            await self.store.save(rec)
            return Result(request_id=cmd.request_id, bot=await self.bot_status(rec))
        if mode is BackupMode.LIST:
            done = await self._job(backups.list_job(image, rec.owner, rec.name, JOB_TIMEOUT_S), "listing")
            entries = [
                BackupEntry(filename=f, size_bytes=size, created_at=ts)
                for f, size, ts in backups.parse_list(done.stdout)
            ]
            return Result(request_id=cmd.request_id, backups=entries)
        cap = self.settings.max_backup_bytes
        done = await self._job(backups.archive_job(image, rec.owner, rec.name, JOB_TIMEOUT_S, cap), "backup")
        data = backups.archived_file(done.archive)
        if len(data) > cap or (done.archive is None and done.truncated):
            raise BotrunnerError(
                f"the archive of /data is {len(data) >> 20} MB, over the limit of {cap >> 20} MB",
                code=ErrorCode.INVALID_INPUT,
                params=ErrorParams(reason="too_large", max_bytes=cap, size_bytes=len(data)),
            )
        chunks = await archive.put(self.redis, keys.archive(cmd.request_id), data)
        info = ArchiveInfo(filename=backups.filename(rec.name), size_bytes=len(data), chunks=chunks)
        return Result(request_id=cmd.request_id, archive=info)

    async def restore(self, cmd: Command, progress: ProgressFn) -> Result:
        rec = await self._record(cmd)
        image = await self.sources.runtime()
        if cmd.undo:
            spec = backups.undo_job(image, rec.owner, rec.name, JOB_TIMEOUT_S)
        else:
            data = await archive.take(
                self.redis, keys.archive(cmd.request_id), self.settings.max_backup_bytes
            )
            backups.check_archive(data, self.settings.max_backup_bytes)
            spec = backups.restore_job(image, rec.owner, rec.name, data, JOB_TIMEOUT_S)
        await progress(Stage.STOPPING, "")
        await self._stop_current(rec)
        try:
            done = await self._job(spec, "restore")
        finally:
            if rec.desired is Desired.RUNNING:
                await progress(Stage.STARTING, "")
                await self._ensure_running(rec)
        if done.exit_code == NOTHING_TO_UNDO:
            raise BotrunnerError(
                "there is no restore to undo: /restore keeps what it replaced, once",
                code=ErrorCode.INVALID_INPUT,
                params=ErrorParams(reason="nothing_to_undo"),
            )
        return Result(request_id=cmd.request_id, bot=await self.bot_status(rec))

    async def daily_backups(self, due_after: float) -> None:
        """Each bot with daily backups whose last one is older than due_after seconds gets one."""
        now = time.time()
        for rec in await self.store.all_records():
            if not rec.backup_daily or (rec.last_backup_at and now - rec.last_backup_at < due_after):
                continue
            image = await self.sources.runtime()
            keep = self.settings.runner_keep_backups
            await self._job(
                backups.daily_job(image, rec.owner, rec.name, keep, JOB_TIMEOUT_S), "daily backup"
            )
            current = await self.store.get(rec.owner, rec.name)
            if current is not None:
                current.last_backup_at = now
                await self.store.save(current)
            log.info("daily backup of owner=%s bot=%s", rec.owner, rec.name)
