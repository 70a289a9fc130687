"""Env values a command sets: what they may be (protocol.rules) and a token another bot already polls.

Values arrive sealed (the control bot seals them) and records keep them sealed; the caps and the
token check need the plain values, which only the runner can open (runner/secrets.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from protocol.models import Note, NoteKind
from protocol.rules import check_env, is_bot_token
from runner.secrets import Secrets
from runner.state import BotRecord, StateStore

__all__ = ["check_env", "merged_env", "shared_tokens"]


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


async def shared_tokens(
    store: StateStore, secrets: Secrets, rec: BotRecord, values: Mapping[str, str] | None
) -> list[Note]:
    """A note for each token-shaped value just set that another of the owner's bots already uses:
    two bots polling one token get 409 Conflict from Telegram."""
    opened = secrets.open_env(values or {})
    tokens = {key: value.strip() for key, value in opened.items() if is_bot_token(value)}
    if not tokens:
        return []
    others = [r for r in await store.records(rec.owner) if r.name != rec.name]
    # Compared by the runner's HMAC: sealed values differ every time they are sealed.
    used = {r.name: {secrets.hmac(v.strip()) for v in secrets.open_env(r.env).values()} for r in others}
    notes = []
    for key, token in sorted(tokens.items()):
        mac = secrets.hmac(token)
        bots = sorted(name for name, macs in used.items() if mac in macs)
        if bots:
            notes.append(Note(kind=NoteKind.TOKEN_SHARED, key=key, bots=bots))
    return notes


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
