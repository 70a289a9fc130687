"""`logs`: the last lines of a bot's output, and `--follow`, which streams them as they come."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer

from cli.args import since_param
from cli.context import failures, options
from protocol.logtail import FOLLOW_TAIL, drop_overlap
from protocol.timeparse import format_since

__all__ = ["drop_overlap", "logs"]


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
        if not follow or release is not None:
            lines, _ = client.logs(name, tail=tail, since=since_value, release=release)
            _emit(lines, opts.json)
            return
        try:
            while True:
                for line in client.follow_logs(name, tail=tail, since=since_value):
                    _emit([line], opts.json)
                # The server ends a follow after an hour: resume from then. The runner reads `since`
                # in whole seconds, so a line written in that very second may show twice.
                tail, since_value = FOLLOW_TAIL, format_since(time.time())
        except KeyboardInterrupt:
            return
