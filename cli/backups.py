"""`backup` and `restore`: a bot's /data as a .tar.gz, down to a file and back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli import render
from cli.client import DEPLOY_TIMEOUT
from cli.context import failures, options, show

NameArg = Annotated[str, typer.Argument(help="The bot's name.", show_default=False)]


def backup(
    ctx: typer.Context,
    name: NameArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the .tar.gz.")],
) -> None:
    """Download a bot's /data as a .tar.gz."""
    opts = options(ctx)
    with failures(opts), opts.client() as client:
        resp = client.request("GET", f"/api/bots/{name}/data", timeout=DEPLOY_TIMEOUT)
        output.write_bytes(resp.content)
    if opts.json:
        render.print_json({"name": name, "file": str(output), "size_bytes": len(resp.content)})
    else:
        render.out.print(f"🗄  {name}: /data saved to {output} ({len(resp.content)} bytes)", markup=False)


def restore(
    ctx: typer.Context,
    name: NameArg,
    archive: Annotated[
        Path, typer.Argument(help="A .tar.gz of the bot's /data.", exists=True, dir_okay=False)
    ],
) -> None:
    """Replace a bot's /data with a .tar.gz; the bot restarts."""
    headers = {"Content-Type": "application/gzip"}
    show(
        ctx,
        lambda client: client.request(
            "PUT",
            f"/api/bots/{name}/data",
            content=archive.read_bytes(),
            headers=headers,
            timeout=DEPLOY_TIMEOUT,
        ).json(),
        lambda bot: render.out.print(
            f"{render.state_label(bot['state'])}  {name}: /data restored", markup=False
        ),
    )
