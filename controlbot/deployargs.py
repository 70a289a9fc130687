"""The arguments of /start_bot and /update: the bot, KEY=VALUE env, and the git options.

`/start_bot echo --git https://host/you/echo.git --branch dev BOT_TOKEN=...`: options and env
may come in any order after the name. The runner decides which URLs, branches and commits it
accepts; here we only catch what cannot be read at all, and keep credentials out of every answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

from aiogram.utils.i18n import gettext as _

from controlbot.errors import Refusal
from controlbot.parsing import EnvChanges, Target, parse_env, parse_target, split_args
from protocol.errors import ErrorCode
from protocol.models import SourceKind, SourceSpec

OPTIONS = ("git", "branch", "commit", "entrypoint")
_URL_LIKE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^[A-Za-z][A-Za-z0-9+.-]*::|^[^/\s:=]+@[^/\s:]+:")


@dataclass(frozen=True)
class GitOptions:
    url: str | None = None
    branch: str | None = None
    commit: str | None = None
    entrypoint: str | None = None

    def __bool__(self) -> bool:
        return any((self.url, self.branch, self.commit, self.entrypoint))

    @property
    def refs(self) -> bool:
        """Options that only make sense for a repository: --branch, --commit."""
        return bool(self.branch or self.commit)

    def spec(self) -> SourceSpec:
        return SourceSpec(
            kind=SourceKind.GIT,
            git_url=self.url,
            branch=self.branch,
            commit=self.commit,
            entrypoint=self.entrypoint,
        )


@dataclass(frozen=True)
class DeployArgs:
    target: Target
    changes: EnvChanges
    git: GitOptions


def options_help() -> str:
    return _(
        "Options: <code>--git URL</code>, <code>--branch NAME</code>, <code>--commit SHA</code>, "
        "<code>--entrypoint PATH</code>."
    )


def split_options(args: list[str]) -> tuple[GitOptions, list[str]]:
    """Take `--opt value` and `--opt=value` out of args; what is left is env."""
    found: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        item = args[i]
        i += 1
        if not item.startswith("--"):
            if _URL_LIKE_RE.match(item):
                raise Refusal(
                    _(
                        "To deploy from a repository, put <code>--git</code> before its URL: "
                        "<code>/start_bot name --git URL</code>."
                    ),
                    code=ErrorCode.INVALID_INPUT,
                )
            rest.append(item)
            continue
        option, eq, value = item[2:].partition("=")
        if option not in OPTIONS:
            raise Refusal(
                _("Unknown option <code>--{option}</code>.").format(option=escape(option[:30]))
                + " "
                + options_help(),
                code=ErrorCode.INVALID_INPUT,
            )
        if not eq:
            if i >= len(args):
                raise Refusal(
                    _("<code>--{option}</code> needs a value.").format(option=option) + " " + options_help(),
                    code=ErrorCode.INVALID_INPUT,
                )
            value = args[i]
            i += 1
        if option in found:
            raise Refusal(
                _("<code>--{option}</code> is given twice.").format(option=option),
                code=ErrorCode.INVALID_INPUT,
            )
        if not value or value.startswith("-"):
            # Never hand git something it could read as an option (--upload-pack=...).
            raise Refusal(
                _("The value of <code>--{option}</code> may not be empty or start with '-'.").format(
                    option=option
                ),
                code=ErrorCode.GIT_REFUSED,
            )
        found[option] = value
    return GitOptions(
        url=found.get("git"),
        branch=found.get("branch"),
        commit=found.get("commit"),
        entrypoint=found.get("entrypoint"),
    ), rest


def parse_deploy_args(text: str | None, user_id: int, is_admin: bool, usage: str) -> DeployArgs:
    """`name [--git URL] [--branch B] [--commit SHA] [--entrypoint PATH] [KEY=VALUE ...]`."""
    args = split_args(text)
    if not args:
        raise Refusal(usage, code=ErrorCode.INVALID_INPUT)
    target = parse_target(args[0], user_id, is_admin)
    git, rest = split_options(args[1:])
    changes = parse_env(rest)
    if changes.unset:
        raise Refusal(
            _("-KEY unsets a variable of an existing bot: use <code>/env {name} -KEY</code>.").format(
                name=escape(target.ref(user_id))
            ),
            code=ErrorCode.INVALID_ENV,
        )
    return DeployArgs(target=target, changes=changes, git=git)


def check_with_file(git: GitOptions, filename: str) -> None:
    """Options that go with an uploaded file: --entrypoint for a .zip, nothing for a .py."""
    if git.url:
        raise Refusal(
            _("Send either a file or <code>--git URL</code>, not both."), code=ErrorCode.INVALID_INPUT
        )
    if git.refs:
        raise Refusal(
            _("<code>--branch</code> and <code>--commit</code> go with a git repository, not with a file."),
            code=ErrorCode.INVALID_INPUT,
        )
    if git.entrypoint and not filename.lower().endswith(".zip"):
        raise Refusal(
            _("<code>--entrypoint</code> picks the file to run in a repository or a .zip, not in a .py."),
            code=ErrorCode.INVALID_INPUT,
        )
