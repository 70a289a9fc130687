"""The interface the runner needs from a container engine: the only door to the engine.

Docker on one host implements it today (`runner.backend.docker`); Swarm or Kubernetes can stand
beside it without touching the queue, the operations or the build policy. docs/backends.md says
what each method promises. The rules every implementation keeps:
- an engine that does not answer raises `protocol.errors.DockerUnavailable`, nothing else;
- removing something already gone is fine; inspecting it gives None;
- every method may be called twice for one command (redelivery), so each is idempotent.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

# The uid:gid bots and jobs run as unless a spec says otherwise: nobody.
NOBODY = "65534:65534"


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to create one bot's container."""

    owner: int
    name: str
    image: str
    command: list[str] | None  # None: the image's own CMD/ENTRYPOINT
    env: dict[str, str]
    files: dict[str, bytes]  # relative path inside /app -> content, copied in before start
    request_id: str
    memory_bytes: int
    cpu: float
    pids: int
    labels: dict[str, str] = field(default_factory=dict)
    # False for an image that carries its code (a bot's own Dockerfile): no /app volume, no files,
    # and the image's WORKDIR.
    app_volume: bool = True
    # Swarm: the node that holds the bot's /data (from its record), so it runs there again.
    node: str | None = None


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    status: str  # created | running | restarting | paused | exited | dead | removing
    running: bool
    restarting: bool
    exit_code: int | None
    oom_killed: bool
    started_at: float | None
    finished_at: float | None
    restart_count: int
    image: str
    request_id: str | None
    node: str | None = None  # Swarm: the node its /data is pinned to; None on one engine

    @property
    def never_started(self) -> bool:
        """Created, never started: maybe half made, by a runner that died between the engine's
        create and the copy of the bot's files. Made again, never started as it is (deploy).
        (Swarm makes a service and its code in one call, and says "exited" of a stopped one.)"""
        return self.status == "created" and self.started_at is None

    @property
    def stopped_from_outside(self) -> bool:
        """Exited by SIGTERM (143) or SIGKILL (137) without an OOM kill, and not being restarted:
        what `docker stop`, a dockerd restart or a reboot leave. Not the bot's own failure: the
        runner's reconcile starts a bot that should run."""
        return (
            not self.running
            and not self.restarting
            and not self.oom_killed
            and self.exit_code in (128 + 15, 128 + 9)
        )


@dataclass(frozen=True)
class ResourceUsage:
    memory_bytes: int
    cpu_percent: float


@dataclass(frozen=True)
class DockerEvent:
    action: str  # start | die | oom | destroy | ...
    owner: int
    name: str
    container_id: str
    exit_code: int | None
    at: float | None = None  # when the engine says it happened (epoch seconds), if it says


@dataclass(frozen=True)
class BuildContext:
    """A Dockerfile and the files beside it. Paths in `executables` keep their executable bit."""

    dockerfile: str
    files: dict[str, bytes] = field(default_factory=dict)
    executables: frozenset[str] = frozenset()


@dataclass(frozen=True)
class BuildLimits:
    network: str | None  # None: the engine's default network
    timeout: float  # seconds; the build is cancelled after it
    memory_bytes: int


@dataclass(frozen=True)
class JobLimits(BuildLimits):
    """A build step run as a job container (pip, git clone): CPU and pids are capped as well."""

    cpu: float
    pids: int


@dataclass(frozen=True)
class ImageBuild:
    """An image to build: context as tag, within limits."""

    context: BuildContext
    tag: str
    limits: BuildLimits
    labels: dict[str, str] = field(default_factory=dict)  # beside botrunner's managed and kind
    on_line: Callable[[str], None] | None = None  # gets each log line, from any thread


class ImageRemoval(enum.StrEnum):
    REMOVED = "removed"
    MISSING = "missing"  # it was already gone
    IN_USE = "in_use"  # a container uses it: kept, never forced


@dataclass(frozen=True)
class BotMount:
    """One of a bot's volumes, mounted into a job: `role` "data" (/data), "data-prev" (what a restore
    replaced) or "backups" (scheduled backups); created empty when missing."""

    owner: int
    name: str
    role: str
    path: str
    read_only: bool = False


@dataclass(frozen=True)
class JobSpec:
    """A one-shot container: runs a command to its end, then is removed, whatever happened.

    The defaults are the sandbox bots get: nobody, no capabilities, no new privileges, a read-only
    root with a small /tmp. Files are copied into `workdir` before the start; with a read-only root
    the engine gives `workdir` a scratch volume of its own, removed with the job.
    """

    image: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)  # path relative to workdir -> content
    workdir: str = "/work"
    user: str = NOBODY
    read_only: bool = True
    tmpfs: dict[str, str] = field(default_factory=lambda: {"/tmp": "rw,nosuid,nodev,size=64m,mode=1777"})
    memory_bytes: int = 256 << 20
    cpu: float = 1.0
    pids: int = 128
    network: str | None = None  # None: no network at all
    timeout: float = 300.0  # seconds until the job is killed
    labels: dict[str, str] = field(default_factory=dict)
    # Commit the finished container (exit code 0 only) as this tag, with this image config
    # (Docker's names: {"Env": [...], "WorkingDir": "...", "Cmd": [...]}).
    commit_to: str | None = None
    commit_config: dict[str, object] = field(default_factory=dict)
    max_output_bytes: int = 64 * 1024  # of stdout and of stderr each; the last bytes are kept
    mounts: list[BotMount] = field(default_factory=list)
    # After exit 0: this path (under workdir, so on the scratch volume) as a tar, read before the
    # job is removed; over collect_max_bytes it is dropped (JobResult.archive None, truncated).
    collect: str | None = None
    collect_max_bytes: int = 256 << 20


