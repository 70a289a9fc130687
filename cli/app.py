"""`botrunner`: host and manage Telegram bots from a terminal or CI, through the HTTP API."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli import audit, backups, deploy, logs, releases, render, stats
from cli.args import parse_env_changes
from cli.client import Client
from cli.context import DEFAULT_URL, Options, failures, options, show

app = typer.Typer(
    name="botrunner",
    help="Host and manage Telegram bots from a terminal or CI. Get a token with /token in the control bot.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

NameArg = Annotated[str, typer.Argument(help="The bot's name.", show_default=False)]


@app.callback()
def main_options(
    ctx: typer.Context,
    url: Annotated[str, typer.Option(envvar="BOTRUNNER_URL", help="The API's base URL.")] = DEFAULT_URL,
    token: Annotated[
        str | None, typer.Option(envvar="BOTRUNNER_TOKEN", help="Your API token.", show_default=False)
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
) -> None:
    ctx.obj = Options(url=url, token=token, json=json_output)


app.command()(deploy.start)
app.command()(deploy.update)
app.command()(logs.logs)
app.command()(backups.backup)
app.command()(backups.restore)
app.command()(stats.stats)
app.command()(stats.top)
app.command()(audit.audit)
app.command()(audit.history)
app.command()(releases.releases)
app.command()(releases.rollback)


@app.command("list")
def list_bots(ctx: typer.Context) -> None:
    """Your bots with their states, and the quota use."""
    show(ctx, Client.list_bots, _print_bots)


def _print_bots(body: dict[str, Any]) -> None:
    if not body["bots"]:
        render.out.print(
            f"no bots yet (bots: {render.quota_text(body.get('quota'))}); deploy one with "
            "`botrunner start NAME --simple bot.py`",
            markup=False,
        )
        return
    render.out.print(render.bots_table(body["bots"], body.get("quota")))


@app.command()
def quota(ctx: typer.Context) -> None:
    """Your bots against your limit."""
    show(ctx, Client.quota, lambda body: render.out.print(f"bots: {render.quota_text(body)}", markup=False))


@app.command()
def status(ctx: typer.Context, name: NameArg) -> None:
    """A bot's state, uptime, restarts, resources against the limits, source and container."""
    show(ctx, lambda client: client.bot(name), lambda bot: render.out.print(render.status_card(bot)))


def _action(ctx: typer.Context, name: str, action: str, verb: str) -> None:
    show(
        ctx,
        lambda client: client.action(name, action),
        lambda bot: render.out.print(f"{render.state_label(bot['state'])}  {name} {verb}"),
    )


@app.command()
def stop(ctx: typer.Context, name: NameArg) -> None:
    """Stop a bot. It keeps its slot, env and logs."""
    _action(ctx, name, "stop", "stopped")


@app.command()
def restart(ctx: typer.Context, name: NameArg) -> None:
    """Restart a bot."""
    _action(ctx, name, "restart", "restarted")


@app.command("delete-webhook")
def delete_webhook(ctx: typer.Context, name: NameArg) -> None:
    """Remove the webhook on the bot's token, which keeps a polling bot from getting updates."""
    show(
        ctx,
        lambda client: client.json("DELETE", f"/api/bots/{name}/webhook"),
        lambda bot: render.out.print(f"{render.state_label(bot['state'])}  {name}: webhook removed"),
    )


@app.command()
def rm(ctx: typer.Context, name: NameArg) -> None:
    """Delete a bot, its container and its data; this frees its slot."""
    opts = options(ctx)
    with failures(opts), opts.client() as client:
        client.delete(name)
    if opts.json:
        render.print_json({"name": name, "deleted": True})
    else:
        render.out.print(f"🗑  {name} deleted")


@app.command(context_settings={"ignore_unknown_options": True})
def env(
    ctx: typer.Context,
    name: NameArg,
    changes: Annotated[
        list[str] | None, typer.Argument(help="KEY=VALUE to set, -KEY to unset.", show_default=False)
    ] = None,
) -> None:
    """Change a bot's env: KEY=VALUE sets a variable, -KEY unsets one. The bot restarts to apply them."""
    patch = parse_env_changes(changes or [])
    set_keys = [k for k, v in patch.items() if v is not None]
    unset_keys = [k for k, v in patch.items() if v is None]
    parts = ([f"set {', '.join(set_keys)}"] if set_keys else []) + (
        [f"unset {', '.join(unset_keys)}"] if unset_keys else []
    )
    show(
        ctx,
        lambda client: client.set_env(name, patch),
        lambda bot: render.out.print(
            f"{render.state_label(bot['state'])}  {name}: {'; '.join(parts)}", markup=False
        ),
    )
