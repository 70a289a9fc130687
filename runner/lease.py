"""Leases in Redis: a key holding a random token, with a TTL, renewed while held.

Two runners share one queue, so a lock in one process's memory protects nothing. A lease is the
lock both can see: taken with SET NX PX, renewed and released only by whoever holds its token (a
Lua check-and-act, so a lease that expired and went to another runner is never touched). A runner
that dies (SIGKILL) stops renewing, and its leases free themselves after the TTL.

A lease is lost only to another holder. One that lapsed while its holder stalled (a loop blocked
longer than the TTL, Redis briefly away) and that nobody took meanwhile is taken back at the next
renewal: nobody else can have started the work, and cancelling it would only fail a command.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable

from redis.asyncio import Redis

from protocol.aio import cancel_and_wait

log = logging.getLogger(__name__)

_RENEW_LUA = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"""
_RETAKEN = 2
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# Polling for a busy lease: fast at first (most holds are short), then gently.
POLL_FIRST_S = 0.02
POLL_MAX_S = 0.25


class Lease:
    """One lease on `key`. Not reentrant; one holder at a time per instance."""

    def __init__(self, redis: Redis, key: str, ttl_ms: int, *, holder: str = "") -> None:
        self.redis = redis
        self.key = key
        self.ttl_ms = ttl_ms
        # The token names the holder first, so an operator can tell who holds a lock.
        self.token = f"{holder}:{secrets.token_hex(8)}"
        self.held = False
        self.keeping = True  # keep() ends when this turns False, whether or not its cancel arrives

    async def try_acquire(self) -> bool:
        self.held = bool(await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))
        return self.held

    async def acquire(self) -> None:
        """Wait until the lease is ours. Cancel the caller to stop waiting."""
        delay = POLL_FIRST_S
        while not await self.try_acquire():
            await asyncio.sleep(delay)
            delay = min(delay * 2, POLL_MAX_S)

    async def renew(self) -> bool:
        """Extend the lease, or take it back if it lapsed and is free; False when another holds it."""
        answer = await self.redis.eval(_RENEW_LUA, 1, self.key, self.token, self.ttl_ms)
        if answer == _RETAKEN:
            log.warning(
                "lease %s had lapsed (a stall longer than its TTL); nobody took it: ours again", self.key
            )
        self.held = bool(answer)
        return self.held

    async def release(self) -> None:
        if self.held:
            self.held = False
            await self.redis.eval(_RELEASE_LUA, 1, self.key, self.token)

    async def keep(self, on_lost: Callable[[], None]) -> None:
        """Renew every third of the TTL until cancelled or `keeping` turns False; call on_lost once if
        the lease is lost. A Redis error is retried on the next beat: the TTL leaves two more chances."""
        while self.keeping:
            await asyncio.sleep(self.ttl_ms / 3000)
            if not self.keeping:
                return
            try:
                if not await self.renew():
                    log.error("lease %s was lost", self.key)
                    on_lost()
                    return
            except (ConnectionError, OSError) as e:
                log.warning("could not renew lease %s: %s", self.key, e)
            except Exception as e:  # redis.exceptions.RedisError and friends: keep trying
                log.warning("could not renew lease %s: %s", self.key, e)


@contextlib.asynccontextmanager
async def held(redis: Redis, key: str, ttl_ms: int, *, holder: str = "") -> AsyncIterator[Lease]:
    """Hold a lease for the block: wait for it, renew it meanwhile, release it after.

    If the lease is lost while held (this process stalled longer than the TTL and another runner
    took it), the block's task is cancelled: the other runner is doing the work now, and a command
    not acknowledged is redelivered, never lost.
    """
    lease = Lease(redis, key, ttl_ms, holder=holder)
    await lease.acquire()
    task = asyncio.current_task()

    def lost() -> None:
        if task is not None and lease.keeping:  # never once the block is over: the task moved on
            task.cancel()

    keeper = asyncio.create_task(lease.keep(lost), name=f"lease {key}")
    try:
        yield lease
    finally:
        lease.keeping = False
        # Not one cancel, which redis-py may drop: a keeper that lived on would renew for good.
        await cancel_and_wait([keeper])
        with contextlib.suppress(Exception):  # an unreleased lease expires on its own
            await lease.release()
