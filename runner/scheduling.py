"""Who runs when: fair share between owners, one command per bot at a time, builds in their own pool.

A command waits, in this order, for:
1. its bot's lock (commands that change a bot): first this process's FIFO lock, then the bot's
   lease in Redis, which another runner may hold. Queued commands for one bot hold nothing else,
   so ten /updates of one bot cost one slot, not ten.
2. its owner's slot (RUNNER_MAX_INFLIGHT_PER_USER): an owner's surplus waits in that owner's own
   queue and never in front of another owner. Commands that may build and quick ones count apart,
   so an owner's own stop or restart never waits behind that owner's builds.
3. a slot of the quick pool (RUNNER_CONCURRENCY), for everything that cannot build. A command that
   may build (start or update with a source) takes no quick slot: the build itself takes one of
   the build pool (RUNNER_BUILD_CONCURRENCY, in runner/builds/cache.py) only while it builds.
   Reads (status, logs, list, system) take no lock and no owner slot: they never wait behind a build.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from redis.asyncio import Redis

from protocol import keys
from protocol.models import Command, Op
from runner.lease import held

READ_ONLY = frozenset({Op.STATUS, Op.LOGS, Op.LIST, Op.SYSTEM, Op.STATS, Op.QUOTA, Op.RELEASES})


def may_build(cmd: Command) -> bool:
    return cmd.op in (Op.START, Op.UPDATE) and cmd.source is not None


@dataclass
class _Counted:
    """A lock or semaphore with a count of its users, so idle ones are forgotten."""

    gate: asyncio.Lock | asyncio.Semaphore
    users: int = 0


class _Gates:
    def __init__(self, size: int | None) -> None:
        self.size = size  # None: a lock
        self._gates: dict[object, _Counted] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: object) -> AsyncIterator[None]:
        entry = self._gates.get(key)
        if entry is None:
            gate = asyncio.Lock() if self.size is None else asyncio.Semaphore(self.size)
            entry = self._gates[key] = _Counted(gate)
        entry.users += 1
        try:
            async with entry.gate:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._gates[key]

    def __len__(self) -> int:
        return len(self._gates)


class Scheduler:
    def __init__(self, redis: Redis, *, concurrency: int, per_owner: int, lease_ms: int, holder: str) -> None:
        self.redis = redis
        self.lease_ms = lease_ms
        self.holder = holder
        self.quick = asyncio.Semaphore(concurrency)
        self._bots = _Gates(None)
        self._owners = _Gates(per_owner)

    @contextlib.asynccontextmanager
    async def bot(self, owner: int, name: str) -> AsyncIterator[None]:
        """The bot's lock across runners (also what reconcile takes)."""
        async with (
            self._bots.hold((owner, name)),
            held(self.redis, keys.bot_lock(owner, name), self.lease_ms, holder=self.holder),
        ):
            yield

    @contextlib.asynccontextmanager
    async def admit(self, cmd: Command) -> AsyncIterator[None]:
        """Hold what cmd needs to run, taken in the order the module's docstring gives."""
        async with contextlib.AsyncExitStack() as stack:
            if cmd.op not in READ_ONLY:
                if cmd.name:
                    await stack.enter_async_context(self.bot(cmd.owner, cmd.name))
                await stack.enter_async_context(self._owners.hold((cmd.owner, may_build(cmd))))
            if not may_build(cmd):
                await stack.enter_async_context(self.quick)
            yield
