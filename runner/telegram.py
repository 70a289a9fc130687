"""The runner's own calls to the Bot API, with a bot's token that only the runner may read."""

from __future__ import annotations

import logging

import httpx

from protocol.errors import BotrunnerError, ErrorCode, ErrorParams

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(10.0, connect=5.0)


async def delete_webhook(api_url: str, key: str, token: str) -> None:
    """Remove the webhook on token, so the bot that holds it can poll."""
    url = f"{api_url.rstrip('/')}/bot{token}/deleteWebhook"
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            resp = await client.post(url)
    except httpx.HTTPError as e:
        raise BotrunnerError(
            "Telegram could not be reached to remove the webhook; try again shortly",
            code=ErrorCode.INTERNAL,
            params=ErrorParams(key=key),
        ) from e
    if resp.status_code in (401, 404):
        raise BotrunnerError(
            f"Telegram rejects the token in {key}: it is wrong or was revoked",
            code=ErrorCode.TOKEN_INVALID,
            field="env",
            params=ErrorParams(key=key),
        )
    if resp.status_code >= 400:
        raise BotrunnerError(
            f"Telegram refused to remove the webhook ({resp.status_code}); try again shortly",
            code=ErrorCode.INTERNAL,
            params=ErrorParams(key=key),
        )
    log.info("webhook removed for the token in %s", key)
