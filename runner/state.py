"""The state of record in Redis: bot records, their sources, and the atomic quota."""

from __future__ import annotations

import time

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from protocol import keys
from protocol.errors import AlreadyExists, QuotaExceeded
from protocol.models import Desired, SourceInfo
from runner.backend.base import ResourceUsage

# Reserve a name for a new bot, atomically: exists check, quota check and insert in one step, so
# two concurrent starts at 2/3 give exactly one success. The quota counts every bot the owner has,
# whatever its state. A redelivered start (same request id) finds its own reservation and passes.
# Returns [status, limit]: 1 reserved, 2 already reserved by this request, -1 exists, -2 quota.
_RESERVE_LUA = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
local limit = tonumber(redis.call('GET', KEYS[2]) or ARGV[2])
if current then
  if current == ARGV[3] then return {2, limit} end
  return {-1, limit}
end
if redis.call('HLEN', KEYS[1]) >= limit then return {-2, limit} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
return {1, limit}
"""


class BotRecord(BaseModel):
    """What the runner knows of a bot. Env values live here and nowhere else."""

    owner: int
    name: str
    desired: Desired = Desired.RUNNING
    source: SourceInfo
    env: dict[str, str] = Field(default_factory=dict)
    image: str
    entrypoint: str  # path inside /app that python runs; "" with own_image: the image's CMD
    # Git deploys: the URL as the user gave it, credentials included, so an update can pull. It
    # lives here beside the env values and is never shown: SourceInfo.git_url is the stripped one.
    git_url: str | None = None
    own_image: bool = False  # built from the bot's own Dockerfile: no /app volume, the image's CMD
    usernames: dict[str, str] = Field(default_factory=dict)  # env key -> its token's @username
    backup_daily: bool = False  # keep RUNNER_KEEP_BACKUPS daily archives of /data
    last_backup_at: float | None = None
    container_id: str | None = None
    # Swarm: the node holding the bot's /data volume; its service is pinned there (node.id).
    node: str | None = None
    request_id: str  # the command that last set the code or env: makes redelivery idempotent
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)

    @property
    def key(self) -> tuple[int, str]:
        return (self.owner, self.name)

    def set_env(self, env: dict[str, str], changed: dict[str, str] | None, names: dict[str, str]) -> None:
        """The env after a change; a username stays only while its key keeps the value it was for."""
        kept = {k: u for k, u in self.usernames.items() if k in env and k not in (changed or {})}
        self.env = env
        self.usernames = {**kept, **{k: u for k, u in names.items() if k in env}}


class StateStore:
    def __init__(self, redis: Redis, default_quota: int) -> None:
        self.redis = redis
        self.default_quota = default_quota
        self._reserve = redis.register_script(_RESERVE_LUA)

    async def get(self, owner: int, name: str) -> BotRecord | None:
        raw = await self.redis.get(keys.bot(owner, name))
        return None if raw is None else BotRecord.model_validate_json(raw)

    async def save(self, rec: BotRecord, source: bytes | None = None) -> None:
        rec.updated_at = time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.bot(rec.owner, rec.name), rec.model_dump_json())
            if source is not None:
                pipe.set(keys.bot_source(rec.owner, rec.name), source)
            await pipe.execute()

    async def source(self, owner: int, name: str) -> bytes | None:
        data = await self.redis.get(keys.bot_source(owner, name))
        return data if isinstance(data, bytes) else None

    async def reserve(self, owner: int, name: str, request_id: str) -> bool:
        """Take a quota slot for a new bot; True when this request already held it."""
        status, limit = await self._reserve(
            keys=[keys.owner_bots(owner), keys.quota(owner), keys.OWNERS],
            args=[name, self.default_quota, request_id, owner],
        )
        if status == -1:
            raise AlreadyExists(name)
        if status == -2:
            raise QuotaExceeded(int(limit))
        return bool(status == 2)

    async def release(self, owner: int, name: str) -> None:
        """Forget a bot entirely: its slot, record, source and stats."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.owner_bots(owner), name)
            pipe.delete(keys.bot(owner, name), keys.bot_source(owner, name), keys.stats(owner, name))
            # Its resource history and metric counters (issue 13) go with it.
            pipe.delete(
                keys.history_raw(owner, name),
                keys.history_coarse(owner, name),
                keys.history_events(owner, name),
            )
            pipe.hdel(keys.METRIC_RESTARTS, f"{owner}:{name}")
            pipe.hdel(keys.METRIC_CRASHES, f"{owner}:{name}")
            await pipe.execute()

    async def names(self, owner: int) -> list[str]:
        raw = await self.redis.hkeys(keys.owner_bots(owner))
        return sorted(n.decode() if isinstance(n, bytes) else n for n in raw)

    async def owners(self) -> list[int]:
        raw = await self.redis.smembers(keys.OWNERS)
        return sorted(int(o) for o in raw)

    async def records(self, owner: int) -> list[BotRecord]:
        """An owner's bots, read in one round trip."""
        names = await self.names(owner)
        if not names:
            return []
        raws = await self.redis.mget([keys.bot(owner, name) for name in names])
        return [BotRecord.model_validate_json(raw) for raw in raws if raw is not None]

    async def all_records(self) -> list[BotRecord]:
        out: list[BotRecord] = []
        for owner in await self.owners():
            out.extend(await self.records(owner))
        return out

    async def quota(self, owner: int) -> tuple[int, int]:
        """(used, limit) for an owner."""
        used = await self.redis.hlen(keys.owner_bots(owner))
        override = await self.redis.get(keys.quota(owner))
        return int(used), int(override) if override is not None else self.default_quota

    async def set_quota(self, owner: int, limit: int | None) -> None:
        if limit is None:
            await self.redis.delete(keys.quota(owner))
        else:
            await self.redis.set(keys.quota(owner), limit)

    # The stats key holds "<memory bytes> <cpu percent>", written by the sampler, read by status.
    async def save_usage(self, usage: dict[tuple[int, str], ResourceUsage]) -> None:
        if not usage:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for (owner, name), u in usage.items():
                pipe.set(keys.stats(owner, name), f"{u.memory_bytes} {u.cpu_percent}", ex=keys.STATS_TTL)
            await pipe.execute()

    async def usage(self, owner: int, name: str) -> ResourceUsage | None:
        raw = await self.redis.get(keys.stats(owner, name))
        if raw is None:
            return None
        mem, _, cpu = (raw.decode() if isinstance(raw, bytes) else raw).partition(" ")
        return ResourceUsage(memory_bytes=int(mem), cpu_percent=float(cpu))
