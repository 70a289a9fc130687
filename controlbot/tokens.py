"""Personal API tokens: issued in chat, shown once, stored only as a sha256 hash in Redis."""

from __future__ import annotations

import hashlib
import re
import secrets

from redis.asyncio import Redis

from protocol import keys

TOKEN_PREFIX = "brt_"
# Tokens we issue look like this; anything else is refused before Redis is asked.
_TOKEN_RE = re.compile(r"^brt_[A-Za-z0-9_-]{43}$")

# Atomic so that two concurrent issues (or an issue racing a revoke) never leave a second valid token.
# KEYS[1] = api_token_owner(owner); ARGV[1] = prefix of api_token keys, ARGV[2] = new hash or "",
# ARGV[3] = owner id. Returns 1 when an old token was revoked.
_SWAP_SCRIPT = """
local old = redis.call('GET', KEYS[1])
if old then redis.call('DEL', ARGV[1] .. old) end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('SET', ARGV[1] .. ARGV[2], ARGV[3])
end
if old then return 1 end
return 0
"""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    # 32 random bytes -> 43 urlsafe characters.
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def _swap(redis: Redis, owner: int, token_hash: str) -> bool:
    script = redis.register_script(_SWAP_SCRIPT)
    result = await script(keys=[keys.api_token_owner(owner)], args=[keys.api_token(""), token_hash, owner])
    return bool(result)


async def issue(redis: Redis, owner: int) -> str:
    """Mint a token for owner, revoking the previous one; the plain token is returned only here."""
    token = new_token()
    await _swap(redis, owner, hash_token(token))
    return token


async def revoke(redis: Redis, owner: int) -> bool:
    """Invalidate owner's token; True when there was one."""
    return await _swap(redis, owner, "")


async def resolve(redis: Redis, token: str) -> int | None:
    """The owner id a token belongs to, or None for a malformed, wrong or revoked token."""
    if not _TOKEN_RE.fullmatch(token):
        return None
    raw = await redis.get(keys.api_token(hash_token(token)))
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None
