"""What both services' settings classes do with values read from the environment, written once."""

from __future__ import annotations

import re


def split_csv(value: object) -> object:
    """A comma-separated environment value as a list (blank parts dropped); other values as given.
    A lone number (ADMIN_IDS=42 read as an int by a .env parser) is a list of one."""
    if isinstance(value, int):
        return [value]
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def must_match(value: str, pattern: str, hint: str, *, whole: bool = True) -> str:
    """value, when it matches pattern (whole, or else from its start); a ValueError with hint if not."""
    found = re.fullmatch(pattern, value) if whole else re.match(pattern, value)
    if found is None:
        raise ValueError(hint)
    return value
