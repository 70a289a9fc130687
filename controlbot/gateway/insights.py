"""What users and admins look at: resource history, the top list, the audit trail."""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError

from controlbot.audit import AuditEntry, AuditQuery
from controlbot.gateway.base import GatewayBase
from controlbot.gateway.types import Caller, Target
from protocol.errors import (
    BotrunnerError,
    ErrorCode,
    StoreUnavailable,
)
from protocol.models import (
    BotStats,
    Op,
)

log = logging.getLogger(__name__)


class InsightOps(GatewayBase):
    """Resource history, the top list and the audit trail."""

    async def stats(self, caller: Caller, target: Target, seconds: float) -> BotStats:
        """A bot's resource samples over the last `seconds`."""
        result = await self.call(caller, Op.STATS, target, since=time.time() - seconds)
        if result.stats is None:
            raise BotrunnerError("the runner answered without samples", code=ErrorCode.INTERNAL)
        return result.stats

    async def audit_log(
        self, caller: Caller, query: AuditQuery, *, limit: int = 20, offset: int = 0
    ) -> list[AuditEntry]:
        """Admins read the whole trail; anyone else, only what touched their own bots."""
        if not caller.admin:
            query = AuditQuery(owner=caller.id, bot=query.bot)
        if self.audit is None:
            return []
        try:
            return await self.audit.read(query, limit=max(1, min(limit, 500)), offset=max(0, offset))
        except RedisError as e:
            raise StoreUnavailable() from e

    async def record(self, caller: Caller, action: str, outcome: str = "ok") -> None:
        """Audit an action that does not go to the runner (API tokens)."""
        if self.audit is not None:
            await self.audit.write(
                AuditEntry(actor=caller.id, action=action, channel=caller.channel.value, result=outcome)
            )
