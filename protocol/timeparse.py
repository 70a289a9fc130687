"""Parsing of a logs `since` value, shared by the HTTP API and the CLI so both accept the same forms.

The API is strict (RFC 3339 with an offset, or a duration), so its OpenAPI document can say exactly
what it takes; the CLI is lenient (any ISO 8601, a zoneless time being local) and sends the strict form.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from protocol.errors import BotrunnerError, ErrorCode

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION_PATTERN = r"^(?:[0-9]{1,9}[smhdw])+$"
_DURATION_RE = re.compile(DURATION_PATTERN)
_PART_RE = re.compile(r"([0-9]+)([smhdw])")
_RFC3339_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:([0-9]{2})(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)

SINCE_HELP = "an ISO 8601 time (2024-05-01T12:00:00Z) or a duration before now (30s, 10m, 2h, 1d, 1h30m)"


def parse_duration(text: str) -> float | None:
    """Seconds in a duration such as `10m` or `1h30m`, or None when the text is not one."""
    if not _DURATION_RE.fullmatch(text):
        return None
    return float(sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _PART_RE.findall(text)))


def _invalid(text: str) -> BotrunnerError:
    return BotrunnerError(
        f"invalid since {text[:64]!r}: use {SINCE_HELP}", code=ErrorCode.INVALID_INPUT, field="since"
    )


def _parse_time(value: str, *, strict: bool, naive_is_local: bool) -> datetime:
    if strict:
        found = _RFC3339_RE.fullmatch(value)
        if found is None:
            raise ValueError(value)
        if found.group(1) == "60":  # a leap second, which datetime cannot hold
            value = value[: found.start(1)] + "59" + value[found.end(1) :]
        value = value.upper()
    elif not value[:1].isdigit():
        raise ValueError(value)
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.astimezone() if naive_is_local else moment.replace(tzinfo=UTC)
    return moment


def parse_since(
    text: str, *, now: float | None = None, strict: bool = False, naive_is_local: bool = False
) -> float:
    """Epoch seconds (never negative) for a `since` value: a time, or a duration before now.

    strict: only a duration or an RFC 3339 time with an offset; otherwise any ISO 8601 time,
    where a zoneless one is UTC, or local time when naive_is_local.
    """
    value = text if strict else text.strip()
    duration = parse_duration(value if strict else value.lower())
    if duration is not None:
        return max(0.0, (time.time() if now is None else now) - duration)
    try:
        return max(0.0, _parse_time(value, strict=strict, naive_is_local=naive_is_local).timestamp())
    except (ValueError, OverflowError, OSError) as e:
        raise _invalid(text) from e


def format_since(epoch: float) -> str:
    """An RFC 3339 UTC time with microseconds, which parse_since(strict=True) reads back exactly."""
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat()


def two_units(seconds: float) -> tuple[str, int, int]:
    """A duration by its two largest units, as front ends show it: ("d", days, hours),
    ("h", hours, minutes), ("m", minutes, seconds), or ("s", seconds, 0)."""
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return "d", days, hours
    if hours:
        return "h", hours, minutes
    if minutes:
        return "m", minutes, s
    return "s", s, 0
