"""Env values a command sets: what they may be (protocol.rules), and one poller per bot token."""

from __future__ import annotations

import hashlib

from protocol.errors import BotrunnerError, ErrorCode, ErrorParams
from protocol.rules import check_env, is_bot_token
from runner.state import StateStore

__all__ = ["check_env", "fingerprint", "refuse_tokens_in_use"]


def fingerprint(value: str) -> str:
    """What two env values are compared by, never the values themselves."""
    return hashlib.sha256(value.strip().encode()).hexdigest()


async def refuse_tokens_in_use(
    store: StateStore, owner: int, name: str, values: dict[str, str] | None
) -> None:
    """TOKEN_IN_USE when a bot token being set already serves another hosted bot, of any owner:
    Telegram lets one process poll a token, the other gets 409 Conflict. Another owner's bot is
    not named."""
    tokens = {fingerprint(v): key for key, v in (values or {}).items() if is_bot_token(v)}
    if not tokens:
        return
    for rec in await store.all_records():
        if (rec.owner, rec.name) == (owner, name):
            continue
        for value in rec.env.values():
            key = tokens.get(fingerprint(value)) if is_bot_token(value) else None
            if key is None:
                continue
            where = f"your bot {rec.name!r}" if rec.owner == owner else "another hosted bot"
            raise BotrunnerError(
                f"the token in {key} already runs {where}; one token can have only one poller",
                code=ErrorCode.TOKEN_IN_USE,
                field="env",
                params=ErrorParams(key=key, path=rec.name if rec.owner == owner else None),
            )
