"""Env values and git credentials travel and rest sealed: what both sides need to seal and to show.

A sealed value is `sealed:v1:` + base64 of a libsodium sealed box (X25519 + XSalsa20-Poly1305)
made with the runner's public key. Anyone holding the public key (the control bot) can seal;
only the runner, which holds the private key, can open. So Redis (records, the command stream,
replies, the AOF) only ever holds ciphertext. Sealed boxes are randomised: the same value seals
differently every time, so equality checks use the runner's HMAC (runner/secrets.py), never these.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from typing import Final

from nacl.public import PublicKey, SealedBox
from redis.asyncio import Redis

from protocol import keys

SEALED_PREFIX: Final = "sealed:v1:"
# Masks show at most this many leading characters; values this short or shorter show none.
MASK_SHOWN: Final = 3
MASK_SHORT: Final = 8
MASK_DOTS: Final = "•" * 6
# scheme://user[:password]@host: a git URL carrying credentials, sealed like an env value.
_USERINFO_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@\s]+@")
# The control bot re-reads the published key this often, so a replaced key pair is picked up.
PUBLIC_KEY_CACHE_S: Final = 60.0


def is_sealed(value: str) -> bool:
    return value.startswith(SEALED_PREFIX)


def decode_public_key(text: str | bytes) -> PublicKey:
    raw = base64.b64decode(text, validate=True)
    return PublicKey(raw)


def encode_public_key(key: PublicKey) -> str:
    return base64.b64encode(bytes(key)).decode()


def seal(value: str, key: PublicKey) -> str:
    """value sealed for the runner; an already sealed value stays as it is (sealing is idempotent)."""
    if is_sealed(value):
        return value
    box = SealedBox(key).encrypt(value.encode())
    return SEALED_PREFIX + base64.b64encode(box).decode()


def unwrap(value: str) -> bytes:
    """The sealed box inside a sealed value (ValueError when it is not one)."""
    try:
        return base64.b64decode(value.removeprefix(SEALED_PREFIX), validate=True)
    except binascii.Error as e:
        raise ValueError("not a sealed value") from e


def seal_env(env: dict[str, str], key: PublicKey) -> dict[str, str]:
    return {k: seal(v, key) for k, v in env.items()}


def has_userinfo(url: str | None) -> bool:
    return url is not None and _USERINFO_RE.match(url) is not None


def seal_git_url(url: str | None, key: PublicKey) -> str | None:
    """A git URL with `user[:password]@` is sealed; one without credentials stays readable."""
    return seal(url, key) if url is not None and has_userinfo(url) else url


def mask(value: str) -> str:
    """Enough to recognise a value, never enough to use it: at most its first 3 characters."""
    if len(value) <= MASK_SHORT:
        return MASK_DOTS
    return f"{value[:MASK_SHOWN]}•••"


class PublicKeyCache:
    """The runner's published public key (keys.RUNNER_PUBKEY), read once a minute at most."""

    def __init__(self, redis: Redis, ttl: float = PUBLIC_KEY_CACHE_S) -> None:
        self.redis = redis
        self.ttl = ttl
        self._cached: tuple[float, PublicKey] | None = None

    async def get(self) -> PublicKey | None:
        """None while no runner has published a key yet."""
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < self.ttl:
            return self._cached[1]
        raw = await self.redis.get(keys.RUNNER_PUBKEY)
        if raw is None:
            self._cached = None
            return None
        key = decode_public_key(raw)
        self._cached = (now, key)
        return key
