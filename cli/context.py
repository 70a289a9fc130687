"""The global options every command shares, and the one place failures become exit codes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import typer

from cli import render
from cli.client import ApiError, Client

DEFAULT_URL = "http://127.0.0.1:8080"

T = TypeVar("T")


@dataclass(frozen=True)
class Options:
    url: str
    token: str | None
    json: bool

    def client(self) -> Client:
        if not self.token:
            raise ApiError(
                "UNAUTHORIZED",
                "no API token: pass --token or set BOTRUNNER_TOKEN (send /token to the control bot for one)",
            )
        return Client(self.url, self.token)


def options(ctx: typer.Context) -> Options:
    opts = ctx.find_object(Options)
    assert opts is not None, "the main callback sets the options"
    return opts


def report(error: ApiError, as_json: bool) -> None:
    if as_json:
        render.print_json(error.to_json())
        return
    render.err.print(f"{error.code}: {error.message}", markup=False)
    if error.detail:
        render.err.print(error.detail, markup=False)


@contextlib.contextmanager
def failures(opts: Options) -> Iterator[None]:
    """Exit 1 with `CODE: message` on an API error; 130 on Ctrl-C."""
    try:
        yield
    except ApiError as e:
        report(e, opts.json)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def show(ctx: typer.Context, call: Callable[[Client], T], human: Callable[[T], None]) -> None:
    """Make one API call and print its answer: as JSON with --json, else as `human` puts it."""
    opts = options(ctx)
    with failures(opts), opts.client() as client:
        body = call(client)
    if opts.json:
        render.print_json(body)
    else:
        human(body)
