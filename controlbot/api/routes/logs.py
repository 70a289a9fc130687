"""A bot's logs: JSON lines by default, plain text on `Accept: text/plain`; `follow=true` streams."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from controlbot.api.calls import NDJSON
from controlbot.api.deps import Auth, Bot, Ctx
from controlbot.api.errors import ERROR_RESPONSES
from controlbot.api.follow import follow_lines
from controlbot.api.forms import ReleaseQuery, SinceQuery, TailQuery
from controlbot.api.schemas import LogLine
from protocol.timeparse import parse_since

router = APIRouter(prefix="/api/bots/{name}", tags=["logs"], responses=ERROR_RESPONSES)

LOG_TIME_HEADER = "X-Log-Time"

_LOGS_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            'One JSON object per line, `{"line": ...}`; the raw text on `Accept: text/plain`. '
            "With `follow=true` the answer stays open and new lines come as they are written "
            '(always NDJSON; an error ends it with one `{"error": {...}}` line).'
        ),
        "content": {
            NDJSON: {"schema": {"$ref": "#/components/schemas/LogLine"}},
            "text/plain": {"schema": {"type": "string"}},
        },
        "headers": {
            LOG_TIME_HEADER: {
                "description": "Server time (epoch seconds) the logs were read at: the next `since` to poll.",
                "schema": {"type": "string", "pattern": r"^[0-9]+\.[0-9]{6}$"},
            }
        },
    }
}


def prefers_text(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/plain" in accept and NDJSON not in accept


@router.get("/logs", response_class=Response, summary="A bot's last output lines", responses=_LOGS_RESPONSE)
async def get_logs(
    request: Request,
    ctx: Ctx,
    caller: Auth,
    bot: Bot,
    tail: TailQuery = 30,
    since: SinceQuery = None,
    follow: Annotated[bool, Query(description="Keep the answer open and stream new lines.")] = False,
    release: ReleaseQuery = None,
) -> Response:
    since_epoch = parse_since(since, strict=True) if since is not None else None
    if since_epoch is not None and since_epoch < 1:
        since_epoch = None  # since the epoch (or before): every line
    read_at = time.time()
    # Read before any stream opens, so a missing bot or a dead runner is still a plain error answer.
    text = await ctx.gateway.logs(caller, bot, tail=tail, since=since_epoch, release=release)
    if follow and release is None:  # a replaced release's output no longer grows
        lines = follow_lines(ctx.gateway, caller, bot, text.splitlines(), read_at)
        return StreamingResponse(lines, media_type=NDJSON, headers={"Cache-Control": "no-store"})
    headers = {LOG_TIME_HEADER: f"{read_at:.6f}"}
    if prefers_text(request):
        return Response(text, media_type="text/plain; charset=utf-8", headers=headers)
    body = "".join(LogLine(line=line).model_dump_json() + "\n" for line in text.splitlines())
    return Response(body, media_type=NDJSON, headers=headers)
