"""A deploy's notes (`Result.notes`: entry point, dependencies, a token Telegram could not check or
whose webhook keeps the bot from polling) in the user's language."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from aiogram.utils.i18n import gettext as _

from protocol.models import Note, NoteKind

_WORDS: dict[NoteKind, Callable[[Note], str]] = {
    NoteKind.ENTRYPOINT: lambda n: _("entry point: {path}").format(
        path=f"<code>{escape(n.path or '')}</code>"
    ),
    NoteKind.DEPS_INSTALLED: lambda n: _("dependencies: installed ({n})").format(n=n.count),
    NoteKind.DEPS_CACHED: lambda n: _("dependencies: cached ({n})").format(n=n.count),
    NoteKind.DOCKERFILE_BUILT: lambda n: _("built from its Dockerfile"),
    NoteKind.DOCKERFILE_CACHED: lambda n: _("built from its Dockerfile (cached)"),
    NoteKind.ENTRYPOINT_IGNORED: lambda n: (
        _("the Dockerfile's CMD runs") + "; " + _("the entry point given is ignored")
    ),
    NoteKind.SYMLINKS_IGNORED: lambda n: _("ignored {n} symlink(s) leading outside the repository").format(
        n=n.count
    ),
}


# Notes that call for the owner's action, each on a line of its own.
_WARNINGS: dict[NoteKind, Callable[[Note], str]] = {
    NoteKind.TOKEN_UNVERIFIED: lambda n: _(
        "⚠️ Telegram could not be reached to check the token in <code>{key}</code>; deployed anyway."
    ).format(key=escape(n.key or "")),
    NoteKind.WEBHOOK_SET: lambda n: _(
        "⚠️ A webhook is set on the token in <code>{key}</code>, so a polling bot gets no updates. "
        "Remove it with the button below."
    ).format(key=escape(n.key or "")),
}


def localise(notes: list[Note]) -> str:
    """HTML for a deploy's answer: "ℹ️ entry point: main.py; dependencies: installed (1)", then warnings."""
    remarks = [_WORDS[n.kind](n) for n in notes if n.kind in _WORDS]
    warnings = [_WARNINGS[n.kind](n) for n in notes if n.kind in _WARNINGS]
    lines = (["ℹ️ " + "; ".join(remarks)] if remarks else []) + warnings
    return "\n".join(lines)
