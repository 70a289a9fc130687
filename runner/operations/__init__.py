"""What each command does. Every operation is idempotent: a redelivered command changes nothing twice.

- `base`: the record, the status, and deploying a record onto the backend
- `lifecycle`: start, stop, restart, update, set_env, delete
- `queries`: status, logs, list, system, set_quota
- `env`: the env rules
- `releases`: releases, rollback, kept logs (the health gate is runner.healthgate)
"""

from __future__ import annotations

from protocol.models import Command, Op, Result
from runner.operations.backups import BackupOps
from runner.operations.lifecycle import LifecycleOps
from runner.operations.queries import QueryOps
from runner.operations.telegram import TelegramOps
from runner.sources import ProgressFn


class Operations(LifecycleOps, QueryOps, TelegramOps, BackupOps):
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
            Op.QUOTA: self.quota,
            Op.DELETE_WEBHOOK: self.delete_webhook,
            Op.BACKUP: self.backup,
            Op.RESTORE: self.restore,
            Op.STATS: self.stats,
            Op.RELEASES: self.list_releases,
            Op.ROLLBACK: self.rollback,
        }[cmd.op]
        return await handler(cmd, progress)


__all__ = ["Operations"]