@dataclass(frozen=True)
class JobResult:
    exit_code: int  # -1 when killed at the timeout
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    oom_killed: bool = False
    truncated: bool = False  # stdout or stderr lost its beginning to max_output_bytes
    image: str | None = None  # the committed image's id, with commit_to
    duration_s: float = 0.0
    archive: bytes | None = None  # the tar of spec.collect


class Backend(Protocol):
    # -- the engine -------------------------------------------------------------------------
    async def version(self) -> str:
        """The engine's version; the runner's liveness probe."""

    async def engine_id(self) -> str:
        """A stable id of the engine (docker info's ID), so two runners can tell they share one."""

    async def node_count(self) -> int:
        """The nodes bots can run on: 1 for one engine; the ready swarm nodes under swarm."""

    async def prepare(self) -> None:
        """Create what bots need once (their network). Idempotent."""

    @property
    def egress(self) -> str:
        """What bots reach, for the heartbeat and /system: "public", "open", "open (host network)"."""

    async def guard_egress(self) -> None:
        """Install or repair the egress guard of the bots' network (and drop it once the network is
        gone). Idempotent; runs before any bot starts and on every reconcile. No-op without a guard."""

    # -- a bot's container ------------------------------------------------------------------
    async def deploy(self, spec: ContainerSpec, *, start: bool = True) -> ContainerInfo:
        """Create (or adopt, when it carries spec.request_id) the container, copy files, start.
        A container never started is not adopted but made again: its maker may have died before
        its files were in."""

    async def inspect(self, owner: int, name: str) -> ContainerInfo | None: ...

    async def start(self, owner: int, name: str) -> None: ...

    async def stop(self, owner: int, name: str, timeout: float) -> None:
        """Stop it, SIGKILL after timeout seconds. Missing is fine."""

    async def restart(self, owner: int, name: str, timeout: float) -> None: ...

    async def set_restart_policy(self, owner: int, name: str, *, restart: bool) -> None:
        """restart=False: the engine never starts the bot on its own again (a user's stop: not even
        when the daemon restarts); True: on-failure up to restart_max, as deploy creates it.
        Missing is fine."""

    async def remove(self, owner: int, name: str, *, volumes: bool) -> None:
        """Remove the container; with volumes, its code and data volumes too. Missing is fine."""

    async def managed(self) -> list[tuple[int, str, ContainerInfo]]:
        """Every container this runner instance manages, by label."""

    async def volume_usage(self) -> dict[tuple[int, str], int]:
        """Bytes each bot's volumes hold, by (owner, name), from one engine call."""

    # -- what bots say and use --------------------------------------------------------------
    async def logs(self, owner: int, name: str, tail: int | None, since: float | None) -> str:
        """Stdout and stderr interleaved; "" for a missing container."""

    async def stats(self, owner: int, name: str) -> ResourceUsage | None: ...

    async def stats_many(self, bots: list[tuple[int, str]]) -> dict[tuple[int, str], ResourceUsage]:
        """Usage of many bots in one sweep; a bot not running is left out."""

    def events(self, since: float | None = None) -> AsyncIterator[DockerEvent]:
        """Container events of this instance, as they happen. Raises DockerUnavailable when the
        stream breaks; the caller calls again. `since` (a time.time()): first the events from then
        on that the engine still holds (dockerd: its last 256), for the moment between the
        caller's decision to watch and the stream's opening."""

    # -- images -----------------------------------------------------------------------------
    async def image_id(self, ref: str) -> str | None:
        """The local id of an image, None when there is none."""

    async def image_exists(self, ref: str) -> bool: ...

    async def build_image(self, build: ImageBuild) -> None:
        """Build it, unless its tag exists. Raises BuildFailed (its detail the log's tail).
        Cancelling the caller cancels the build."""

    async def container_image(self, ref: str) -> str | None:
        """The image (as named at create) of any container by id or name; None if there is none.
        The runner asks it of its own container, to run clone jobs from its own image."""

    async def image_onbuild(self, ref: str) -> list[str] | None:
        """The ONBUILD triggers of an image, pulled first when it is not local (as a build would);
        None when it can be neither pulled nor inspected."""

    async def image_usage(self, repos: tuple[str, ...]) -> dict[str, int]:
        """Tag -> bytes removing it would free (size less shared layers), for tags in repos."""

    async def remove_image(self, tag: str) -> ImageRemoval: ...

    async def remove_build_leftovers(self) -> int:
        """Remove what failed builds left behind (untagged layers); returns bytes freed."""

    # -- one-shot jobs ----------------------------------------------------------------------
    async def run_job(self, spec: JobSpec) -> JobResult:
        """Run spec to its end or its timeout; the container is always removed."""
