"""The rules a bot's environment variables follow, checked before anything is changed."""

from __future__ import annotations

from protocol.errors import InvalidEnv
from protocol.models import ENV_KEY_RE

MAX_ENV_VALUE = 32 * 1024
MAX_ENV_KEYS = 100


def validate_env(env: dict[str, str]) -> dict[str, str]:
    if len(env) > MAX_ENV_KEYS:
        raise InvalidEnv(f"at most {MAX_ENV_KEYS} variables per bot", field="env")
    for key, value in env.items():
        if not ENV_KEY_RE.fullmatch(key):
            raise InvalidEnv(
                f"invalid variable name {key!r}: use letters, digits and _, not starting with a digit",
                field="env",
            )
        if "\0" in value or len(value) > MAX_ENV_VALUE:
            raise InvalidEnv(f"the value of {key} is not allowed (NUL byte or over 32 KB)", field="env")
    return env
