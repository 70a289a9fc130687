"""`GET /api/bots/{name}/logs?follow=true`: a bot's lines as NDJSON, as they are written.

The runner answers logs per command, so the stream polls it with `since` once per
FOLLOW_INTERVAL_S on the server side: one connection for the client, and no missed or repeated
line (`protocol.logtail.drop_overlap`). The stream ends on an error (one `{"error": ...}` line),
after FOLLOW_MAX_S, or when the client goes away (Starlette cancels the generator).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from controlbot.api.errors import INTERNAL_MESSAGE, ErrorBody, ErrorDetail
from controlbot.api.schemas import LogLine
from controlbot.gateway import Caller, Gateway, Target
from protocol.errors import BotrunnerError, ErrorCode
from protocol.logtail import FOLLOW_MARGIN_S, FOLLOW_TAIL, REMEMBERED_LINES, drop_overlap

log = logging.getLogger(__name__)

FOLLOW_INTERVAL_S = 1.0
# A reconnecting client resumes with `since`; an unbounded stream would pin a poller forever.
FOLLOW_MAX_S = 3600.0


def _line(text: str) -> str:
    return LogLine(line=text).model_dump_json() + "\n"


def _error(exc: BotrunnerError) -> str:
    return ErrorBody(error=ErrorDetail.of(exc)).model_dump_json() + "\n"


async def follow_lines(
    gateway: Gateway, caller: Caller, bot: Target, first: list[str], read_at: float
) -> AsyncIterator[str]:
    """The lines already read, then each new one as a poll finds it."""
    for text in first:
        yield _line(text)
    seen = first[-REMEMBERED_LINES:]
    ends = time.monotonic() + FOLLOW_MAX_S
    try:
        while time.monotonic() < ends:
            await asyncio.sleep(FOLLOW_INTERVAL_S)
            mark = read_at - FOLLOW_MARGIN_S
            read_at = time.time()
            new = (await gateway.logs(caller, bot, tail=FOLLOW_TAIL, since=mark)).splitlines()
            fresh = drop_overlap(seen, new)
            for text in fresh:
                yield _line(text)
            seen = (seen + fresh)[-REMEMBERED_LINES:]
    except BotrunnerError as e:
        yield _error(e)
    except Exception:
        log.exception("log follow failed owner=%s bot=%s", bot.owner, bot.name)
        yield _error(BotrunnerError(INTERNAL_MESSAGE, code=ErrorCode.INTERNAL))
