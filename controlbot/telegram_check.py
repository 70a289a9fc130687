"""What Telegram says of the bot tokens a deploy carries, asked while the control bot still holds
the plain values: valid (and the bot's @username), rejected, or unknown because Telegram cannot be
reached. A webhook on a token is reported too: a polling bot gets no updates while it is set."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import httpx

from protocol.errors import BotrunnerError, ErrorCode, ErrorParams
from protocol.models import Note, NoteKind
from protocol.rules import is_bot_token

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(5.0, connect=3.0)


@dataclass(frozen=True)
class TokenCheck:
    usernames: dict[str, str] = field(default_factory=dict)  # env key -> the bot's @username
    notes: list[Note] = field(default_factory=list)


NO_TOKENS = TokenCheck()


def token_invalid(key: str) -> BotrunnerError:
    return BotrunnerError(
        f"Telegram rejects the token in {key}: it is wrong or was revoked; get a new one from "
        "@BotFather. Nothing was deployed.",
        code=ErrorCode.TOKEN_INVALID,
        field="env",
        params=ErrorParams(key=key),
    )


class TokenChecker:
    """getMe and getWebhookInfo for each token-shaped env value, all at once."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url.rstrip("/")

    async def check(self, env: dict[str, str] | None) -> TokenCheck:
        tokens = {key: value.strip() for key, value in (env or {}).items() if is_bot_token(value)}
        if not tokens:
            return NO_TOKENS
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            found = await asyncio.gather(*(self._one(client, k, t) for k, t in sorted(tokens.items())))
        usernames = {key: name for key, name, _ in found if name}
        return TokenCheck(usernames=usernames, notes=[note for *_, notes in found for note in notes])

    async def _one(self, client: httpx.AsyncClient, key: str, token: str) -> tuple[str, str, list[Note]]:
        try:
            me = await client.get(f"{self.api_url}/bot{token}/getMe")
            if me.status_code in (401, 404):
                raise token_invalid(key)
            me.raise_for_status()
            username = str(me.json()["result"].get("username") or "")
            hook = await client.get(f"{self.api_url}/bot{token}/getWebhookInfo")
            hook.raise_for_status()
            webhook = bool(hook.json()["result"].get("url"))
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
            log.warning("could not check the token in %s with Telegram: %s", key, type(e).__name__)
            return key, "", [Note(kind=NoteKind.TOKEN_UNVERIFIED, key=key)]
        return key, username, [Note(kind=NoteKind.WEBHOOK_SET, key=key)] if webhook else []
