"""Git clones in a throwaway sandboxed job container, never in the runner (which holds the
Docker socket).

The job runs clone_script.py from the tools image (tools.py) as uid 65534, with no capabilities,
no new privileges, a read-only root, memory/CPU/pids limits and GIT_CLONE_TIMEOUT, on the bots'
guarded network or RUNNER_BUILD_NETWORK: a host that resolves to a private address at clone time
(DNS rebinding) is unreachable from there anyway. The tree is cloned into the job's scratch
volume, capped at GIT_MAX_REPO_BYTES by a watchdog inside the job, copied out as a tar and read
here like `read_tree`: regular files only, no member leaving the tree, size and file caps, and
symlinks kept only when they point inside it.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from protocol.errors import BuildFailed, InvalidSource
from runner.backend import names
from runner.backend.base import Backend, JobLimits, JobResult, JobSpec
from runner.builds import clone_script
from runner.builds.gitclone import Checkout, failure, git_env, too_large
from runner.builds.giturl import GitFailed, display_url, redact
from runner.builds.tree import MAX_FILES, Tree, read_tree, safe_relpath

WORKDIR = "/work"
# The scratch volume's root belongs to root; a directory copied in with the script belongs to the
# job's user, so git can create the clone in it.
OUT = "out"
DEST = f"{WORKDIR}/{OUT}/repo"
SCRIPT = "clone.py"
JOB_GRACE_S = 30.0
# tar headers and padding: at most about 1.5 KB a file on top of the files themselves.
_TAR_SLACK = (MAX_FILES + 100) * 1536


@dataclass(frozen=True)
class CloneRequest:
    """What to clone, and the caps the clone script keeps itself."""

    url: str  # as the user gave it, credentials included: never logged as is
    branch: str | None
    commit: str | None
    timeout: float  # GIT_CLONE_TIMEOUT
    max_bytes: int  # GIT_MAX_REPO_BYTES


def clone_job(image: str, request: CloneRequest, schemes: list[str], limits: JobLimits) -> JobSpec:
    """The job that runs the clone script; limits are the build sandbox's, but for the timeout."""
    script_request = {**asdict(request), "dest": DEST}
    env = {**git_env(schemes), "HOME": "/tmp", "BOTRUNNER_CLONE": json.dumps(script_request)}
    return JobSpec(
        image=image,
        command=["python3", f"{WORKDIR}/{SCRIPT}"],
        env=env,
        files={SCRIPT: Path(clone_script.__file__).read_bytes(), f"{OUT}/.keep": b""},
        workdir=WORKDIR,
        memory_bytes=limits.memory_bytes,
        cpu=limits.cpu,
        pids=limits.pids,
        network=limits.network,
        # The script keeps GIT_CLONE_TIMEOUT itself; this backstop adds the container's start.
        timeout=request.timeout + JOB_GRACE_S,
        labels={names.LABEL_KIND: "job"},
        collect=DEST,
        collect_max_bytes=request.max_bytes + _TAR_SLACK,
    )


def extract_tree(archive: bytes, max_bytes: int) -> Tree:
    """The tar docker copied out ("repo/..."), read as safely as a directory on disk."""
    with tempfile.TemporaryDirectory(prefix="botrunner-git-") as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        total, count = 0, 0
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
            for member in tar:
                _, _, rel = member.name.partition("/")
                if not rel or member.isdir():
                    continue
                try:
                    rel = safe_relpath(rel, "path")
                except InvalidSource:
                    continue  # nothing outside the tree; docker writes none, but never trust it
                count += 1
                total += max(member.size, 0)
                if total > max_bytes or count > MAX_FILES:
                    raise InvalidSource(
                        f"the bot is larger than {max_bytes // (1024 * 1024)} MB or {MAX_FILES} files",
                        field="source",
                    )
                path = root / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                if member.issym():
                    os.symlink(member.linkname, path)  # read_tree keeps it only if it stays inside
                elif member.isfile():
                    src = tar.extractfile(member)
                    if src is not None:
                        path.write_bytes(src.read())
                        path.chmod(0o755 if member.mode & 0o111 else 0o644)
        return read_tree(root, max_bytes)


def _checkout(result: JobResult) -> Checkout:
    line = result.stdout.decode("utf-8", "replace").strip().splitlines()[-1]
    data = json.loads(line)
    return Checkout(commit=str(data["commit"]), subject=str(data["subject"]), branch=data.get("branch"))


async def clone_in_job(backend: Backend, spec: JobSpec, request: CloneRequest) -> tuple[Checkout, Tree]:
    try:
        result = await backend.run_job(spec)
    except BuildFailed as e:  # the engine refused the job (no such image, bad option)
        raise GitFailed(f"the clone could not start: {redact(str(e), request.url)}") from None
    stderr = result.stderr.decode("utf-8", "replace")
    if result.timed_out or result.exit_code == clone_script.EXIT_TIMEOUT:
        raise GitFailed(f"the clone took longer than {request.timeout:g} s")
    if result.exit_code == clone_script.EXIT_TOO_LARGE or (result.exit_code == 0 and result.truncated):
        raise GitFailed(too_large(request.max_bytes))
    if result.exit_code == clone_script.EXIT_NO_COMMIT:
        on = f" on the branch {request.branch!r}" if request.branch else ""
        raise GitFailed(
            f"the commit {request.commit} is not in {display_url(request.url)}{on}", field="commit"
        )
    if result.exit_code == clone_script.EXIT_GIT:
        raise failure(stderr, request.url, request.branch, request.commit, None)
    if result.exit_code != 0 or result.archive is None:
        why = "it ran out of memory" if result.oom_killed else f"exit code {result.exit_code}"
        raise GitFailed(
            f"git could not fetch {display_url(request.url)} ({why})",
            field="git_url",
            detail=redact(stderr, request.url)[-2000:] or None,
        )
    return _checkout(result), extract_tree(result.archive, request.max_bytes)
