"""`start` and `update`: deploys with a spinner, following the runner's progress as it streams in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.status import Status

from cli import render
from cli.args import parse_env_set
from cli.client import ApiError
from cli.context import Options, failures, options

STAGE_TEXT = {
    "queued": "queued",
    "cloning": "cloning the repository",
    "installing": "installing dependencies",
    "building": "building the image",
    "stopping": "stopping",
    "starting": "starting",
    "running": "running",
}
STEP_STOP = "Step 1/2: stopping…"
STEP_START = "Step 2/2: starting the new code…"

NameArg = Annotated[str, typer.Argument(help="The bot's name.", show_default=False)]
EnvOpt = Annotated[
    list[str] | None, typer.Option("-e", "--env", help="KEY=VALUE for the bot's env; repeat for more.")
]
FileOpt = Annotated[
    Path | None,
    typer.Option(exists=True, dir_okay=False, readable=True, help="A .py bot (or a .zip package) to deploy."),
]


def _spinner(opts: Options, text: str) -> Status | nullcontext[None]:
    return nullcontext() if opts.json else render.out.status(text)


def _events(events: Iterator[dict[str, Any]], on_stage: Callable[[str], None]) -> dict[str, Any]:
    """Pass progress stages to on_stage; the bot of the final result, or its error raised."""
    for event in events:
        kind = event.get("type")
        if kind == "progress":
            on_stage(str(event.get("stage")))
        elif kind == "result":
            bot: dict[str, Any] = event["bot"]
            return bot
        elif kind == "error":
            raise ApiError.from_body(int(event.get("status") or 500), event)
    raise ApiError("CONNECTION_FAILED", "the deploy ended without a result; check `botrunner status`")


def _finish(opts: Options, bot: dict[str, Any], verb: str) -> None:
    if opts.json:
        render.print_json(bot)
        return
    render.out.print(f"{render.state_label(bot['state'])}  {bot['name']} {verb}")
    if bot.get("notice"):
        render.out.print(bot["notice"], markup=False)


def start(
    ctx: typer.Context,
    name: NameArg,
    simple: FileOpt = None,
    git: Annotated[str | None, typer.Option(help="A git repository URL to deploy.")] = None,
    branch: Annotated[str | None, typer.Option(help="With --git: the branch.")] = None,
    entrypoint: Annotated[str | None, typer.Option(help="With --git: the .py to run.")] = None,
    env: EnvOpt = None,
) -> None:
    """Deploy a new bot from a file (--simple) or a repository (--git), or start a stopped one."""
    opts = options(ctx)
    if simple is not None and git is not None:
        raise typer.BadParameter("give --simple FILE or --git URL, not both", param_hint="--simple/--git")
    if git is None and (branch or entrypoint):
        raise typer.BadParameter(
            "--branch and --entrypoint go with --git", param_hint="--branch/--entrypoint"
        )
    env_set = parse_env_set(env or [])
    if simple is None and git is None:
        if env_set:
            raise typer.BadParameter(
                "to change a bot's env use `botrunner env NAME KEY=VALUE`", param_hint="-e"
            )
        _start_existing(opts, name)
        return
    data: dict[str, Any] = {"name": name, "env": [f"{k}={v}" for k, v in env_set.items()]}
    if git is not None:
        data.update(
            {k: v for k, v in {"git_url": git, "branch": branch, "entrypoint": entrypoint}.items() if v}
        )
    with failures(opts), opts.client() as client, _spinner(opts, f"deploying {name}…") as status:

        def on_stage(stage: str) -> None:
            if status is not None:
                status.update(f"deploying {name}: {STAGE_TEXT.get(stage, stage)}…")

        bot = _events(client.deploy("POST", "/api/bots", data=data, file=simple), on_stage)
    _finish(opts, bot, "deployed")


def _start_existing(opts: Options, name: str) -> None:
    with failures(opts), opts.client() as client, _spinner(opts, f"starting {name}…"):
        bot = client.action(name, "start")
    _finish(opts, bot, "started")


class _Steps:
    """Prints "Step 1/2: stopping… ✓" and "Step 2/2: starting the new code… ✓ updated" as they finish."""

    def __init__(self, status: Status | None, quiet: bool) -> None:
        self.status = status
        self.quiet = quiet
        self.done = 0
        self.begun = False

    def _line(self, text: str) -> None:
        if not self.quiet:
            render.out.print(text, markup=False)

    def _spin(self, text: str) -> None:
        if self.status is not None:
            self.status.update(text)

    def on_stage(self, stage: str) -> None:
        self.begun = True
        if stage == "stopping":
            self._spin(STEP_STOP)
        elif stage in ("starting", "running") and self.done == 0:
            self._line(f"{STEP_STOP} ✓")
            self.done = 1
            self._spin(STEP_START)
        elif self.done == 0:
            self._spin(f"preparing the new code: {STAGE_TEXT.get(stage, stage)}…")
        else:
            self._spin(f"{STEP_START} ({STAGE_TEXT.get(stage, stage)})")

    def finish(self) -> None:
        if self.done == 0:
            self._line(f"{STEP_STOP} ✓")
        self._line(f"{STEP_START} ✓ updated")

    def fail(self) -> None:
        if self.begun:
            self._line(f"{STEP_START if self.done else STEP_STOP} ✗")


def update(
    ctx: typer.Context,
    name: NameArg,
    simple: FileOpt = None,
    pull: Annotated[
        bool, typer.Option("--pull", help="For a git bot: pull and deploy the branch head.")
    ] = False,
    branch: Annotated[str | None, typer.Option(help="With --pull: switch to this branch.")] = None,
    commit: Annotated[str | None, typer.Option(help="With --pull: deploy this commit.")] = None,
    env: EnvOpt = None,
) -> None:
    """Replace a bot's code with a new file (--simple), or pull its repository (--pull)."""
    opts = options(ctx)
    if (simple is None) == (not pull):
        raise typer.BadParameter("give either --simple FILE or --pull", param_hint="--simple/--pull")
    if not pull and (branch or commit):
        raise typer.BadParameter("--branch and --commit go with --pull", param_hint="--branch/--commit")
    env_set = parse_env_set(env or [])
    data: dict[str, Any] = {"env": [f"{k}={v}" for k, v in env_set.items()]}
    data.update({k: v for k, v in {"branch": branch, "commit": commit}.items() if v})
    with failures(opts), opts.client() as client, _spinner(opts, STEP_STOP) as status:
        steps = _Steps(status, quiet=opts.json)
        try:
            bot = _events(client.deploy("PUT", f"/api/bots/{name}", data=data, file=simple), steps.on_stage)
        except ApiError:
            steps.fail()
            raise
        steps.finish()
    if opts.json:
        render.print_json(bot)
    else:
        render.out.print(f"{render.state_label(bot['state'])}  {bot['name']}")
