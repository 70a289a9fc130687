"""Releases and rollback, backups and restores of /data."""

from __future__ import annotations

import logging
import uuid

from controlbot.gateway.base import GatewayBase, _bot, wait_verdict
from controlbot.gateway.types import Caller, Target
from protocol import archive, keys
from protocol.client import BUILD_TIMEOUT_S
from protocol.errors import (
    BotrunnerError,
    ErrorCode,
    ErrorParams,
    InvalidSource,
)
from protocol.models import (
    ArchiveInfo,
    BackupMode,
    BotStatus,
    Event,
    Op,
    Result,
)

log = logging.getLogger(__name__)


class DataOps(GatewayBase):
    """Releases and rollback, backups and restores."""

    async def releases(self, caller: Caller, target: Target) -> Result:
        """The bot's kept releases, newest first, and its status."""
        return await self.call(caller, Op.RELEASES, target)

    async def rollback(self, caller: Caller, target: Target, release: int | None = None) -> Result:
        """Run release N (default: the previous one) again, as a new release."""
        return await self.call(caller, Op.ROLLBACK, target, release=release, timeout=BUILD_TIMEOUT_S)

    async def health_verdict(self, request_id: str, timeout: float) -> Event | None:
        """The health gate's verdict on what request_id deployed, once it ends (None: not in time)."""
        return await wait_verdict(self.runner, request_id, timeout)

    async def backup(self, caller: Caller, target: Target) -> tuple[ArchiveInfo, bytes]:
        """The bot's /data as a .tar.gz, made by the runner and handed over in chunks."""
        result = await self.call(caller, Op.BACKUP, target, timeout=BUILD_TIMEOUT_S)
        if result.archive is None:
            raise BotrunnerError("the runner answered without the archive", code=ErrorCode.INTERNAL)
        data = await archive.take(self.runner.redis, keys.archive(result.request_id), self.max_backup_bytes)
        return result.archive, data

    async def backup_schedule(self, caller: Caller, target: Target, mode: BackupMode) -> Result:
        """Daily backups on or off (the result carries the bot), or the kept ones listed (`backups`)."""
        return await self.call(caller, Op.BACKUP, target, backup=mode, timeout=BUILD_TIMEOUT_S)

    async def restore(self, caller: Caller, target: Target, data: bytes | None) -> BotStatus:
        """Replace the bot's /data with an archive (None: undo the last restore); it restarts."""
        request_id = uuid.uuid4().hex
        if data is not None:
            if len(data) > self.max_backup_bytes:
                raise InvalidSource(
                    f"the archive is larger than {self.max_backup_bytes >> 20} MB",
                    params=ErrorParams(
                        reason="too_large", max_bytes=self.max_backup_bytes, size_bytes=len(data)
                    ),
                )
            await self.ensure_runner()
            await archive.put(self.runner.redis, keys.archive(request_id), data)
        result = await self.call(
            caller, Op.RESTORE, target, request_id=request_id, undo=data is None, timeout=BUILD_TIMEOUT_S
        )
        return _bot(result, caller, target)
