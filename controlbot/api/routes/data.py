"""A bot's /data: `GET` streams it as a .tar.gz, `PUT` replaces it with one (the bot restarts)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from controlbot.api.calls import bot_out
from controlbot.api.deps import Auth, Bot, Ctx
from controlbot.api.errors import ERROR_RESPONSES
from controlbot.api.schemas import BotOut
from protocol.errors import ErrorParams, InvalidSource

router = APIRouter(prefix="/api/bots/{name}", tags=["backups"], responses=ERROR_RESPONSES)

_ARCHIVE: dict[int | str, dict[str, Any]] = {
    200: {"description": "The bot's /data as a .tar.gz.", "content": {"application/gzip": {}}}
}
_BODY = {
    "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}},
    "required": True,
}


@router.get("/data", response_class=StreamingResponse, summary="Back up a bot's /data", responses=_ARCHIVE)
async def get_data(ctx: Ctx, caller: Auth, bot: Bot) -> StreamingResponse:
    info, data = await ctx.gateway.backup(caller, bot)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 1 << 20):
            yield data[i : i + (1 << 20)]

    headers = {"Content-Disposition": f'attachment; filename="{info.filename}"'}
    return StreamingResponse(chunks(), media_type="application/gzip", headers=headers)


@router.put(
    "/data", response_model=BotOut, summary="Replace a bot's /data", openapi_extra={"requestBody": _BODY}
)
async def put_data(request: Request, ctx: Ctx, caller: Auth, bot: Bot) -> BotOut:
    """The body is a .tar.gz; the data it replaces is kept once (the chat's `/restore name undo`)."""
    cap = ctx.settings.max_backup_bytes
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > cap:
            raise InvalidSource(
                f"the archive is larger than {cap >> 20} MB",
                params=ErrorParams(reason="too_large", max_bytes=cap, size_bytes=len(body)),
            )
    return bot_out(await ctx.gateway.restore(caller, bot, bytes(body)))
