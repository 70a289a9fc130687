"""`logs`: the last lines of a bot's output, and `--follow`, which polls with `since`."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer

from cli.args import since_param
from cli.context import failures, options
from protocol.timeparse import format_since

FOLLOW_INTERVAL_S = 1.0
FOLLOW_TAIL = 10_000
# The runner reads `since` in whole seconds, so each poll reaches back this far and the lines
# already shown are dropped by matching them.
FOLLOW_MARGIN_S = 1.0
REMEMBERED_LINES = 2_000


def drop_overlap(seen: list[str], new: list[str]) -> list[str]:
    """The lines of `new` after the last place where it lines up with the end of `seen`.

    A poll reaches back a little, so `new` may start before, inside or after the lines shown.
    """
    if not seen:
        return new
    for end in range(len(new), 0, -1):
        k = min(len(seen), end)
        if new[end - k : end] == seen[-k:]:
            return new[end:]
    return new


def _emit(lines: list[str], as_json: bool) -> None:
    for line in lines:
        sys.stdout.write((json.dumps({"line": line}, ensure_ascii=False) if as_json else line) + "\n")
    sys.stdout.flush()


def logs(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The bot's name.", show_default=False)],
    tail: Annotated[int, typer.Option(min=1, max=FOLLOW_TAIL, help="How many of the last lines.")] = 30,
    since: Annotated[
        str | None, typer.Option(help="Only lines since a time (ISO 8601) or a duration (10m, 2h).")
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
    release: Annotated[
        int | None,
        typer.Option(
            min=1, help="A replaced release's kept output (see `botrunner releases`).", show_default=False
        ),
    ] = None,
) -> None:
    """Show a bot's last output lines."""
    opts = options(ctx)
    since_value = since_param(since)
    with failures(opts), opts.client() as client:
        lines, read_at = client.logs(name, tail=tail, since=since_value, release=release)
        _emit(lines, opts.json)
        if not follow or release is not None:
            return
        seen = lines[-REMEMBERED_LINES:]
        try:
            while True:
                time.sleep(FOLLOW_INTERVAL_S)
                mark = (read_at or time.time()) - FOLLOW_MARGIN_S
                new, read_at = client.logs(name, tail=FOLLOW_TAIL, since=format_since(mark))
                fresh = drop_overlap(seen, new)
                _emit(fresh, opts.json)
                seen = (seen + fresh)[-REMEMBERED_LINES:]
        except KeyboardInterrupt:
            return
