"""The runner's `Result.notice` ("entry point: main.py; dependencies: cached (1)") in the user's language.

The runner writes its notes in English, joined by "; ". Each note we know is translated; one we do
not know (a newer runner) is shown as it came, escaped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import escape

from aiogram.utils.i18n import gettext as _

from controlbot.formatting import mask_credentials

_NOTES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (
        re.compile(r"entry point: (.+)"),
        lambda m: _("entry point: {path}").format(path=f"<code>{escape(m[1])}</code>"),
    ),
    (
        re.compile(r"dependencies: installed \((\d+)\)"),
        lambda m: _("dependencies: installed ({n})").format(n=m[1]),
    ),
    (
        re.compile(r"dependencies: cached \((\d+)\)"),
        lambda m: _("dependencies: cached ({n})").format(n=m[1]),
    ),
    (re.compile(r"built from its Dockerfile"), lambda m: _("built from its Dockerfile")),
    (re.compile(r"built from its Dockerfile \(cached\)"), lambda m: _("built from its Dockerfile (cached)")),
    (
        re.compile(r"ignored (\d+) symlink\(s\) leading outside"),
        lambda m: _("ignored {n} symlink(s) leading outside the repository").format(n=m[1]),
    ),
    (re.compile(r"the Dockerfile's CMD runs"), lambda m: _("the Dockerfile's CMD runs")),
    (re.compile(r"the entry point given is ignored"), lambda m: _("the entry point given is ignored")),
]


def note(text: str) -> str:
    for pattern, render in _NOTES:
        if (m := pattern.fullmatch(text)) is not None:
            return render(m)
    return escape(mask_credentials(text))


def localise(notice: str | None) -> str:
    """HTML for the success message: "ℹ️ entry point: main.py; dependencies: installed (1)"."""
    if not notice:
        return ""
    return "ℹ️ " + "; ".join(note(part.strip()) for part in notice.split("; ") if part.strip())
