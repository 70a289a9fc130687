"""Sending commands to the runner on behalf of a caller, with an optional streamed progress answer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from redis.exceptions import RedisError

from controlbot.api.deps import ApiContext, Caller
from controlbot.api.errors import INTERNAL_MESSAGE, REDIS_DOWN_MESSAGE, ErrorDetail, status_for, wording
from controlbot.api.schemas import BotOut, ErrorEvent, ProgressEvent, ResultEvent
from protocol.client import DEFAULT_TIMEOUT_S, RunnerClient
from protocol.errors import BotrunnerError, ErrorCode
from protocol.models import Command, Op, Progress, Result

log = logging.getLogger(__name__)

NDJSON = "application/x-ndjson"


def command(caller: Caller, op: Op, **fields: Any) -> Command:
    return Command(op=op, owner=caller.owner, actor=caller.owner, admin=caller.admin, **fields)


def checked(result: Result) -> Result:
    """The result, or its error raised for the one error handler."""
    if not result.ok:
        if result.error is None:
            raise BotrunnerError("the runner reported a failure without a reason", code=ErrorCode.INTERNAL)
        raise result.error.to_exc()
    return result


async def call(
    ctx: ApiContext, cmd: Command, payload: bytes | None = None, *, timeout: float = DEFAULT_TIMEOUT_S
) -> Result:
    async def on_progress(p: Progress) -> None:
        log.debug("progress owner=%s bot=%s request=%s: %s", cmd.owner, cmd.name, cmd.request_id, p.stage)

    result = await ctx.runner.call(cmd, payload, timeout=timeout, on_progress=on_progress)
    return checked(result)


def bot_out(result: Result) -> BotOut:
    if result.bot is None:
        raise BotrunnerError("the runner answered without the bot's status", code=ErrorCode.INTERNAL)
    return BotOut(**result.bot.model_dump(), notice=result.notice)


def wants_stream(request: Request) -> bool:
    return NDJSON in request.headers.get("accept", "")


async def deploy(
    request: Request,
    ctx: ApiContext,
    cmd: Command,
    payload: bytes | None,
    *,
    timeout: float,
    status_code: int,
) -> BotOut | StreamingResponse:
    """Run a start/update: the bot's status at the end, or a stream of progress lines ending in it."""
    if not wants_stream(request):
        return bot_out(await call(ctx, cmd, payload, timeout=timeout))
    # Submitted before the stream opens, so an unavailable runner is still a plain 503.
    await ctx.runner.submit(cmd, payload)
    events = _events(ctx.runner, cmd, timeout)
    return StreamingResponse(events, media_type=NDJSON, status_code=status_code)


def _error_line(exc: BotrunnerError) -> str:
    detail = ErrorDetail(code=exc.code.value, message=wording(exc), field=exc.field, detail=exc.detail)
    return ErrorEvent(status=status_for(exc.code), error=detail).model_dump_json() + "\n"


async def _events(runner: RunnerClient, cmd: Command, timeout: float) -> AsyncIterator[str]:
    queue: asyncio.Queue[Progress | Result] = asyncio.Queue()

    async def wait() -> None:
        await queue.put(await runner.wait(cmd.request_id, timeout=timeout, on_progress=queue.put))

    waiter = asyncio.create_task(wait())
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                waiter.result()  # the waiter failed: raise its error below
                continue
            item = getter.result()
            if isinstance(item, Progress):
                yield ProgressEvent(stage=item.stage, message=item.message).model_dump_json() + "\n"
                continue
            yield ResultEvent(bot=bot_out(checked(item))).model_dump_json() + "\n"
            return
    except BotrunnerError as e:
        yield _error_line(e)
    except RedisError:
        yield _error_line(BotrunnerError(REDIS_DOWN_MESSAGE, code=ErrorCode.RUNNER_UNAVAILABLE))
    except Exception:
        log.exception(
            "streamed deploy failed owner=%s bot=%s request=%s", cmd.owner, cmd.name, cmd.request_id
        )
        yield _error_line(BotrunnerError(INTERNAL_MESSAGE, code=ErrorCode.INTERNAL))
    finally:
        waiter.cancel()
