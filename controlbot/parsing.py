"""Parsing what users type: command arguments, `owner/name` targets and KEY=VALUE env changes."""

from __future__ import annotations

import shlex
from collections.abc import Container
from dataclasses import dataclass, field
from html import escape as _esc

from aiogram.utils.i18n import gettext as _

from controlbot.errors import Refusal
from controlbot.gateway import Target
from protocol.errors import ErrorCode, NotFound
from protocol.rules import ENV_KEY_RE, NAME_RE

__all__ = [
    "EnvChanges",
    "Target",
    "check_name",
    "parse_env",
    "parse_target",
    "split_args",
    "target_args",
    "target_choice",
]


@dataclass
class EnvChanges:
    set: dict[str, str] = field(default_factory=dict)
    unset: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.set or self.unset)


def split_args(text: str | None) -> list[str]:
    """Shell-like splitting, so `GREETING="hello world"` stays one argument."""
    if not text:
        return []
    try:
        return shlex.split(text)
    except ValueError as e:
        raise Refusal(
            _("Unbalanced quotes in the arguments: close every quote you open."), code=ErrorCode.INVALID_INPUT
        ) from e


def name_rule() -> str:
    return _(
        "A name has 2–31 characters: lowercase latin letters, digits and '-', "
        "starting with a letter or digit (e.g. echo-bot)."
    )


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise Refusal(
            _("Invalid bot name <code>{name}</code>.").format(name=_esc(name)) + " " + name_rule(),
            code=ErrorCode.INVALID_NAME,
        )
    return name


def parse_target(arg: str, user_id: int, is_admin: bool) -> Target:
    """`echo` is the caller's own bot; `123/echo` is user 123's bot, for admins only."""
    owner = user_id
    name = arg
    if "/" in arg:
        owner_part, _sep, name = arg.partition("/")
        if not owner_part.isdigit():
            check_name(arg)  # raises with the naming rule
        owner = int(owner_part)
        if owner != user_id and not is_admin:
            # A user never learns whether someone else's bot exists.
            raise NotFound(arg)
    return Target(owner=owner, name=check_name(name))


def parse_env(args: list[str]) -> EnvChanges:
    """`KEY=VALUE` sets, `-KEY` unsets. Bad items are named by key only, never by value."""
    changes = EnvChanges()
    for item in args:
        if item.startswith("-") and "=" not in item:
            key = item[1:]
            _check_key(key)
            changes.unset.append(key)
            changes.set.pop(key, None)
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise Refusal(
                _(
                    "<code>{item}</code> is not KEY=VALUE. Set a variable with KEY=VALUE, "
                    'unset one with -KEY; quote values with spaces: KEY="a b".'
                ).format(item=_esc(key[:40])),
                code=ErrorCode.INVALID_ENV,
            )
        _check_key(key)
        changes.set[key] = value
        if key in changes.unset:
            changes.unset.remove(key)
    return changes


def _check_key(key: str) -> None:
    if not ENV_KEY_RE.fullmatch(key):
        raise Refusal(
            _(
                "<code>{key}</code> is not a valid variable name: use latin letters, digits and '_', "
                "not starting with a digit."
            ).format(key=_esc(key[:40] or "''")),
            code=ErrorCode.INVALID_ENV,
        )


def target_args(text: str | None, user_id: int, is_admin: bool, usage: str) -> tuple[Target, list[str]]:
    """The bot a command names first, and the arguments after it; `usage` when there is none."""
    args = split_args(text)
    if not args:
        raise Refusal(usage, code=ErrorCode.INVALID_INPUT)
    return parse_target(args[0], user_id, is_admin), args[1:]


def target_choice(
    text: str | None, user_id: int, is_admin: bool, usage: str, choices: Container[str]
) -> tuple[Target, str | None]:
    """The bot a command names, and the one optional word after it, lowercased, which must be one of
    choices; `usage` otherwise."""
    target, rest = target_args(text, user_id, is_admin, usage)
    if not rest:
        return target, None
    if len(rest) > 1 or rest[0].lower() not in choices:
        raise Refusal(usage, code=ErrorCode.INVALID_INPUT)
    return target, rest[0].lower()
