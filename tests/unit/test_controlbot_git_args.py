"""The arguments of /start_bot and /update: --git, --branch, --commit, --entrypoint, env mixed in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controlbot.deployargs import GitOptions, check_with_file, parse_deploy_args, split_options
from controlbot.errors import Refusal
from controlbot.gateway import source_kind
from controlbot.i18n import create_i18n
from controlbot.parsing import Target
from protocol.errors import ErrorCode, NotFound
from protocol.models import SourceKind

pytestmark = pytest.mark.unit

USER = 42
USAGE = "usage!"
URL = "https://github.com/you/bot.git"


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("en"):
        yield


def parse(text: str, *, admin: bool = False) -> tuple[Target, dict[str, str], GitOptions]:
    args = parse_deploy_args(text, USER, admin, USAGE)
    return args.target, args.changes.set, args.git


def refusal(text: str) -> Refusal:
    with pytest.raises(Refusal) as info:
        parse_deploy_args(text, USER, False, USAGE)
    return info.value


def test_plain_name_and_env_have_no_git_options() -> None:
    target, env, git = parse('echo BOT_TOKEN=1:abc GREETING="hi there"')
    assert target == Target(owner=USER, name="echo")
    assert env == {"BOT_TOKEN": "1:abc", "GREETING": "hi there"}
    assert not git and git == GitOptions()


def test_git_with_every_option_and_env_in_any_order() -> None:
    _target, env, git = parse(
        f"echo A=1 --branch dev --git {URL} B=2 --entrypoint src/bot.py --commit abc1234"
    )
    assert env == {"A": "1", "B": "2"}
    assert git == GitOptions(url=URL, branch="dev", commit="abc1234", entrypoint="src/bot.py")
    spec = git.spec()
    assert spec.kind is SourceKind.GIT and spec.git_url == URL and spec.branch == "dev"
    assert (spec.commit, spec.entrypoint) == ("abc1234", "src/bot.py")


def test_option_equals_form_and_urls_with_query_strings() -> None:
    url = f"{URL}?ref=x&a=b"
    _target, env, git = parse(f"echo --git={url} --branch=release/1.0 TOKEN=1:x")
    assert git.url == url and git.branch == "release/1.0" and env == {"TOKEN": "1:x"}


def test_credentials_in_the_url_are_kept_for_the_runner() -> None:
    url = "https://alice:s3cret@example.com/you/bot.git"
    _target, _env, git = parse(f"echo --git {url}")
    assert git.url == url


def test_admin_may_name_another_owner() -> None:
    target, _env, git = parse(f"7/echo --git {URL}", admin=True)
    assert target == Target(owner=7, name="echo") and git.url == URL
    with pytest.raises(NotFound):
        parse(f"7/echo --git {URL}")


def test_branch_alone_is_an_option_set_without_a_url() -> None:
    _target, _env, git = parse("echo --branch dev --commit 0123abcd")
    assert git and git.refs and git.url is None
    spec = git.spec()
    assert spec.git_url is None and spec.branch == "dev" and spec.commit == "0123abcd"


@pytest.mark.parametrize(
    ("text", "answer", "code"),
    [
        ("", USAGE, ErrorCode.INVALID_INPUT),
        (f"--git {URL}", "Invalid bot name <code>--git</code>", ErrorCode.INVALID_NAME),
        ("echo --git", "--git</code> needs a value", ErrorCode.INVALID_INPUT),
        ("echo --branch", "--branch</code> needs a value", ErrorCode.INVALID_INPUT),
        (f"echo --git {URL} --git {URL}", "given twice", ErrorCode.INVALID_INPUT),
        ("echo --tag v1", "Unknown option <code>--tag</code>", ErrorCode.INVALID_INPUT),
        ("echo --git --upload-pack=x", "may not be empty or start with '-'", ErrorCode.GIT_REFUSED),
        ("echo --git=--upload-pack=touch", "may not be empty or start with '-'", ErrorCode.GIT_REFUSED),
        ("echo --git -u", "may not be empty or start with '-'", ErrorCode.GIT_REFUSED),
        (f"echo --git {URL} --branch -x", "may not be empty or start with '-'", ErrorCode.GIT_REFUSED),
        (f"echo --git {URL} --branch=", "may not be empty", ErrorCode.GIT_REFUSED),
        (f"echo --git {URL} -OLD", "-KEY unsets a variable", ErrorCode.INVALID_ENV),
        (f"echo --git {URL} NOVALUE", "is not KEY=VALUE", ErrorCode.INVALID_ENV),
        (f"Echo --git {URL}", "Invalid bot name", ErrorCode.INVALID_NAME),
        (f"echo {URL}", "put <code>--git</code> before its URL", ErrorCode.INVALID_INPUT),
        ("echo ext::sh", "put <code>--git</code> before its URL", ErrorCode.INVALID_INPUT),
        ("echo git@github.com:you/bot.git", "put <code>--git</code> before its URL", ErrorCode.INVALID_INPUT),
        ("echo 'unbalanced", "Unbalanced quotes", ErrorCode.INVALID_INPUT),
    ],
)
def test_bad_arguments(text: str, answer: str, code: ErrorCode) -> None:
    err = refusal(text)
    assert answer in err.message and err.code == code, err.message


def test_a_url_given_without_git_is_never_echoed() -> None:
    err = refusal("echo https://alice:s3cret@example.com/you/bot.git")
    assert "s3cret" not in err.message and "alice" not in err.message


def test_split_options_leaves_env_alone() -> None:
    git, rest = split_options(["A=--x", "--entrypoint", "bot.py", "-B"])
    assert git == GitOptions(entrypoint="bot.py") and rest == ["A=--x", "-B"]


@pytest.mark.parametrize(
    ("git", "filename", "answer"),
    [
        (GitOptions(url=URL), "bot.py", "either a file or <code>--git URL</code>"),
        (GitOptions(url=URL), "bot.zip", "either a file or <code>--git URL</code>"),
        (GitOptions(branch="dev"), "bot.zip", "go with a git repository"),
        (GitOptions(commit="abcd"), "bot.py", "go with a git repository"),
        (GitOptions(entrypoint="main.py"), "bot.py", "not in a .py"),
    ],
)
def test_options_that_do_not_go_with_a_file(git: GitOptions, filename: str, answer: str) -> None:
    with pytest.raises(Refusal) as info:
        check_with_file(git, filename)
    assert answer in info.value.message


def test_options_that_go_with_a_file() -> None:
    check_with_file(GitOptions(), "bot.py")
    check_with_file(GitOptions(), "bot.zip")
    check_with_file(GitOptions(entrypoint="src/run.py"), "Bot.ZIP")


def test_source_kind() -> None:
    assert source_kind("Bot.ZIP") is SourceKind.ZIP and source_kind("bot.py") is SourceKind.FILE
