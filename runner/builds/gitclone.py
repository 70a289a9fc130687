"""Shallow clones with GitPython, bounded in time and size; blocking, so callers use to_thread.

GitPython's `kill_after_timeout` does not apply to clone and fetch (they run `as_process`), so a
watchdog thread kills the git process group when the clone runs too long or grows too large.
GitPython's unsafe protocols and options stay disabled; the URL was checked by `giturl` before.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import git
from git.util import RemoteProgress

from runner.builds.giturl import GitFailed, allowed_transports, display_url, redact

_local = threading.local()
_UNREACHABLE = (
    "unable to connect",
    "failed to connect",
    "could not resolve",
    "connection refused",
    "timed out",
)
# What git says when a repository is missing, private, or the credentials are wrong.
_UNREADABLE = (
    "not found",
    "authentication",
    "could not read",
    "does not appear",
    "access denied",
    "not exported",
    "403",
)
_STAGES = {
    RemoteProgress.COUNTING: "counting objects",
    RemoteProgress.COMPRESSING: "compressing objects",
    RemoteProgress.RECEIVING: "receiving objects",
    RemoteProgress.RESOLVING: "resolving deltas",
    RemoteProgress.CHECKING_OUT: "checking out files",
}


@dataclass(frozen=True)
class Checkout:
    commit: str
    subject: str
    branch: str | None


def too_large(max_bytes: int) -> str:
    size = f"{max_bytes >> 20} MB" if max_bytes >= 1 << 20 else f"{max_bytes >> 10} KB"
    return f"the repository is larger than {size}, the limit of this runner"


def tree_bytes(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


class _Watchdog:
    """Kills the git processes of one clone when it exceeds its time or size budget."""

    def __init__(self, dest: Path, timeout: float, max_bytes: int, cancelled: threading.Event | None) -> None:
        self.dest, self.timeout, self.max_bytes = dest, timeout, max_bytes
        self.cancelled = cancelled or threading.Event()
        self.deadline = time.monotonic() + timeout
        self.reason: str | None = None
        self._procs: list[subprocess.Popen[Any]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="git-watchdog", daemon=True)

    def __enter__(self) -> _Watchdog:
        _local.watchdog = self
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        _local.watchdog = None
        self._done.set()
        self._thread.join()

    def attach(self, proc: subprocess.Popen[Any]) -> None:
        self._procs.append(proc)
        if self.reason is not None:
            self._kill()

    def remaining(self) -> float:
        return max(1.0, self.deadline - time.monotonic())

    def _run(self) -> None:
        while not self._done.wait(0.25):
            if self.cancelled.is_set():
                self.reason = "the clone was cancelled: the runner is shutting down"
            elif time.monotonic() > self.deadline:
                self.reason = f"the clone took longer than {self.timeout:g} s"
            elif tree_bytes(self.dest) > self.max_bytes:
                self.reason = too_large(self.max_bytes)
            if self.reason is not None:
                self._kill()
                return

    def _kill(self) -> None:
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # git clone spawns remote helpers: all of them


class _WatchedGit(git.Git):
    """Starts long-running git commands in a process group of their own, under the watchdog."""

    def execute(self, command: Any, *args: Any, **kwargs: Any) -> Any:
        dog: _Watchdog | None = getattr(_local, "watchdog", None)
        if dog is None or not kwargs.get("as_process"):
            return super().execute(command, *args, **kwargs)
        kwargs["start_new_session"] = True
        result = super().execute(command, *args, **kwargs)
        dog.attach(result.proc)
        return result


class _Repo(git.Repo):
    GitCommandWrapperType = _WatchedGit


class _Progress(RemoteProgress):
    def __init__(self, on_progress: Callable[[str], None]) -> None:
        super().__init__()
        self.on_progress = on_progress

    def update(self, op_code: int, cur_count: Any, max_count: Any = None, message: str = "") -> None:
        stage = _STAGES.get(op_code & RemoteProgress.OP_MASK)
        if stage is None:
            return
        pct = f" {int(100 * float(cur_count) / float(max_count))}%" if max_count else ""
        self.on_progress(f"{stage}{pct}")


def git_env(schemes: list[str]) -> dict[str, str]:
    """No prompts, no user or system config, and only the allowed transports, even on redirects."""
    return {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "true",
        "SSH_ASKPASS": "true",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ALLOW_PROTOCOL": ":".join(allowed_transports(schemes)) or "https",
        "GIT_PROTOCOL_FROM_USER": "0",
        "GIT_LFS_SKIP_SMUDGE": "1",
        "GIT_CONFIG_COUNT": "3",
        "GIT_CONFIG_KEY_0": "core.hooksPath",
        "GIT_CONFIG_VALUE_0": os.devnull,
        "GIT_CONFIG_KEY_1": "submodule.recurse",
        "GIT_CONFIG_VALUE_1": "false",
        # The host was checked before the clone; a redirect must not lead somewhere unchecked.
        "GIT_CONFIG_KEY_2": "http.followRedirects",
        "GIT_CONFIG_VALUE_2": "false",
    }


def clone(
    url: str,
    dest: Path,
    *,
    branch: str | None,
    commit: str | None,
    schemes: list[str],
    timeout: float,
    max_bytes: int,
    on_progress: Callable[[str], None],
    cancelled: threading.Event | None = None,
) -> Checkout:
    """Check out url at the head of branch (or the remote's default), or at commit, into dest."""
    env = git_env(schemes)
    progress = _Progress(on_progress)
    with _Watchdog(dest, timeout, max_bytes, cancelled) as dog:
        try:
            if commit is not None and len(commit) == 40:
                repo = _fetch_commit(url, dest, commit, env, progress)
            else:
                opts: dict[str, Any] = {"single_branch": True, "no_tags": True}
                if commit is None:
                    opts["depth"] = 1
                if branch is not None:
                    opts["branch"] = branch
                # GitPython takes a RemoteProgress here too; its annotation names only callables.
                repo = _Repo.clone_from(url, dest, progress=cast(Any, progress), env=env, **opts)
                branch = branch or repo.active_branch.name  # the remote's default, when none was named
                if commit is not None:
                    # A short sha: only the branch's history can resolve it.
                    full = _resolve(repo, commit, url, branch)
                    repo.git.checkout("--detach", full, kill_after_timeout=dog.remaining())
        except git.GitCommandNotFound as e:
            raise GitFailed("git is not installed on the runner host; tell the operator") from e
        except git.GitCommandError as e:
            # With a progress handler, git's stderr went to it, not into the exception.
            stderr = "\n".join([*progress.error_lines, *progress.other_lines, str(e.stderr or "")])
            raise _failure(stderr, url, branch, commit, dog.reason) from None
        if dog.reason is not None:
            raise GitFailed(dog.reason)
    if tree_bytes(dest) > max_bytes:
        raise GitFailed(too_large(max_bytes))
    head = repo.head.commit
    return Checkout(commit=head.hexsha, subject=str(head.summary)[:200], branch=branch)


def _resolve(repo: git.Repo, commit: str, url: str, branch: str | None) -> str:
    try:
        return str(repo.git.rev_parse("--verify", "--quiet", f"{commit}^{{commit}}"))
    except git.GitCommandError:
        on = f" on the branch {branch!r}" if branch else ""
        raise GitFailed(f"the commit {commit} is not in {display_url(url)}{on}", field="commit") from None


def _fetch_commit(url: str, dest: Path, commit: str, env: dict[str, str], progress: _Progress) -> git.Repo:
    """One commit by its full sha, shallow: the server must allow it (protocol v2 does)."""
    repo = _Repo.init(dest)
    repo.git.update_environment(**env)
    origin = repo.create_remote("origin", url)
    origin.fetch(commit, depth=1, progress=progress, no_tags=True)
    proc = repo.git.checkout("--detach", "FETCH_HEAD", as_process=True)
    proc.wait()
    return repo


def _failure(stderr: str, url: str, branch: str | None, commit: str | None, reason: str | None) -> GitFailed:
    if reason is not None:
        return GitFailed(reason)
    stderr = redact(stderr, url).strip()
    low = stderr.lower()
    where = display_url(url)
    if branch and ("remote branch" in low and "not found" in low):
        return GitFailed(f"the branch {branch!r} does not exist in {where}", field="branch")
    if commit and ("did not match any" in low or "not our ref" in low or "couldn't find remote ref" in low):
        return GitFailed(f"the commit {commit} is not in {where}", field="commit")
    if any(s in low for s in _UNREACHABLE):
        return GitFailed(
            f"could not reach {where}; check the host name", field="git_url", detail=stderr[-2000:]
        )
    if any(s in low for s in _UNREADABLE):
        return GitFailed(
            f"could not read the repository {where}: check the URL, and that it is public "
            "or the URL carries an access token",
            field="git_url",
            detail=stderr[-2000:],
        )
    return GitFailed(f"git could not fetch {where}", field="git_url", detail=stderr[-2000:])
