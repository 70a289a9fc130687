"""Git mode's pure rules: URLs, branches, commits, credentials, entry points, archives, dependencies."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from protocol.errors import ErrorCode, InvalidSource
from protocol.models import SourceInfo, SourceKind, SourceSpec
from runner.builds.deps import normalize, parse_pyproject, tree_dependencies
from runner.builds.giturl import GitRefused, check_branch, check_commit, check_url, display_url, redact
from runner.builds.pep723 import script_dependencies
from runner.builds.repoimage import repo_context
from runner.builds.tree import MAX_FILES, Tree, choose_entrypoint, read_tree, safe_relpath
from runner.builds.zipsrc import read_zip
from runner.sources import resolve_spec
from runner.state import BotRecord

pytestmark = pytest.mark.unit

ALL = ["https", "http", "git"]


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/owner/repo.git",
        "https://user:token@github.com/owner/repo",
        "http://127.0.0.1:8080/r.git",
        "git://127.0.0.1:9418/r.git",
        "HTTPS://example.org/a/b",
    ],
)
def test_allowed_urls(url: str) -> None:
    assert check_url(url, ALL) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("file:///etc/repo.git", "file://"),
        ("/srv/repo.git", "local paths"),
        ("./repo", "local paths"),
        ("repo.git", "local paths"),
        ("ext::sh -c touch% /tmp/x", "ext::"),
        ("fd::3", "ext::"),
        ("-uhttps://x/y", "start with '-'"),
        ("--upload-pack=touch /tmp/x", "start with '-'"),
        ("git@github.com:owner/repo.git", "ssh URLs"),
        ("ssh://git@github.com/owner/repo.git", "ssh://"),
        ("ftp://example.org/r.git", "ftp://"),
        ("https://-oProxyCommand=x/r.git", "host"),
        ("https://example.org", "no repository"),
        ("https://example.org:99999/r.git", "malformed"),
        ("https://exa mple.org/r.git", "spaces"),
        ("", "empty"),
    ],
)
def test_refused_urls(url: str, why: str) -> None:
    with pytest.raises(GitRefused) as e:
        check_url(url, ALL)
    assert e.value.code is ErrorCode.GIT_REFUSED and why in e.value.message


def test_schemes_follow_the_setting_but_file_and_ext_never() -> None:
    with pytest.raises(GitRefused, match="use one of: https://"):
        check_url("http://example.org/r.git", ["https"])
    for scheme in ("file", "ext"):
        with pytest.raises(GitRefused):
            check_url(f"{scheme}://example.org/r.git", [*ALL, scheme])


@pytest.mark.parametrize("branch", ["main", "feature/x-1", "v1.2", "release_2024"])
def test_valid_branches(branch: str) -> None:
    assert check_branch(branch) == branch


@pytest.mark.parametrize(
    "branch", ["-b", "--upload-pack=x", "a..b", "a b", "x.lock", "x/", "a//b", "@{-1}", "a~1", ""]
)
def test_refused_branches(branch: str) -> None:
    with pytest.raises(GitRefused):
        check_branch(branch)


def test_commits() -> None:
    assert check_commit("ABCDEF0") == "abcdef0"
    assert check_commit(None) is None
    for bad in ("--all", "HEAD~1", "abc", "g" * 40, "a" * 41):
        with pytest.raises(GitRefused):
            check_commit(bad)


def test_credentials_are_stripped_from_what_is_shown() -> None:
    url = "https://alice:s3cr3t@example.org:8443/team/repo.git?token=abc#frag"
    assert display_url(url) == "https://example.org:8443/team/repo.git"
    text = f"fatal: could not read from {url}\nremote: https://bob:pw@host/x"
    cleaned = redact(text, url)
    assert "s3cr3t" not in cleaned and "bob" not in cleaned and "pw@" not in cleaned
    assert "https://example.org:8443/team/repo.git" in cleaned


@pytest.mark.parametrize("path", ["../x.py", "/etc/passwd", "a/../../x.py", "C:/x.py", "a\\b.py", "", ".."])
def test_unsafe_relative_paths(path: str) -> None:
    with pytest.raises(InvalidSource):
        safe_relpath(path)


def test_safe_relative_paths_are_normalised() -> None:
    assert safe_relpath("./src//app.py") == "src/app.py"


def test_entry_point_order_and_preference() -> None:
    tree = Tree(files={"bot.py": b"", "main.py": b"", "__main__.py": b"", "src/run.py": b""})
    assert choose_entrypoint(tree, None) == ("__main__.py", False)
    del tree.files["__main__.py"]
    assert choose_entrypoint(tree, None) == ("main.py", False)
    assert choose_entrypoint(tree, None, prefer=("src/run.py",)) == ("src/run.py", False)
    assert choose_entrypoint(tree, None, prefer=("gone.py",)) == ("main.py", False)
    assert choose_entrypoint(tree, "src/run.py") == ("src/run.py", True)
    with pytest.raises(InvalidSource, match="not in the bot's files"):
        choose_entrypoint(tree, "nope.py")
    with pytest.raises(InvalidSource, match="no entry point"):
        choose_entrypoint(Tree(files={"lib.py": b""}), None)


def test_read_tree_drops_symlinks_leaving_it_and_skips_git(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("[core]")
    (tmp_path / "main.py").write_text("print(1)")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("X = 1")
    (tmp_path / "run.sh").write_text("#!/bin/sh")
    os.chmod(tmp_path / "run.sh", 0o755)
    (tmp_path / "alias.py").symlink_to("main.py")
    (tmp_path / "leak").symlink_to("/etc/hostname")
    (tmp_path / "gitcfg").symlink_to(".git/config")
    (tmp_path / "dirlink").symlink_to("/etc")
    tree = read_tree(tmp_path, 1 << 20)
    assert sorted(tree.files) == ["alias.py", "main.py", "pkg/mod.py", "run.sh"]
    assert tree.files["alias.py"] == b"print(1)"
    assert sorted(tree.dropped_links) == ["dirlink", "gitcfg", "leak"]
    assert tree.executables == {"run.sh"}
    with pytest.raises(InvalidSource, match="larger than"):
        read_tree(tmp_path, 10)
    with pytest.raises(InvalidSource, match="symlink that leaves"):
        choose_entrypoint(tree, "leak")


def _zip(entries: dict[str, bytes], modes: dict[str, int] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (modes or {}).get(name, stat.S_IFREG | 0o644) << 16
            zf.writestr(info, data)
    return buf.getvalue()


def test_zip_reading_strips_one_top_folder_and_refuses_escapes() -> None:
    tree = read_zip(_zip({"bot/main.py": b"1", "bot/lib/x.py": b"2", "__MACOSX/bot/._main.py": b""}), 1 << 20)
    assert tree.files == {"main.py": b"1", "lib/x.py": b"2"}
    assert read_zip(_zip({"main.py": b"1", "lib/x.py": b"2"}), 1 << 20).files.keys() == {
        "main.py",
        "lib/x.py",
    }
    for bad in ("../x.py", "a/../../x.py", "/abs.py", "C:/x.py", "a\\..\\x.py"):
        with pytest.raises(InvalidSource):
            read_zip(_zip({bad: b"x"}), 1 << 20)
    with pytest.raises(InvalidSource, match="symlink"):
        read_zip(_zip({"l.py": b"/etc/passwd"}, {"l.py": stat.S_IFLNK | 0o777}), 1 << 20)
    with pytest.raises(InvalidSource, match="more than"):
        read_zip(_zip({"a.py": b"x" * 2000}), 1000)
    with pytest.raises(InvalidSource, match=r"not a valid \.zip"):
        read_zip(b"nope", 1000)


def test_requirements_are_parsed_followed_and_normalised() -> None:
    tree = Tree(
        files={
            "requirements.txt": (
                b"# top\nsix==1.16.0  # pinned\n-r reqs/extra.txt\n\nrequests >=2 ; python_version>'3'\n"
            ),
            "reqs/extra.txt": b"idna\\\n==3.7\nsix==1.16.0\n",
            "pyproject.toml": b"[project]\ndependencies = ['ignored']\n",
        }
    )
    deps, origin = tree_dependencies(tree)
    assert origin == "requirements.txt"
    assert deps == ["idna==3.7", "requests >=2 ; python_version>'3'", "six==1.16.0"]
    for bad in (b"--index-url https://evil/\n", b"-e .\n", b"-r ../outside.txt\n", b"-r missing.txt\n"):
        with pytest.raises(InvalidSource):
            tree_dependencies(Tree(files={"requirements.txt": bad}))
    assert tree_dependencies(Tree(files={"main.py": b""})) == ([], None)
    assert normalize(["b", " a ", "b", ""]) == ["a", "b"]


def test_pyproject_dependencies() -> None:
    assert parse_pyproject(b"[project]\nname='x'\ndependencies = ['six==1.16.0', 'idna']\n") == [
        "six==1.16.0",
        "idna",
    ]
    assert parse_pyproject(b"[tool.poetry]\nname='x'\n") == []
    for bad in (b"[project\n", b"[project]\ndependencies = 'six'\n"):
        with pytest.raises(InvalidSource):
            parse_pyproject(bad)


def test_pep723_inline_metadata() -> None:
    src = (
        "#!/usr/bin/env python\n"
        "# /// script\n"
        "# requires-python = '>=3.11'\n"
        "# dependencies = [\n"
        "#   'six==1.16.0',\n"
        '#   "idna",\n'
        "# ]\n"
        "# ///\n"
        "print('hi')\n"
    )
    assert script_dependencies(src) == ["six==1.16.0", "idna"]
    assert script_dependencies("print('no metadata')\n") == []
    assert script_dependencies("# /// pyproject\n# x = 1\n# ///\n") == []
    with pytest.raises(InvalidSource, match="more than one"):
        script_dependencies("# /// script\n# dependencies = []\n# ///\nx = 1\n" * 2)
    with pytest.raises(InvalidSource, match="not valid TOML"):
        script_dependencies("# /// script\n# dependencies = [\n# ///\n")
    with pytest.raises(InvalidSource, match="not a package requirement"):
        script_dependencies("# /// script\n# dependencies = ['--index-url=x']\n# ///\n")


def test_repo_context_applies_dockerignore_and_owns_data() -> None:
    tree = Tree(
        files={
            "Dockerfile": b"FROM x\n",
            ".dockerignore": b"*.log\nsecret/\n",
            "a.py": b"",
            "b.log": b"",
            "secret/k": b"",
        },
        executables={"a.py"},
    )
    ctx = repo_context(tree)
    assert sorted(ctx.files) == [".botrunner-data/.keep", "a.py"]
    assert (
        ctx.dockerfile.startswith("FROM x\n")
        and "COPY --chown=65534:65534 .botrunner-data/ /data/" in ctx.dockerfile
    )


def _record(git_url: str | None) -> BotRecord:
    info = SourceInfo(kind=SourceKind.GIT, git_url="https://h/r.git", branch="dev", commit="a" * 40)
    return BotRecord(
        owner=1, name="ab", source=info, image="i", entrypoint="main.py", request_id="r", git_url=git_url
    )


def test_a_pull_reuses_the_recorded_url_and_branch() -> None:
    rec = _record("https://u:t@h/r.git")
    spec = resolve_spec(None, True, rec)
    assert (spec.kind, spec.git_url, spec.branch, spec.commit) == (
        SourceKind.GIT,
        "https://u:t@h/r.git",
        "dev",
        None,
    )
    spec = resolve_spec(SourceSpec(kind=SourceKind.GIT, branch="main", commit="abc1234"), False, rec)
    assert (spec.git_url, spec.branch, spec.commit) == ("https://u:t@h/r.git", "main", "abc1234")
    new = SourceSpec(kind=SourceKind.GIT, git_url="https://h/other.git")
    assert resolve_spec(new, False, rec) is new
    with pytest.raises(InvalidSource, match="only a bot deployed from git"):
        resolve_spec(None, True, _record(None))
    with pytest.raises(InvalidSource, match="needs new code"):
        resolve_spec(None, False, rec)
    bare = SourceSpec(kind=SourceKind.GIT)
    assert resolve_spec(bare, False, None) is bare  # a start without a URL: refused when cloning


def test_hosts_on_the_runners_own_network_are_refused_unless_listed() -> None:
    from runner.builds.giturl import GitRefused, check_host

    for url in (
        "http://127.0.0.1/r.git",
        "https://10.1.2.3/r.git",
        "https://[::1]/r.git",
        "http://192.168.1.5/r.git",
        "https://localhost/r.git",
        "http://169.254.169.254/r.git",
    ):
        with pytest.raises(GitRefused):
            check_host(url, [])
    check_host("git://127.0.0.1:9418/r.git", ["127.0.0.1", "localhost"])
    with pytest.raises(GitRefused, match="GIT_ALLOWED_HOSTS"):
        check_host("https://github.com/a/b.git", ["127.0.0.1"])
    # A public literal address passes without DNS.
    check_host("https://1.1.1.1/r.git", [])


def test_zip_folders_count_toward_the_file_limit() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("main.py", b"print(1)\n")
        for i in range(MAX_FILES):
            zf.writestr(zipfile.ZipInfo(f"d{i}/"), b"")
    with pytest.raises(InvalidSource) as info:
        read_zip(buf.getvalue(), 1 << 20)
    assert f"{MAX_FILES} files" in info.value.message
