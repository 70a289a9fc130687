"""A deploy's notes (`Result.notes`: entry point, dependencies, a shared token) in the user's language."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from aiogram.utils.i18n import gettext as _

from protocol.models import Note, NoteKind


def _token_shared(n: Note) -> str:
    return _(
        "⚠️ The value of <code>{key}</code> is already used by {bots}. Two bots polling one token "
        "get 409 Conflict from Telegram."
    ).format(key=escape(n.key or ""), bots=", ".join(escape(b) for b in n.bots))


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


def localise(notes: list[Note]) -> str:
    """HTML for a deploy's answer: "ℹ️ entry point: main.py; dependencies: installed (1)", then warnings."""
    remarks = [_WORDS[n.kind](n) for n in notes if n.kind in _WORDS]
    warnings = [_token_shared(n) for n in notes if n.kind is NoteKind.TOKEN_SHARED]
    lines = (["ℹ️ " + "; ".join(remarks)] if remarks else []) + warnings
    return "\n".join(lines)
