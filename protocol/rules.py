"""What both services accept from users, written once: bot names, env, sizes and the token shape.

The control bot, its HTTP API and the CLI check early with these to refuse fast and name the field;
the runner checks again with the same rules, because the queue is not trusted to have done so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from protocol.errors import ErrorParams, InvalidEnv, InvalidName, InvalidSource

NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{1,30}$"
NAME_RE: Final = re.compile(NAME_PATTERN)
ENV_KEY_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
ENV_KEY_RE: Final = re.compile(ENV_KEY_PATTERN)
# A Telegram bot token as @BotFather issues it: the bot's id, a colon, the secret.
BOT_TOKEN_PATTERN: Final = r"^\d{5,12}:[A-Za-z0-9_-]{30,50}$"
BOT_TOKEN_RE: Final = re.compile(BOT_TOKEN_PATTERN)

MAX_ENV_KEYS: Final = 100
MAX_ENV_VALUE_BYTES: Final = 32 * 1024
MAX_ENV_TOTAL_BYTES: Final = 64 * 1024
# The cloud Bot API lets a bot download files of up to 20 MB: the default for uploads and sources.
DEFAULT_MAX_SOURCE_BYTES: Final = 20 * 1024 * 1024
SOURCE_SUFFIXES: Final = (".py", ".zip")

_SIZE_RE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmg]?)b?\s*$", re.IGNORECASE)
_SIZE_UNITS: Final = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(value: str | int) -> int:
    """'256m' -> bytes: the suffixes docker accepts, used by every size setting."""
    if isinstance(value, int):
        return value
    m = _SIZE_RE.match(value)
    if not m:
        raise ValueError(f"{value!r} is not a size like 256m or 1g")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


def validate_name(name: str | None) -> str:
    if name is None or not NAME_RE.fullmatch(name):
        raise InvalidName(name or "")
    return name


def check_env_key(key: str) -> str:
    if not ENV_KEY_RE.fullmatch(key):
        # Name the key only, never a value: it may be a secret.
        raise InvalidEnv(
            f"invalid variable name {key[:40]!r}: use letters, digits and _, not starting with a digit",
            params=ErrorParams(key=key[:40]),
        )
    return key


def check_env(env: Mapping[str, str]) -> dict[str, str]:
    """A bot's whole env (after any merge): valid keys, no NUL, and within the size caps."""
    if len(env) > MAX_ENV_KEYS:
        raise InvalidEnv(
            f"at most {MAX_ENV_KEYS} variables per bot", params=ErrorParams(limit=MAX_ENV_KEYS, used=len(env))
        )
    total = 0
    for key, value in env.items():
        check_env_key(key)
        size = len(value.encode())
        if "\0" in value or size > MAX_ENV_VALUE_BYTES:
            raise InvalidEnv(
                f"the value of {key} is not allowed (a NUL byte, or over {MAX_ENV_VALUE_BYTES // 1024} KB)",
                params=ErrorParams(key=key, max_bytes=MAX_ENV_VALUE_BYTES),
            )
        total += len(key) + size
    if total > MAX_ENV_TOTAL_BYTES:
        raise InvalidEnv(
            f"the env is {total} bytes, over the limit of {MAX_ENV_TOTAL_BYTES // 1024} KB per bot",
            params=ErrorParams(max_bytes=MAX_ENV_TOTAL_BYTES, size_bytes=total),
        )
    return dict(env)


def is_bot_token(value: str) -> bool:
    return BOT_TOKEN_RE.fullmatch(value.strip()) is not None


def holds_token(value: str, token: str) -> bool:
    """Whether value carries token in any form: quoted, padded with whitespace, or inside a longer value."""
    squeezed = "".join(ch for ch in value if not ch.isspace() and ch not in "'\"`")
    return bool(token) and token in squeezed


def check_source_name(filename: str) -> str:
    if not filename.lower().endswith(SOURCE_SUFFIXES):
        raise InvalidSource(
            "send a single .py file, or a bot package as a .zip", params=ErrorParams(path=filename[:200])
        )
    return filename


def check_source_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise InvalidSource(
            f"the file is larger than {max_bytes / 2**20:.0f} MB",
            params=ErrorParams(max_bytes=max_bytes, size_bytes=size),
        )
