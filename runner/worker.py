"""The queue consumer: reads commands from the stream, runs them once, replies, then acks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import redis.exceptions
from redis.asyncio import Redis

from protocol import keys
from protocol.aio import cancel_and_wait, task_stack
from protocol.errors import BotrunnerError, ErrorCode
from protocol.models import Command, ErrorInfo, Op, Progress, Result, Stage
from runner import faults, scheduling
from runner.operations import Operations
from runner.settings import Settings

log = logging.getLogger(__name__)

CLAIM_EVERY_S = 5.0
READ_ONLY = scheduling.READ_ONLY

# Keep our own in-flight entries from looking abandoned: XCLAIM to ourselves resets their idle
# time. Only entries still ours are touched, so one another runner took (we stalled past the idle
# time) stays with it; JUSTID leaves the delivery count alone.
_REFRESH_LUA = """
local kept = 0
for i, id in ipairs(ARGV) do
  if i > 1 then
    local p = redis.call('XPENDING', KEYS[1], KEYS[2], id, id, 1)
    if p[1] and p[1][2] == ARGV[1] then
      redis.call('XCLAIM', KEYS[1], KEYS[2], ARGV[1], 0, id, 'JUSTID')
      kept = kept + 1
    end
  end
end
return kept
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Worker:
    def __init__(self, settings: Settings, redis: Redis, ops: Operations) -> None:
        self.settings = settings
        self.redis = redis
        self.ops = ops
        self.consumer = settings.runner_id
        self.scheduler = scheduling.Scheduler(
            redis,
            concurrency=settings.runner_concurrency,
            per_owner=settings.runner_max_inflight_per_user,
            lease_ms=settings.runner_claim_idle_ms,
            holder=settings.runner_id,
        )
        self._inflight: set[asyncio.Task[None]] = set()

    async def setup(self) -> None:
        try:
            await self.redis.xgroup_create(keys.COMMANDS_STREAM, keys.COMMANDS_GROUP, id="0", mkstream=True)
        except redis.exceptions.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    async def run(self, stopping: asyncio.Event) -> None:
        """Consume until stopping is set; survive Redis outages with backoff."""
        delay = 0.5
        own_pending = True  # first, what this consumer received before a crash
        last_claim = last_refresh = 0.0
        # A dead runner's entries are claimed within RUNNER_CLAIM_IDLE_MS (plus this), and our own
        # are refreshed three times per idle period, so a long build is never taken from us.
        every = self.settings.runner_claim_idle_ms / 3000
        while not stopping.is_set():
            try:
                await self.setup()
                if own_pending:
                    await self._read("0", block=None)
                    own_pending = False
                if time.monotonic() - last_refresh > every:
                    last_refresh = time.monotonic()
                    await self._refresh_own()
                if time.monotonic() - last_claim > min(CLAIM_EVERY_S, every):
                    last_claim = time.monotonic()
                    await self._claim()
                await self._read(">", block=int(min(1000, every * 1000)))
                delay = 0.5
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as e:
                log.warning("redis unavailable (%s); retrying in %.1f s", e, delay)
                own_pending = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _read(self, last_id: str, block: int | None) -> None:
        # Commands waiting for their bot or owner are in flight too; read at least one at a time
        # anyway, so one owner's backlog never stops other owners' commands from being read.
        free = max(1, self.settings.runner_concurrency - len(self._inflight))
        resp: Any = await self.redis.xreadgroup(
            keys.COMMANDS_GROUP, self.consumer, {keys.COMMANDS_STREAM: last_id}, count=free, block=block
        )
        for _stream, entries in resp or []:
            for entry_id, fields in entries:
                self._spawn(entry_id, fields, redelivered=last_id != ">")

    async def _claim(self) -> None:
        """Take over commands a dead consumer received but never acknowledged."""
        _next, entries, *_ = await self.redis.xautoclaim(
            keys.COMMANDS_STREAM,
            keys.COMMANDS_GROUP,
            self.consumer,
            min_idle_time=self.settings.runner_claim_idle_ms,
            start_id="0-0",
            count=50,
        )
        for entry_id, fields in entries:
            if fields:
                self._spawn(entry_id, fields, redelivered=True)

    async def _refresh_own(self) -> None:
        ids = [t.get_name() for t in self._inflight]
        if ids:
            await self.redis.eval(
                _REFRESH_LUA, 2, keys.COMMANDS_STREAM, keys.COMMANDS_GROUP, self.consumer, *ids
            )

    def _spawn(self, entry_id: Any, fields: dict[Any, Any], *, redelivered: bool) -> None:
        eid = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        if any(t.get_name() == eid for t in self._inflight):
            return
        task = asyncio.create_task(self._process(eid, fields, redelivered), name=eid)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def drain(self, timeout: float) -> None:
        """On shutdown: let in-flight commands finish for a while, then hand them back."""
        if not self._inflight:
            return
        log.info("waiting up to %.0f s for %d command(s) in flight", timeout, len(self._inflight))
        _done, pending = await asyncio.wait(set(self._inflight), timeout=timeout)
        for task in pending:
            log.warning("command %s still running at shutdown:\n%s", task.get_name(), task_stack(task))
        await cancel_and_wait(pending, timeout=5)  # not acked: redelivered to the next runner

    async def _process(self, entry_id: str, fields: dict[Any, Any], redelivered: bool) -> None:
        raw = fields.get(b"data") or fields.get("data")
        try:
            cmd = Command.model_validate_json(raw or b"")
        except ValueError:
            log.error("dropping malformed command entry %s", entry_id)
            await self._ack(entry_id)
            return
        ctx = f"op={cmd.op} owner={cmd.owner} bot={cmd.name} request={cmd.request_id}"
        async with contextlib.AsyncExitStack() as admitted:
            # A fresh command waits for its turn until its deadline at most, then is answered
            # EXPIRED. A redelivered one may have taken effect already: it waits as long as it takes.
            wait = None if redelivered else max(0.0, cmd.deadline - time.time())
            late = False
            try:
                async with asyncio.timeout(wait):
                    await admitted.enter_async_context(self.scheduler.admit(cmd))
            except TimeoutError:
                late = True
            stored = await self.redis.get(keys.result(cmd.request_id))
            if stored is not None:  # done before a crash, here or elsewhere: reply again, once
                log.info("redelivered, already done: %s", ctx)
                await self._reply(cmd.request_id, _text(stored), reply_to=cmd.reply_to)
                await self._ack(entry_id)
                return
            if late or (not redelivered and cmd.deadline < time.time()):
                log.info("discarding expired command: %s", ctx)
                err = ErrorInfo(code=ErrorCode.EXPIRED, message="the command waited too long and was dropped")
                await self._finish(
                    entry_id, Result(request_id=cmd.request_id, ok=False, error=err), reply_to=cmd.reply_to
                )
                return
            result = await self._execute(cmd, ctx)
            if delay := faults.ack_delay():
                log.warning("fault injection: pausing %.1f s before ack: %s", delay, ctx)
                await asyncio.sleep(delay)
            await self._finish(entry_id, result, cmd.op, reply_to=cmd.reply_to)

    async def _execute(self, cmd: Command, ctx: str) -> Result:
        async def progress(stage: Stage, message: str) -> None:
            msg = Progress(request_id=cmd.request_id, stage=stage, message=message)
            await self._reply(cmd.request_id, msg.model_dump_json(), reply_to=cmd.reply_to)

        started = time.perf_counter()
        try:
            result = await self.ops.handle(cmd, progress)
        except BotrunnerError as e:
            log.info("%s failed: %s", ctx, e.code)
            result = Result(request_id=cmd.request_id, ok=False, error=ErrorInfo.from_exc(e))
        except (asyncio.CancelledError, redis.exceptions.ConnectionError):
            raise
        except Exception:
            log.exception("%s crashed", ctx)
            result = Result(
                request_id=cmd.request_id,
                ok=False,
                error=ErrorInfo(
                    code=ErrorCode.INTERNAL,
                    message="the runner hit an internal error; it has been logged, try again",
                ),
            )
        log.info("%s done ok=%s in %.1f ms", ctx, result.ok, (time.perf_counter() - started) * 1000)
        return result

    async def _reply(self, request_id: str, payload: str, *, reply_to: str | None) -> None:
        """One Progress or Result onto the requester's replies stream (none: nobody listens)."""
        if reply_to is None:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            self._reply_into(pipe, payload, reply_to)
            await pipe.execute()

    @staticmethod
    def _reply_into(pipe: Any, payload: str, reply_to: str) -> None:
        # Capped and expiring: a requester that died leaves nothing behind for long.
        pipe.xadd(reply_to, {"data": payload}, maxlen=keys.REPLIES_MAXLEN, approximate=True)
        pipe.expire(reply_to, keys.REPLIES_TTL)

    async def _finish(
        self, entry_id: str, result: Result, op: Op | None = None, *, reply_to: str | None
    ) -> None:
        """Remember the result (for redelivery), reply and ack, in one transaction."""
        payload = result.model_dump_json()
        async with self.redis.pipeline(transaction=True) as pipe:
            if op not in READ_ONLY:  # only effects need remembering for redelivery
                pipe.set(keys.result(result.request_id), payload, ex=keys.RESULT_TTL)
            if reply_to is not None:
                self._reply_into(pipe, payload, reply_to)
            pipe.delete(keys.upload(result.request_id))
            self._ack_into(pipe, entry_id)
            await pipe.execute()

    async def _ack(self, entry_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            self._ack_into(pipe, entry_id)
            await pipe.execute()

    @staticmethod
    def _ack_into(pipe: Any, entry_id: str) -> None:
        # Acked entries are deleted too: env values never linger in the stream.
        pipe.xack(keys.COMMANDS_STREAM, keys.COMMANDS_GROUP, entry_id)
        pipe.xdel(keys.COMMANDS_STREAM, entry_id)
