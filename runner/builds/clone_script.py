"""The clone, as it runs inside the throwaway job container (python3 and git; stdlib only).

It never runs in the runner: the runner copies this file into a sandboxed job container (uid
65534, no capabilities, the bots' guarded network) and reads back the checked-out tree. Input is
one JSON object in $BOTRUNNER_CLONE; the result is one JSON line on stdout, and the tree stays in
`dest` for the runner to copy out. git's environment (no prompts, no hooks, no submodules, no
redirects, only the allowed transports) is set by the runner. Exit codes say what went wrong.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

EXIT_GIT = 2  # git failed: its stderr follows on our stderr
EXIT_TOO_LARGE = 3
EXIT_NO_COMMIT = 4
EXIT_TIMEOUT = 5  # GIT_CLONE_TIMEOUT, counted from the script's start (not the container's)


def tree_bytes(root: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


class Clone:
    def __init__(self, dest: str, max_bytes: int, timeout: float) -> None:
        self.dest, self.max_bytes = dest, max_bytes
        self.deadline = time.monotonic() + timeout
        self.too_large = threading.Event()
        self.too_slow = threading.Event()
        self.proc: subprocess.Popen[str] | None = None
        self.done = threading.Event()
        threading.Thread(target=self.watch, daemon=True).start()

    def watch(self) -> None:
        """Kill git once the tree outgrows the cap or the time is up."""
        while not self.done.wait(0.2):
            if time.monotonic() > self.deadline:
                self.too_slow.set()
            elif tree_bytes(self.dest) > self.max_bytes:
                self.too_large.set()
            if self.too_slow.is_set() or self.too_large.is_set():
                if self.proc is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.proc.pid, signal.SIGKILL)
                return

    def stop_if_over(self) -> None:
        if self.too_slow.is_set():
            sys.exit(EXIT_TIMEOUT)
        if self.too_large.is_set():
            sys.exit(EXIT_TOO_LARGE)

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        self.stop_if_over()
        proc = subprocess.Popen(
            ["git", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,  # git spawns remote helpers: the watchdog kills them all
        )
        self.proc = proc
        out, err = proc.communicate()
        self.stop_if_over()
        if check and proc.returncode != 0:
            sys.stderr.write(err)
            sys.exit(EXIT_GIT)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def main() -> None:
    req = json.loads(os.environ["BOTRUNNER_CLONE"])
    url, dest = str(req["url"]), str(req["dest"])
    branch, commit = req.get("branch"), req.get("commit")
    c = Clone(dest, int(req["max_bytes"]), float(req["timeout"]))
    if commit is not None and len(commit) == 40:
        # One commit by its full sha, shallow: the server must allow it (protocol v2 does).
        c.git("init", "-q", dest)
        c.git("-C", dest, "remote", "add", "origin", "--", url)
        c.git("-C", dest, "fetch", "--depth", "1", "--no-tags", "origin", commit)
        c.git("-C", dest, "checkout", "-q", "--detach", "FETCH_HEAD")
    else:
        args = ["clone", "-q", "--single-branch", "--no-tags"]
        if commit is None:
            args += ["--depth", "1"]
        if branch is not None:
            args += ["--branch", branch]
        c.git(*args, "--", url, dest)
        if branch is None:  # the remote's default
            branch = c.git("-C", dest, "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
        if commit is not None:  # a short sha: only the branch's history can resolve it
            found = c.git("-C", dest, "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}", check=False)
            if found.returncode != 0:
                sys.exit(EXIT_NO_COMMIT)
            c.git("-C", dest, "checkout", "-q", "--detach", found.stdout.strip())
    c.done.set()
    if tree_bytes(dest) > c.max_bytes:
        sys.exit(EXIT_TOO_LARGE)
    sha = c.git("-C", dest, "rev-parse", "HEAD").stdout.strip()
    subject = c.git("-C", dest, "log", "-1", "--format=%s").stdout.strip()
    shutil.rmtree(os.path.join(dest, ".git"))  # the runner never reads it: do not copy it out
    print(json.dumps({"commit": sha, "subject": subject[:200], "branch": branch}))


if __name__ == "__main__":
    main()
