"""Opening sealed env values, and what the runner derives from them without showing them.

Only here are env values plain: to create a container, to check the env caps after a merge, to
mask them (status, logs, crash alerts), to HMAC them (status's `env_hmac`) and to find a token
that another bot already uses. Everything the runner writes to Redis carries them sealed or masked.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox

from protocol.errors import ErrorParams, InvalidEnv
from protocol.sealing import is_sealed, mask, seal, seal_git_url, unwrap

# Values shorter than this are not masked in log text: masking "1" or "on" everywhere in a log
# would garble it and hide nothing worth hiding.
MIN_MASKED_LEN = 4
_HMAC_CONTEXT = b"botrunner env hmac v1"


class Secrets:
    """The runner's private key at work: open, seal, HMAC and mask env values."""

    def __init__(self, key: PrivateKey) -> None:
        self.key = key
        self.public_key = key.public_key
        self._box = SealedBox(key)
        # Derived, so one key file holds everything; a different key pair gives unrelated HMACs.
        self._hmac_key = hmac.new(bytes(key), _HMAC_CONTEXT, hashlib.sha256).digest()

    @classmethod
    def ephemeral(cls) -> Secrets:
        """A throwaway key pair, for operations built without a key file (unit tests)."""
        return cls(PrivateKey.generate())

    def open(self, value: str, key: str = "?") -> str:
        """The plain value; a value that is not sealed (a record written before sealing) as it is."""
        if not is_sealed(value):
            return value
        try:
            return self._box.decrypt(unwrap(value)).decode()
        except (CryptoError, ValueError, UnicodeDecodeError) as e:
            raise InvalidEnv(
                f"the value of {key} was sealed with a key this runner does not hold; set it again",
                params=ErrorParams(key=key[:40], reason="sealed_key"),
            ) from e

    def open_env(self, env: Mapping[str, str]) -> dict[str, str]:
        return {k: self.open(v, k) for k, v in env.items()}

    def seal(self, value: str) -> str:
        return seal(value, self.public_key)

    def seal_env(self, env: Mapping[str, str]) -> dict[str, str]:
        """Every value sealed: what a record keeps, even when a command carried plain values."""
        return {k: self.seal(v) for k, v in env.items()}

    def seal_url(self, url: str | None) -> str | None:
        """A git URL as a record keeps it: sealed when it carries credentials."""
        return seal_git_url(url, self.public_key)

    def open_url(self, url: str | None) -> str | None:
        return None if url is None else self.open(url, "git_url")

    def hmac(self, value: str) -> str:
        """Deterministic per value, keyed by the runner: equal values compare equal, and nobody
        without the key file can test a guess against it (an unsalted hash allows that)."""
        return hmac.new(self._hmac_key, value.encode(), hashlib.sha256).hexdigest()

    def masker(self, env: Mapping[str, str]) -> Masker:
        """Masks what of env it can open: a value sealed with a lost key cannot leak either."""
        plain = []
        for key, value in env.items():
            try:
                plain.append(self.open(value, key))
            except InvalidEnv:
                continue
        return Masker(plain)


class Masker:
    """Replaces every env value of a bot (4 characters or longer) in text with its mask."""

    def __init__(self, values: Iterable[str]) -> None:
        plain = {v for v in values if len(v) >= MIN_MASKED_LEN}
        # Longest first: a value that contains another is masked whole.
        self.values = sorted(plain, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, mask(value))
        return text
