"""`releases` and `rollback` (issue 12): a bot's kept releases, and running an earlier one again."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.table import Table

from cli import render
from cli.context import show

NameArg = Annotated[str, typer.Argument(help="The bot's name.", show_default=False)]


def _code(rel: dict[str, Any]) -> str:
    src = rel.get("source") or {}
    if src.get("kind") == "git":
        return f"git {(src.get('commit') or '?')[:7]}"
    sha = src.get("sha256") or ""
    return f"{src.get('filename') or src.get('kind', '?')} {sha[:8]}".strip()


def releases_table(releases: list[dict[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("#", "AGE", "MADE BY", "CODE", "WHO", ""):
        table.add_column(column)
    now = time.time()
    for rel in releases:
        what = rel["op"] + (f" to {rel['restored']}" if rel.get("restored") else "")
        marks = [m for m, on in (("current", rel.get("current")), ("failed", rel.get("failed"))) if on]
        actor = rel.get("actor")
        table.add_row(
            str(rel["number"]),
            render.duration(now - rel["created_at"]),
            what,
            _code(rel),
            str(actor) if actor is not None else "runner",
            ", ".join(marks),
        )
    return table


def releases(ctx: typer.Context, name: NameArg) -> None:
    """A bot's kept releases, newest first, and which one is current."""
    show(ctx, lambda client: client.releases(name), lambda body: render.out.print(releases_table(body)))


def rollback(
    ctx: typer.Context,
    name: NameArg,
    to: Annotated[
        int | None, typer.Option("--to", min=1, help="The release to run again (default: the previous one).")
    ] = None,
    wait_health: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait for the health gate's verdict.")
    ] = False,
) -> None:
    """Run an earlier release again (its code, image and env); it becomes a new release."""
    show(
        ctx,
        lambda client: client.rollback(name, to, wait_health=wait_health),
        lambda bot: _rolled_back(name, bot),
    )


def _rolled_back(name: str, bot: dict[str, Any]) -> None:
    verdict = (bot.get("health") or {}).get("verdict")
    tail = f" ({verdict})" if verdict else ""
    render.out.print(
        f"{render.state_label(bot['state'])}  {name}: rolled back, now release {bot.get('release')}{tail}",
        markup=False,
    )
