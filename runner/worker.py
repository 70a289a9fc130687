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
from protocol.errors import BotrunnerError, ErrorCode
from protocol.models import Command, ErrorInfo, Op, Progress, Result, Stage
from runner.operations import Operations
from runner.settings import Settings

log = logging.getLogger(__name__)

CLAIM_EVERY_S = 5.0
READ_ONLY = frozenset({Op.STATUS, Op.LOGS, Op.LIST, Op.SYSTEM, Op.RELEASES})


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Worker:
    def __init__(self, settings: Settings, redis: Redis, ops: Operations) -> None:
        self.settings = settings
        self.redis = redis
        self.ops = ops
        self.consumer = settings.runner_id
        self.locks: dict[tuple[int, str], asyncio.Lock] = {}
        self._slots = asyncio.Semaphore(settings.runner_concurrency)
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
        last_claim = 0.0
        while not stopping.is_set():
            try:
                await self.setup()
                if own_pending:
                    await self._read("0", block=None)
                    own_pending = False
                if time.monotonic() - last_claim > CLAIM_EVERY_S:
                    last_claim = time.monotonic()
                    await self._claim()
                await self._read(">", block=1000)
                delay = 0.5
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as e:
                log.warning("redis unavailable (%s); retrying in %.1f s", e, delay)
                own_pending = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _read(self, last_id: str, block: int | None) -> None:
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
            task.cancel()  # not acked: redelivered to the next runner
        if pending:
            await asyncio.wait(pending, timeout=5)

    async def _process(self, entry_id: str, fields: dict[Any, Any], redelivered: bool) -> None:
        raw = fields.get(b"data") or fields.get("data")
        try:
            cmd = Command.model_validate_json(raw or b"")
        except ValueError:
            log.error("dropping malformed command entry %s", entry_id)
            await self._ack(entry_id)
            return
        ctx = f"op={cmd.op} owner={cmd.owner} bot={cmd.name} request={cmd.request_id}"
        async with self._slots:
            stored = await self.redis.get(keys.result(cmd.request_id))
            if stored is not None:  # done before a crash: reply again, don't act twice
                log.info("redelivered, already done: %s", ctx)
                await self._reply(cmd.request_id, _text(stored))
                await self._ack(entry_id)
                return
            if not redelivered and cmd.deadline < time.time():
                log.info("discarding expired command: %s", ctx)
                err = ErrorInfo(code=ErrorCode.EXPIRED, message="the command waited too long and was dropped")
                await self._finish(entry_id, Result(request_id=cmd.request_id, ok=False, error=err))
                return
            result = await self._execute(cmd, ctx)
            if self.settings.runner_debug_ack_delay:
                log.warning(
                    "fault injection: pausing %.1f s before ack: %s",
                    self.settings.runner_debug_ack_delay,
                    ctx,
                )
                await asyncio.sleep(self.settings.runner_debug_ack_delay)
            await self._finish(entry_id, result, cmd.op)

    async def _execute(self, cmd: Command, ctx: str) -> Result:
        async def progress(stage: Stage, message: str) -> None:
            msg = Progress(request_id=cmd.request_id, stage=stage, message=message)
            await self._reply(cmd.request_id, msg.model_dump_json())

        started = time.perf_counter()
        lock = self.locks.setdefault((cmd.owner, cmd.name or ""), asyncio.Lock()) if cmd.name else None
        try:
            async with lock or contextlib.nullcontext():
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

    async def _reply(self, request_id: str, payload: str) -> None:
        key = keys.reply(request_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(key, payload)
            pipe.expire(key, keys.REPLY_TTL)
            await pipe.execute()

    async def _finish(self, entry_id: str, result: Result, op: Op | None = None) -> None:
        """Remember the result (for redelivery), reply and ack, in one transaction."""
        payload = result.model_dump_json()
        async with self.redis.pipeline(transaction=True) as pipe:
            if op not in READ_ONLY:  # only effects need remembering for redelivery
                pipe.set(keys.result(result.request_id), payload, ex=keys.RESULT_TTL)
            pipe.rpush(keys.reply(result.request_id), payload)
            pipe.expire(keys.reply(result.request_id), keys.REPLY_TTL)
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
