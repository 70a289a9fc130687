"""Env values a command sets: what they may be (protocol.rules), and one poller per bot token.

Values arrive sealed (the control bot seals them) and records keep them sealed; the caps and the
token check need the plain values, which only the runner can open (runner/secrets.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from protocol.errors import BotrunnerError, ErrorCode, ErrorParams
from protocol.rules import check_env, is_bot_token
from runner.secrets import Secrets
from runner.state import StateStore

__all__ = ["check_env", "merged_env", "refuse_tokens_in_use", "seal_plain_records"]


def merged_env(
    secrets: Secrets,
    current: Mapping[str, str],
    changes: Mapping[str, str] | None,
    unset: Iterable[str] = (),
) -> dict[str, str]:
    """The env after a merge: the caps checked on its plain values, every value kept sealed (a
    command that carried plain values, from an older front end, gets them sealed here)."""
    env = {**current, **(changes or {})}
    for key in unset:
        env.pop(key, None)
    check_env(secrets.open_env(env))
    return secrets.seal_env(env)


async def refuse_tokens_in_use(
    store: StateStore, secrets: Secrets, owner: int, name: str, values: Mapping[str, str] | None
) -> None:
    """TOKEN_IN_USE when a bot token being set already serves another hosted bot, of any owner:
    Telegram lets one process poll a token, the other gets 409 Conflict. Another owner's bot is
    not named. Compared by the runner's HMAC: sealed values differ every time they are sealed."""
    opened = secrets.open_env(values or {})
    tokens = {secrets.hmac(v.strip()): key for key, v in opened.items() if is_bot_token(v)}
    if not tokens:
        return
    for rec in await store.all_records():
        if (rec.owner, rec.name) == (owner, name):
            continue
        for value in secrets.open_env(rec.env).values():
            key = tokens.get(secrets.hmac(value.strip())) if is_bot_token(value) else None
            if key is None:
                continue
            mine = rec.owner == owner
            where = f"your bot {rec.name!r}" if mine else "another hosted bot"
            raise BotrunnerError(
                f"the token in {key} already runs {where}; one token can have only one poller",
                code=ErrorCode.TOKEN_IN_USE,
                field="env",
                params=ErrorParams(key=key, path=rec.name if mine else None),
            )


async def seal_plain_records(store: StateStore, secrets: Secrets) -> int:
    """Seal what records written before sealing existed still hold in plain text; how many changed.
    (The AOF keeps the old values until Redis rewrites it: README, Secrets at rest.)"""
    changed = 0
    for rec in await store.all_records():
        env, url = secrets.seal_env(rec.env), secrets.seal_url(rec.git_url)
        if env != rec.env or url != rec.git_url:
            rec.env, rec.git_url = env, url
            await store.save(rec)
            changed += 1
    return changed
