"""Env values a command sets: what they may be (protocol.rules) and a token another bot already polls."""

from __future__ import annotations

from protocol.models import Note, NoteKind
from protocol.rules import check_env, is_bot_token
from runner.state import BotRecord, StateStore

__all__ = ["check_env", "shared_tokens"]


async def shared_tokens(store: StateStore, rec: BotRecord, values: dict[str, str] | None) -> list[Note]:
    """A note for each token-shaped value just set that another of the owner's bots already uses:
    two bots polling one token get 409 Conflict from Telegram."""
    tokens = {key: value.strip() for key, value in (values or {}).items() if is_bot_token(value)}
    if not tokens:
        return []
    others = [r for r in await store.records(rec.owner) if r.name != rec.name]
    notes = []
    for key, token in sorted(tokens.items()):
        bots = sorted(r.name for r in others if token in (v.strip() for v in r.env.values()))
        if bots:
            notes.append(Note(kind=NoteKind.TOKEN_SHARED, key=key, bots=bots))
    return notes
