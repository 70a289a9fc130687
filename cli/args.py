"""Parsing of what users type on the command line: env changes and `--since` times."""

from __future__ import annotations

import typer

from protocol.errors import BotrunnerError
from protocol.rules import ENV_KEY_RE
from protocol.timeparse import format_since, parse_since


def parse_env_set(items: list[str]) -> dict[str, str]:
    """`-e KEY=VALUE` options; the value may contain '=' and may be empty."""
    env: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not ENV_KEY_RE.fullmatch(key):
            raise typer.BadParameter(
                f"{key[:40]!r} is not KEY=VALUE with a valid variable name", param_hint="-e"
            )
        env[key] = value
    return env


def parse_env_changes(items: list[str]) -> dict[str, str | None]:
    """`KEY=VALUE` sets a variable and `-KEY` unsets it; the later of two mentions of a key wins."""
    if not items:
        raise typer.BadParameter("give at least one KEY=VALUE to set or -KEY to unset", param_hint="CHANGES")
    patch: dict[str, str | None] = {}
    for item in items:
        if item.startswith("-") and "=" not in item:
            key, value = item[1:], None
        else:
            key, sep, text = item.partition("=")
            if not sep:
                raise typer.BadParameter(
                    f"{key[:40]!r}: set with KEY=VALUE, unset with -KEY", param_hint="CHANGES"
                )
            value = text
        if not ENV_KEY_RE.fullmatch(key):
            raise typer.BadParameter(f"{key[:40]!r} is not a valid variable name", param_hint="CHANGES")
        patch[key] = value
    return patch


def since_param(text: str | None) -> str | None:
    """A `--since` as typed (any ISO 8601 time, local when zoneless, or a duration) in the API's form."""
    if text is None:
        return None
    try:
        epoch = parse_since(text, naive_is_local=True)
    except BotrunnerError as e:
        raise typer.BadParameter(e.message, param_hint="--since") from e
    return format_since(epoch)
