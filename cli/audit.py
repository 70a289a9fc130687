"""`botrunner audit` (admins: the whole trail) and `botrunner history NAME` (one of your bots)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.table import Table

from cli import render
from cli.context import show

LimitOpt = Annotated[int, typer.Option("--limit", "-n", help="How many entries, newest first.")]


def table(entries: list[dict[str, Any]]) -> Table:
    t = Table("when (UTC)", "who", "action", "bot", "via", "result", "detail")
    for e in entries:
        bot = f"{e['owner']}/{e['bot']}" if e.get("bot") else ""
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["ts"]))
        t.add_row(when, str(e["actor"]), e["action"], bot, e["channel"], e["result"], e.get("detail") or "")
    return t


def _show(ctx: typer.Context, path: str, params: dict[str, Any]) -> None:
    show(ctx, lambda client: client.json("GET", path, params=params), _print_entries)


def _print_entries(body: dict[str, Any]) -> None:
    if not body["entries"]:
        render.out.print("nothing recorded yet", markup=False)
    else:
        render.out.print(table(body["entries"]))


def audit(
    ctx: typer.Context,
    owner: Annotated[int | None, typer.Option(help="Only this owner's bots.", show_default=False)] = None,
    bot: Annotated[str | None, typer.Option(help="Only this bot (with --owner).", show_default=False)] = None,
    limit: LimitOpt = 50,
) -> None:
    """Who changed what, when, through which channel, and the result (admins)."""
    params: dict[str, Any] = {"limit": limit}
    if owner is not None:
        params["owner"] = owner
    if bot is not None:
        params["bot"] = bot
    _show(ctx, "/api/audit", params)


def history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The bot's name.", show_default=False)],
    limit: LimitOpt = 50,
) -> None:
    """What was done to one of your bots: deploys, restarts, env changes, by whom and how."""
    _show(ctx, f"/api/bots/{name}/history", {"limit": limit})
