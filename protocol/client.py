"""The requester side of the queue: used by the control bot, its HTTP API, tests and benchmarks.

Replies do not cost a Redis connection each. Every command names this client's replies stream
(`Command.reply_to`); one listener task per client reads that stream with a blocking XREAD and hands
each message to the request waiting for it. A thousand requests in flight hold one connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from protocol import keys
from protocol.aio import cancel_and_wait
from protocol.errors import ErrorCode, RunnerUnavailable
from protocol.heartbeats import live_runners
from protocol.models import REPLY_ADAPTER, Command, ErrorInfo, Progress, Result, RunnerHealth

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], Awaitable[None]]
Reply = Progress | Result

# Replies for most operations come in milliseconds; builds and clones may take minutes.
DEFAULT_TIMEOUT_S = 60.0
BUILD_TIMEOUT_S = 1200.0
# A fresh heartbeat is trusted this long, so a command costs one heartbeat read, not one per check.
HEALTH_CACHE_S = 1.0
# While waiting for a reply, how often to ask whether any runner is still alive, and how long none
# may be before the wait gives up: a command queued just as the last runner stopped is answered
# RUNNER_UNAVAILABLE, not after its whole timeout, while a quick runner restart is waited out.
ALIVE_CHECK_S = 2.0
ALIVE_GRACE_S = 4.0
# The listener's XREAD blocks this long per call: well inside redis-py's socket timeout (5 s by
# default), so a quiet stream is no error.
LISTEN_BLOCK_MS = 1000
LISTEN_BATCH = 500
# Pool sizing: the listener holds one connection in its blocking read; requests borrow one for a
# command's XADD or a heartbeat GET, for milliseconds. A full pool makes a caller wait up to
# POOL_WAIT_S for a free connection rather than fail at once (redis-py's default pool raises).
POOL_SIZE = 32
POOL_WAIT_S = 10.0


def blocking_pool(url: str, *, size: int = POOL_SIZE, wait: float = POOL_WAIT_S, **kwargs: Any) -> Redis:
    """A client whose pool waits for a free connection instead of raising MaxConnectionsError."""
    pool = BlockingConnectionPool.from_url(url, max_connections=size, timeout=wait, **kwargs)
    return Redis(connection_pool=pool)


class RunnerClient:
    """Sends commands on the stream; one listener routes their replies to the waiting requests."""

    def __init__(self, redis: Redis, *, heartbeat_max_age: float = keys.HEARTBEAT_TTL) -> None:
        self.redis = redis
        self.heartbeat_max_age = heartbeat_max_age
        self.reply_to = keys.replies(uuid.uuid4().hex)
        self._fresh: tuple[float, RunnerHealth] | None = None  # (read at, a fresh heartbeat)
        self._mailboxes: dict[str, asyncio.Queue[Reply | RedisError]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._last_id = "0-0"  # the stream is this client's alone, so from its very start
        self._closed = False

    async def health(self) -> RunnerHealth | None:
        """A fresh heartbeat of any live runner (one with Docker up if there is one), else None.
        A fresh one is reused for a second."""
        now = time.monotonic()
        if self._fresh is not None and now - self._fresh[0] < HEALTH_CACHE_S:
            return self._fresh[1]
        runners = await live_runners(self.redis, self.heartbeat_max_age)
        if not runners:
            self._fresh = None
            return None
        health = runners[0]
        self._fresh = (now, health)
        return health

    def expect(self, cmd: Command) -> Command:
        """The command addressed to this client's replies stream, with a mailbox open for them.

        For callers that put a command on the stream themselves (tests); `submit` does this.
        """
        self._mailboxes.setdefault(cmd.request_id, asyncio.Queue())
        self._ensure_listener()
        return cmd.model_copy(update={"reply_to": self.reply_to})

    async def submit(self, cmd: Command, payload: bytes | None = None) -> None:
        """Enqueue a command; raise RunnerUnavailable at once when the heartbeat is stale."""
        if await self.health() is None:
            raise RunnerUnavailable()
        addressed = self.expect(cmd)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                if payload is not None:
                    pipe.set(keys.upload(cmd.request_id), payload, ex=keys.UPLOAD_TTL)
                pipe.xadd(keys.COMMANDS_STREAM, {"data": addressed.model_dump_json()})
                await pipe.execute()
        except BaseException:
            self._mailboxes.pop(cmd.request_id, None)
            raise
        log.debug("submitted %s owner=%s bot=%s request=%s", cmd.op, cmd.owner, cmd.name, cmd.request_id)

    async def wait(
        self,
        request_id: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        on_progress: ProgressCallback | None = None,
    ) -> Result:
        """Wait for the final Result of a request, passing Progress messages to on_progress.

        Raises the RedisError that stopped the listener: the store failed, not the runner; and
        RunnerUnavailable once no runner has had a fresh heartbeat for ALIVE_GRACE_S (the command
        then expires unrun unless a runner returns before its deadline).
        """
        box = self._mailboxes.setdefault(request_id, asyncio.Queue())
        self._ensure_listener()
        deadline = time.monotonic() + timeout
        gone_since: float | None = None  # when no runner was first seen alive during this wait
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return _timed_out(request_id)
                try:
                    msg = await asyncio.wait_for(box.get(), timeout=min(left, ALIVE_CHECK_S))
                except TimeoutError:
                    if await self.health() is not None:
                        gone_since = None
                    elif gone_since is None:
                        gone_since = time.monotonic()
                    elif time.monotonic() - gone_since >= ALIVE_GRACE_S:
                        raise RunnerUnavailable() from None
                    continue
                if isinstance(msg, RedisError):
                    raise msg
                if isinstance(msg, Result):
                    return msg
                if on_progress is not None:
                    await on_progress(msg)
        finally:
            self._mailboxes.pop(request_id, None)

    async def call(
        self,
        cmd: Command,
        payload: bytes | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        on_progress: ProgressCallback | None = None,
    ) -> Result:
        await self.submit(cmd, payload)
        return await self.wait(cmd.request_id, timeout=timeout, on_progress=on_progress)

    async def close(self) -> None:
        """Stop listening and drop the replies stream (the Redis client is the caller's to close)."""
        # The flag too, not the cancel alone: redis-py may drop a cancel (protocol/aio.py).
        self._closed = True
        if self._listener is not None:
            await cancel_and_wait([self._listener])
            self._listener = None
        try:
            await self.redis.delete(self.reply_to)
        except RedisError as e:
            log.debug("replies stream %s not dropped: %s", self.reply_to, e)

    # -- the one listener ---------------------------------------------------------------------
    def _ensure_listener(self) -> None:
        task = self._listener
        loop = asyncio.get_running_loop()
        if task is None or task.done() or task.get_loop() is not loop:
            self._listener = loop.create_task(self._listen(), name=f"replies {self.reply_to}")

    async def _listen(self) -> None:
        """Route replies until no request waits; a later request starts a new listener."""
        while self._mailboxes and not self._closed:
            try:
                resp: Any = await self.redis.xread(
                    {self.reply_to: self._last_id}, count=LISTEN_BATCH, block=LISTEN_BLOCK_MS
                )
            except RedisError as e:
                # redis-py has retried already: tell every waiting request the store failed.
                log.warning("replies stream %s unreadable: %s", self.reply_to, e)
                for box in self._mailboxes.values():
                    box.put_nowait(e)
                await asyncio.sleep(0.5)
                continue
            for _stream, entries in resp or []:
                for entry_id, fields in entries:
                    self._last_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                    self._route(fields)
        if self._listener is asyncio.current_task():
            self._listener = None

    def _route(self, fields: dict[Any, Any]) -> None:
        raw = fields.get(b"data") or fields.get("data")
        try:
            msg = REPLY_ADAPTER.validate_json(raw or b"")
        except ValueError:
            log.error("malformed reply on %s dropped", self.reply_to)
            return
        box = self._mailboxes.get(msg.request_id)
        if box is not None:  # else: its requester gave up waiting
            box.put_nowait(msg)


def _timed_out(request_id: str) -> Result:
    return Result(
        request_id=request_id,
        ok=False,
        error=ErrorInfo(
            code=ErrorCode.TIMEOUT,
            message="the runner did not answer in time; check the bot's status shortly",
        ),
    )
