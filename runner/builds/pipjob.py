"""pip in a throwaway job container: dependency sets installed in the bots' sandbox.

The job runs the runtime image as the bots' user (65534) with no capabilities, no new privileges,
memory, CPU and pids limits and the build timeout, on the bots' guarded network (or
RUNNER_BUILD_NETWORK). Its root is writable, so pip installs into the runtime image's /opt/venv,
which belongs to 65534 there; `commit_to` turns the container's own layer into the cached
`botrunner/deps:<hash>` image. A setup.py therefore never runs as root and never holds a
capability. docs/builds.md says why commit and not a COPY-only build.
"""

from __future__ import annotations

from protocol.errors import BuildFailed
from runner.backend import names
from runner.backend.base import Backend, JobLimits, JobResult, JobSpec

VENV = "/opt/venv"
# Where the requirements file is copied: the venv belongs to 65534, who can remove it again.
WORKDIR = VENV
REQUIREMENTS = "botrunner-requirements.txt"
# pip's own output with a blank prefix stripped: what the BUILD_FAILED detail carries.
MAX_LOG_BYTES = 256_000
PATH = f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Part of the cache key: a change of how dependencies are installed gives new tags.
RECIPE = "pip-job-v1"


def requirements_text(deps: list[str]) -> str:
    return "".join(f"{d}\n" for d in deps)


def pip_job(runtime: str, deps: list[str], tag: str, limits: JobLimits) -> JobSpec:
    """The job that installs deps into the runtime's venv and is committed as tag."""
    pip = f"{VENV}/bin/pip install --no-cache-dir --no-input --progress-bar off --disable-pip-version-check"
    # The file is in the container's own layer (docker creates the workdir at create time, and
    # put_archive writes there); removing it keeps it out of the committed image.
    command = ["/bin/sh", "-c", f'{pip} -r "$1" && rm -f "$1"', "pip-job", f"{WORKDIR}/{REQUIREMENTS}"]
    # Sdists build in /tmp: a tmpfs within the memory limit, gone with the job, never committed.
    tmp_size = max(64 << 20, limits.memory_bytes // 2)
    return JobSpec(
        image=runtime,
        command=command,
        env={"HOME": "/tmp", "PIP_NO_CACHE_DIR": "1"},
        files={REQUIREMENTS: requirements_text(deps).encode()},
        workdir=WORKDIR,
        read_only=False,  # the container's own layer takes the install, and is committed
        tmpfs={"/tmp": f"rw,nosuid,nodev,size={tmp_size},mode=1777"},
        memory_bytes=limits.memory_bytes,
        cpu=limits.cpu,
        pids=limits.pids,
        network=limits.network,
        timeout=limits.timeout,
        labels={names.LABEL_KIND: "job"},
        commit_to=tag,
        commit_config={
            "Env": [f"PATH={PATH}", f"VIRTUAL_ENV={VENV}", "HOME=/tmp"],
            "WorkingDir": "/app",
            "User": "65534:65534",
            "Cmd": ["python3"],
            "Labels": {names.LABEL_MANAGED: "true", names.LABEL_KIND: "image"},
        },
        max_output_bytes=MAX_LOG_BYTES,
    )


def pip_log(result: JobResult, deps: list[str]) -> str:
    """What ran, then stdout and stderr: pip prints what it did on stdout, the error on stderr."""
    head = f"$ pip install -r requirements.txt  # {len(deps)} requirement(s), as uid 65534\n"
    head += "".join(f"#   {d}\n" for d in deps[:50])
    out = result.stdout.decode("utf-8", "replace").rstrip()
    err = result.stderr.decode("utf-8", "replace").rstrip()
    return "\n".join(part for part in (head, out, err) if part)[-MAX_LOG_BYTES:]


async def install(backend: Backend, runtime: str, deps: list[str], tag: str, limits: JobLimits) -> str:
    """Run pip for deps and commit the result as tag; BuildFailed with pip's log otherwise."""
    result = await backend.run_job(pip_job(runtime, deps, tag, limits))
    detail = pip_log(result, deps)
    if result.timed_out:
        raise BuildFailed(
            f"installing the dependencies took longer than {int(limits.timeout)} s", detail=detail
        )
    if result.oom_killed:
        raise BuildFailed(
            f"installing the dependencies ran out of memory ({limits.memory_bytes >> 20} MB)", detail=detail
        )
    if result.exit_code != 0:
        raise BuildFailed(
            f"pip could not install the dependencies (exit code {result.exit_code}); see the build log",
            detail=detail,
        )
    if result.image is None:
        raise BuildFailed("installing the dependencies produced no image", detail=detail)
    return detail
