"""The audit trail: one capped Redis stream of who changed what, through which front end, and how it went.

Written in one place, the gateway's `call` (plus the token handlers, which do not go to the runner),
so an operation added later is audited without a line more. Env values never enter it: env
changes record their keys only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError
from redis.typing import FieldT

from protocol import keys

log = logging.getLogger(__name__)

DEFAULT_MAX_ENTRIES = 10_000
SCAN_CHUNK = 500  # entries read per XREVRANGE while a filter looks for matches
DETAIL_MAX = 300


@dataclass(frozen=True)
class AuditEntry:
    actor: int
    action: str  # the op ("start", "set_env", ...), or "token_issue" / "token_revoke"
    channel: str  # chat | api | cli | webapp
    result: str  # "ok", or the error code
    owner: int | None = None
    bot: str | None = None
    detail: str = ""  # env keys, a quota figure: never values
    ts: float = 0.0
    id: str = ""  # the stream entry id, once stored

    def fields(self) -> dict[FieldT, FieldT]:
        return {
            "actor": str(self.actor),
            "action": self.action,
            "channel": self.channel,
            "result": self.result,
            "owner": "" if self.owner is None else str(self.owner),
            "bot": self.bot or "",
            "detail": self.detail[:DETAIL_MAX],
            "ts": f"{self.ts or time.time():.3f}",
        }

    @classmethod
    def parse(cls, entry_id: bytes | str | None, raw: dict[bytes | str, bytes | str] | None) -> AuditEntry:
        f = {_text(k): _text(v) for k, v in (raw or {}).items()}
        return cls(
            actor=int(f.get("actor") or 0),
            action=f.get("action", ""),
            channel=f.get("channel", ""),
            result=f.get("result", ""),
            owner=int(f["owner"]) if f.get("owner") else None,
            bot=f.get("bot") or None,
            detail=f.get("detail", ""),
            ts=float(f.get("ts") or 0),
            id=_text(entry_id or ""),
        )


@dataclass(frozen=True)
class AuditQuery:
    """Which entries to read: all match when every filter is None."""

    owner: int | None = None
    bot: str | None = None
    actor: int | None = None

    def matches(self, e: AuditEntry) -> bool:
        return (
            (self.owner is None or e.owner == self.owner)
            and (self.bot is None or e.bot == self.bot)
            and (self.actor is None or e.actor == self.actor)
        )


class AuditLog:
    def __init__(self, redis: Redis, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.redis = redis
        self.max_entries = max_entries

    async def write(self, entry: AuditEntry) -> None:
        """Record an entry; a Redis failure is logged, never raised: the action itself has happened."""
        try:
            await self.redis.xadd(
                keys.AUDIT_STREAM, entry.fields(), maxlen=self.max_entries, approximate=True
            )
        except (RedisError, OSError) as e:
            log.warning("audit entry lost: %s actor=%s bot=%s: %s", entry.action, entry.actor, entry.bot, e)

    async def read(self, query: AuditQuery, *, limit: int = 20, offset: int = 0) -> list[AuditEntry]:
        """The newest matching entries first, skipping `offset` of them (paging)."""
        out: list[AuditEntry] = []
        skipped = 0
        async for e in self._newest_first():
            if not query.matches(e):
                continue
            if skipped < offset:
                skipped += 1
                continue
            out.append(e)
            if len(out) >= limit:
                break
        return out

    def _newest_first(self) -> _Entries:
        return _Entries(self.redis)


class _Entries:
    """Async iterator over the stream, newest first, in chunks."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.top: str = "+"
        self.buffer: list[AuditEntry] = []
        self.done = False

    def __aiter__(self) -> _Entries:
        return self

    async def __anext__(self) -> AuditEntry:
        if not self.buffer:
            if self.done:
                raise StopAsyncIteration
            rows = await self.redis.xrevrange(keys.AUDIT_STREAM, max=self.top, count=SCAN_CHUNK) or []
            if len(rows) < SCAN_CHUNK:
                self.done = True
            if not rows:
                raise StopAsyncIteration
            self.buffer = [AuditEntry.parse(i, raw) for i, raw in rows]
            self.buffer.reverse()  # pop() from the end gives the newest first
            self.top = "(" + self.buffer[0].id
        return self.buffer.pop()


def _text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


def env_detail(env: Iterable[str] | None, unset: Iterable[str] | None) -> str:
    """Which env keys changed: the keys only, never a value."""
    parts = []
    if env:
        parts.append("set " + ",".join(sorted(env)))
    if unset:
        parts.append("unset " + ",".join(sorted(unset)))
    return "; ".join(parts)
