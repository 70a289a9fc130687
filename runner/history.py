"""Each bot's resource history in Redis: raw samples for the last hour, 5-minute averages for a week.

The sampler writes one sample per bot per interval in a single pipelined round trip; the Lua script
folds a finished bucket of raw samples into its average when the first sample of the next bucket
arrives, so downsampling costs nothing between buckets and needs no loop of its own.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from protocol import keys
from protocol.models import Event, EventType, Sample
from runner.backend.base import ResourceUsage

# KEYS: raw, coarse. ARGV: ts, memory, cpu, bucket_s, raw_keep_s, keep_s, max_points.
_ADD_LUA = """
local ts = tonumber(ARGV[1])
local bucket = tonumber(ARGV[4])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  local prev = math.floor(tonumber(last[2]) / bucket) * bucket
  if prev ~= math.floor(ts / bucket) * bucket then
    local rows = redis.call('ZRANGEBYSCORE', KEYS[1], prev, '(' .. (prev + bucket))
    local n, mem, cpu = 0, 0, 0
    for _, row in ipairs(rows) do
      local t, m, c = string.match(row, '^(%S+) (%S+) (%S+)$')
      n = n + 1; mem = mem + tonumber(m); cpu = cpu + tonumber(c)
    end
    if n > 0 then
      redis.call('ZADD', KEYS[2], prev, string.format('%d %d %.3f', prev, math.floor(mem / n), cpu / n))
    end
  end
end
redis.call('ZADD', KEYS[1], ts, ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (ts - tonumber(ARGV[5])))
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (ts - tonumber(ARGV[6])))
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[7]) - 1)
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[7]) - 1)
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[6])
return 1
"""

# Events the chart marks, and the counters Prometheus reads.
_MARKED = {EventType.RESTARTED: keys.METRIC_RESTARTS, EventType.CRASHED: keys.METRIC_CRASHES}


class History:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._add = redis.register_script(_ADD_LUA)

    async def record(self, usage: dict[tuple[int, str], ResourceUsage], ts: float | None = None) -> None:
        """One sample per bot, all in one round trip."""
        if not usage:
            return
        now = time.time() if ts is None else ts
        async with self.redis.pipeline(transaction=False) as pipe:
            for (owner, name), u in usage.items():
                await self._add(
                    keys=[keys.history_raw(owner, name), keys.history_coarse(owner, name)],
                    args=[
                        f"{now:.3f}",
                        u.memory_bytes,
                        f"{u.cpu_percent:.3f}",
                        keys.HISTORY_BUCKET_S,
                        keys.HISTORY_RAW_S,
                        keys.HISTORY_KEEP_S,
                        keys.HISTORY_MAX_POINTS,
                    ],
                    client=pipe,
                )
            await pipe.execute()

    async def samples(self, owner: int, name: str, since: float) -> list[Sample]:
        """Samples since `since`: the coarse averages before the raw hour, then the raw samples."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(keys.history_raw(owner, name), since, "+inf")
            pipe.zrangebyscore(keys.history_coarse(owner, name), since, "+inf")
            raw, coarse = await pipe.execute()
        fine = [_sample(m) for m in raw]
        start = fine[0].ts if fine else float("inf")
        # A bucket overlapping the raw hour would count its samples twice.
        rough = [s for s in map(_sample, coarse) if s.ts + keys.HISTORY_BUCKET_S <= start]
        return rough + fine

    async def note(self, event: Event) -> None:
        """Mark a restart or a crash for the chart and count it for Prometheus."""
        counter = _MARKED.get(event.type)
        if counter is None:
            return
        key = keys.history_events(event.owner, event.name)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {f"{event.ts:.3f} {event.type.value}": event.ts})
            pipe.zremrangebyscore(key, "-inf", f"({event.ts - keys.HISTORY_KEEP_S}")
            pipe.expire(key, keys.HISTORY_KEEP_S)
            pipe.hincrby(counter, f"{event.owner}:{event.name}", 1)
            await pipe.execute()

    async def marks(self, owner: int, name: str, since: float) -> list[float]:
        rows = await self.redis.zrangebyscore(
            keys.history_events(owner, name), since, "+inf", withscores=True
        )
        return [float(row[1]) for row in rows]


def _sample(member: bytes | str) -> Sample:
    text = member.decode() if isinstance(member, bytes) else member
    ts, mem, cpu = text.split(" ")
    return Sample(ts=float(ts), memory_bytes=int(float(mem)), cpu_percent=float(cpu))
