"""The API's answers to a deploy: the bot's status at the end, or its progress streamed as NDJSON."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from fastapi import Request
from fastapi.responses import StreamingResponse

from controlbot.api.deps import ApiContext
from controlbot.api.errors import INTERNAL_MESSAGE, ErrorDetail, status_for
from controlbot.api.schemas import BotOut, ErrorEvent, HealthOut, ProgressEvent, ResultEvent
from controlbot.gateway import Caller, DeployRequest, Target
from protocol.errors import BotrunnerError, ErrorCode
from protocol.models import BotStatus, Progress, Result, notes_text

log = logging.getLogger(__name__)

NDJSON = "application/x-ndjson"


def bot_out(bot: BotStatus, result: Result | None = None) -> BotOut:
    notes = result.notes if result is not None else []
    return BotOut(**bot.model_dump(), notes=notes, notice=notes_text(notes))


def result_out(result: Result) -> BotOut:
    if result.bot is None:
        raise BotrunnerError("the runner answered without the bot's status", code=ErrorCode.INTERNAL)
    return bot_out(result.bot, result)


def wants_stream(request: Request) -> bool:
    return NDJSON in request.headers.get("accept", "")


# `?wait=health`: how long the API waits for the health gate's verdict after the bot runs.
HEALTH_WAIT_S = 300.0


async def with_health(ctx: ApiContext, caller: Caller, target: Target, result: Result) -> BotOut:
    """The deploy's answer after its health gate ended: the bot as it is then, and the verdict."""
    if result.bot is None or not result.bot.checking:
        return result_out(result)
    event = await ctx.gateway.health_verdict(result.request_id, HEALTH_WAIT_S)
    if event is None:
        return result_out(result).model_copy(update={"health": HealthOut(release=result.bot.release)})
    health = HealthOut.model_validate(event.model_dump(include=set(HealthOut.model_fields)))
    now = await ctx.gateway.status(caller, target)
    return bot_out(now, result).model_copy(update={"health": health})


async def deploy(
    request: Request,
    ctx: ApiContext,
    caller: Caller,
    req: DeployRequest,
    *,
    status_code: int,
    wait_health: bool = False,
) -> BotOut | StreamingResponse:
    """Run a start/update: the bot's status at the end, or a stream of progress lines ending in it."""
    if not wants_stream(request):
        result = await ctx.gateway.deploy(caller, req)
        return await with_health(ctx, caller, req.target, result) if wait_health else result_out(result)
    # Checked before the stream opens, so an unavailable runner is still a plain 503.
    await ctx.gateway.precheck(req)
    return StreamingResponse(_events(ctx, caller, req), media_type=NDJSON, status_code=status_code)


def _error_line(exc: BotrunnerError) -> str:
    return ErrorEvent(status=status_for(exc.code), error=ErrorDetail.of(exc)).model_dump_json() + "\n"


async def _events(ctx: ApiContext, caller: Caller, req: DeployRequest) -> AsyncIterator[str]:
    queue: asyncio.Queue[Progress | Result] = asyncio.Queue()

    async def run() -> None:
        await queue.put(await ctx.gateway.deploy(caller, req, on_progress=queue.put))

    task = asyncio.create_task(run())
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                task.result()  # the deploy failed: raise its error below
                continue
            item = getter.result()
            if isinstance(item, Progress):
                yield ProgressEvent(stage=item.stage, message=item.message).model_dump_json() + "\n"
                continue
            yield ResultEvent(bot=result_out(item)).model_dump_json() + "\n"
            return
    except BotrunnerError as e:
        yield _error_line(e)
    except Exception:
        log.exception("streamed deploy failed owner=%s bot=%s", req.target.owner, req.target.name)
        yield _error_line(BotrunnerError(INTERNAL_MESSAGE, code=ErrorCode.INTERNAL))
    finally:
        task.cancel()
