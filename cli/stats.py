"""`botrunner stats NAME` (a bot's memory and CPU over a range, or its chart) and `botrunner top`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cli import render
from cli.context import failures, options, show

NameArg = Annotated[str, typer.Argument(help="The bot's name.", show_default=False)]
RangeOpt = Annotated[str, typer.Option("--range", "-r", help="1h, 24h or 7d.")]


def summary(body: dict[str, Any], span: str) -> str:
    samples = body["samples"]
    limits = body["limits"]
    if not samples:
        return f"{body['name']}: no samples in the last {span} (they are taken while the bot runs)"
    mem = [s["memory_bytes"] for s in samples]
    cpu = [s["cpu_percent"] for s in samples]
    return "\n".join(
        [
            f"{body['name']}, last {span}: {len(samples)} samples, {len(body['restarts'])} restart(s)",
            f"memory  now {render.size(mem[-1])}  avg {render.size(sum(mem) // len(mem))}  "
            f"peak {render.size(max(mem))}  of {render.size(limits['memory_bytes'])}",
            f"cpu     now {cpu[-1]:.1f}%  avg {sum(cpu) / len(cpu):.1f}%  peak {max(cpu):.1f}%  "
            f"of {limits['cpu'] * 100:.0f}%",
        ]
    )


def stats(
    ctx: typer.Context,
    name: NameArg,
    span: RangeOpt = "1h",
    png: Annotated[
        Path | None, typer.Option("--png", help="Write the chart to this PNG file.", show_default=False)
    ] = None,
) -> None:
    """A bot's memory and CPU over the last hour, day or week; --png saves the chart."""
    opts = options(ctx)
    with failures(opts), opts.client() as client:
        body = client.json("GET", f"/api/bots/{name}/stats", params={"range": span})
        image = client.get_bytes(f"/api/bots/{name}/chart", params={"range": span}) if png else None
    if png is not None and image is not None:
        png.write_bytes(image)
    if opts.json:
        render.print_json(body)
        return
    render.out.print(summary(body, span), markup=False)
    if png is not None:
        render.out.print(f"chart written to {png}", markup=False)


def top(ctx: typer.Context) -> None:
    """Every hosted bot by memory use, with its owner (admins)."""
    show(ctx, lambda client: client.json("GET", "/api/top"), _print_top)


def _print_top(body: dict[str, Any]) -> None:
    table = Table("owner", "bot", "state", "memory", "cpu")
    for b in body["bots"]:
        cpu = "—" if b.get("cpu_percent") is None else f"{b['cpu_percent']:.1f}%"
        table.add_row(
            str(b["owner"]),
            b["name"],
            render.state_label(b["state"]),
            render.size(b.get("memory_bytes")),
            cpu,
        )
    render.out.print(table)
