"""An in-memory Backend that keeps the contract of runner/backend/base.py (docs/backends.md).

It is for testing the runner's logic (the queue, idempotency, crash streaks, quotas) without an
engine; it is no substitute for the integration tests on real Docker. tests/integration/
test_backend_contract.py runs the same assertions on it and on DockerBackend, so it cannot drift.

What a test can do to it, beyond the Backend methods:
- `crash(owner, name, exit_code, oom=...)`: the bot's process dies; the restart policy (on-failure,
  up to restart_max) applies, with the events Docker would emit;
- `say(owner, name, line)`: the bot prints a line;
- `outage = True`: every call raises DockerUnavailable, and the event stream breaks;
- `calls`: a count of each method's calls, e.g. to assert a redelivery created no second container.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace

from protocol.errors import BuildFailed, DockerUnavailable, NotFound
from runner.backend.base import (
    Backend,
    ContainerInfo,
    ContainerSpec,
    DockerEvent,
    ImageBuild,
    ImageRemoval,
    JobResult,
    JobSpec,
    ResourceUsage,
)

# SIGTERM through tini: what Docker reports for a bot stopped on purpose.
STOPPED_EXIT = 143
_ids = itertools.count(1)


def _new_id() -> str:
    return f"{next(_ids):012x}".ljust(64, "f")


@dataclass
class FakeContainer:
    spec: ContainerSpec
    id: str = field(default_factory=_new_id)
    status: str = "created"
    exit_code: int | None = None
    oom_killed: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    restart_count: int = 0
    restart_policy: bool = True  # on-failure up to restart_max; False: "no"
    logs: list[tuple[float, str]] = field(default_factory=list)
    usage: ResourceUsage = field(
        default_factory=lambda: ResourceUsage(memory_bytes=20 << 20, cpu_percent=0.5)
    )

    def info(self) -> ContainerInfo:
        return ContainerInfo(
            id=self.id,
            status=self.status,
            running=self.status == "running",
            restarting=self.status == "restarting",
            exit_code=self.exit_code if self.status in ("exited", "dead") else None,
            oom_killed=self.oom_killed,
            started_at=self.started_at,
            finished_at=self.finished_at,
            restart_count=self.restart_count,
            image=self.spec.image,
            request_id=self.spec.request_id,
        )


class FakeBackend:
    def __init__(self, *, restart_max: int = 5, engine: str = "fake-engine") -> None:
        self.restart_max = restart_max
        self.engine = engine
        self.containers: dict[tuple[int, str], FakeContainer] = {}
        self.volumes: dict[str, int] = {}  # name -> bytes
        self.images: dict[str, str] = {}  # tag -> id
        self.image_sizes: dict[str, int] = {}
        self.builds: list[str] = []
        self.jobs: list[JobSpec] = []
        self.job_handler: Callable[[JobSpec], JobResult] = lambda spec: JobResult(0, b"", b"")
        self.fail_builds: set[str] = set()
        self.outage = False
        self.latency = 0.0  # seconds each call takes, to widen races
        self.latency_of: dict[str, float] = {}  # by method, in place of `latency`
        # Seconds an event stream takes to open, as a real one in its thread does on a busy host.
        self.events_open_delay = 0.0
        # How much later than the death its die event is stamped: dockerd logs it after cleanup.
        self.die_event_lag = 0.0
        self.calls: collections.Counter[str] = collections.Counter()
        self._listeners: list[asyncio.Queue[DockerEvent | None]] = []
        # The engine's own memory of recent events, which `events(since=...)` replays.
        self._recent: collections.deque[DockerEvent] = collections.deque(maxlen=256)

    # -- plumbing ---------------------------------------------------------------------------
    async def _enter(self, method: str) -> None:
        self.calls[method] += 1
        # A real engine call yields to the loop: races can happen.
        await asyncio.sleep(self.latency_of.get(method, self.latency))
        if self.outage:
            raise DockerUnavailable()

    def _emit(self, action: str, c: FakeContainer, exit_code: int | None = None, lag: float = 0.0) -> None:
        ev = DockerEvent(action, c.spec.owner, c.spec.name, c.id, exit_code, time.time() + lag)
        self._recent.append(ev)
        for q in self._listeners:
            q.put_nowait(ev)

    def _run(self, c: FakeContainer) -> None:
        # A start asked for keeps restart_count, as dockerd 20.10 does (checked by hand): a bot
        # started again after a crash loop is not restarted by the policy any more.
        c.status, c.started_at, c.exit_code, c.oom_killed = "running", time.time(), None, False
        self._emit("start", c)

    def _die(self, c: FakeContainer, exit_code: int, oom: bool = False) -> None:
        c.status, c.exit_code, c.oom_killed, c.finished_at = "exited", exit_code, oom, time.time()
        if oom:
            self._emit("oom", c)
        self._emit("die", c, exit_code, self.die_event_lag)

    def _need(self, owner: int, name: str) -> FakeContainer:
        c = self.containers.get((owner, name))
        if c is None:
            raise NotFound(name)
        return c

    # -- what tests do to bots --------------------------------------------------------------
    def crash(self, owner: int, name: str, exit_code: int = 1, *, oom: bool = False) -> None:
        """The bot's process dies; Docker's on-failure policy brings it back up to restart_max."""
        c = self._need(owner, name)
        self._die(c, 137 if oom else exit_code, oom)
        if (oom or exit_code != 0) and c.restart_policy and c.restart_count < self.restart_max:
            c.restart_count += 1
            self._run(c)

    def daemon_restart(self) -> None:
        """The engine restarts: every running bot dies (143), and the daemon starts again those
        with an on-failure policy whose last exit was non-zero, as dockerd 20.10 does."""
        for c in list(self.containers.values()):
            if c.status in ("running", "restarting"):
                self._die(c, STOPPED_EXIT)
        self.break_events()
        for c in self.containers.values():
            if c.restart_policy and c.status == "exited" and c.exit_code not in (None, 0):
                self._run(c)

    def say(self, owner: int, name: str, line: str) -> None:
        self._need(owner, name).logs.append((time.time(), line))

    # -- the engine -------------------------------------------------------------------------
    async def version(self) -> str:
        await self._enter("version")
        return "fake-1.0"

    async def engine_id(self) -> str:
        await self._enter("engine_id")
        return self.engine

    async def node_count(self) -> int:
        await self._enter("node_count")
        return 1

    async def prepare(self) -> None:
        await self._enter("prepare")

    @property
    def egress(self) -> str:
        return "open"

    async def guard_egress(self) -> None:
        await self._enter("guard_egress")

    # -- a bot's container ------------------------------------------------------------------
    async def deploy(self, spec: ContainerSpec, *, start: bool = True) -> ContainerInfo:
        await self._enter("deploy")
        key = (spec.owner, spec.name)
        existing = self.containers.get(key)
        ours = existing is not None and existing.spec.request_id == spec.request_id
        if existing is not None and ours and not existing.info().never_started:
            if start and existing.status not in ("running", "restarting"):
                self._run(existing)
            return existing.info()
        if existing is not None:
            await self._drop(existing)
        app, data = f"botrunner-{spec.owner}-{spec.name}_app", f"botrunner-{spec.owner}-{spec.name}_data"
        if spec.app_volume:
            self.volumes[app] = sum(len(b) for b in spec.files.values())
        self.volumes.setdefault(data, 0)
        c = FakeContainer(spec=replace(spec, files=dict(spec.files) if spec.app_volume else {}))
        self.containers[key] = c
        if start:
            self._run(c)
        return c.info()

    async def _drop(self, c: FakeContainer) -> None:
        if c.status in ("running", "restarting"):
            self._die(c, 137)
        self._emit("destroy", c)
        del self.containers[(c.spec.owner, c.spec.name)]

    async def inspect(self, owner: int, name: str) -> ContainerInfo | None:
        await self._enter("inspect")
        c = self.containers.get((owner, name))
        return None if c is None else c.info()

    async def start(self, owner: int, name: str) -> None:
        await self._enter("start")
        c = self._need(owner, name)
        if c.status != "running":
            self._run(c)

    async def stop(self, owner: int, name: str, timeout: float) -> None:
        await self._enter("stop")
        c = self.containers.get((owner, name))
        if c is not None and c.status in ("running", "restarting"):
            self._die(c, STOPPED_EXIT)

    async def restart(self, owner: int, name: str, timeout: float) -> None:
        await self._enter("restart")
        c = self._need(owner, name)
        if c.status in ("running", "restarting"):
            self._die(c, STOPPED_EXIT)
        self._run(c)

    async def set_restart_policy(self, owner: int, name: str, *, restart: bool) -> None:
        await self._enter("set_restart_policy")
        c = self.containers.get((owner, name))
        if c is not None:
            c.restart_policy = restart

    async def remove(self, owner: int, name: str, *, volumes: bool) -> None:
        await self._enter("remove")
        c = self.containers.get((owner, name))
        if c is not None:
            await self._drop(c)
        if volumes:
            for suffix in ("_app", "_data"):
                self.volumes.pop(f"botrunner-{owner}-{name}{suffix}", None)

    async def managed(self) -> list[tuple[int, str, ContainerInfo]]:
        await self._enter("managed")
        return [(o, n, c.info()) for (o, n), c in self.containers.items()]

    async def volume_usage(self) -> dict[tuple[int, str], int]:
        await self._enter("volume_usage")
        out: dict[tuple[int, str], int] = {}
        for owner, name in {(c.spec.owner, c.spec.name) for c in self.containers.values()}:
            prefix = f"botrunner-{owner}-{name}_"
            out[(owner, name)] = sum(b for v, b in self.volumes.items() if v.startswith(prefix))
        return out

    # -- what bots say and use --------------------------------------------------------------
    async def logs(self, owner: int, name: str, tail: int | None, since: float | None) -> str:
        await self._enter("logs")
        c = self.containers.get((owner, name))
        if c is None:
            return ""
        lines = [line for ts, line in c.logs if since is None or since <= 0 or ts >= since]
        if tail:
            lines = lines[-tail:]
        return "".join(f"{line}\n" for line in lines)

    async def stats(self, owner: int, name: str) -> ResourceUsage | None:
        await self._enter("stats")
        c = self.containers.get((owner, name))
        return c.usage if c is not None and c.status == "running" else None

    async def stats_many(self, bots: list[tuple[int, str]]) -> dict[tuple[int, str], ResourceUsage]:
        await self._enter("stats_many")
        out = {}
        for key in bots:
            c = self.containers.get(key)
            if c is not None and c.status == "running":
                out[key] = c.usage
        return out

    async def events(self, since: float | None = None) -> AsyncIterator[DockerEvent]:
        await self._enter("events")
        await asyncio.sleep(self.events_open_delay)
        queue: asyncio.Queue[DockerEvent | None] = asyncio.Queue()
        for ev in self._recent:
            if since is not None and ev.at is not None and ev.at >= since:
                queue.put_nowait(ev)
        self._listeners.append(queue)
        try:
            while True:
                ev = await queue.get()
                if ev is None or self.outage:
                    raise DockerUnavailable("the fake event stream broke")
                yield ev
        finally:
            self._listeners.remove(queue)

    def break_events(self) -> None:
        """Every open event stream raises DockerUnavailable, as a restarted dockerd does."""
        for q in self._listeners:
            q.put_nowait(None)

    # -- images -----------------------------------------------------------------------------
    async def image_id(self, ref: str) -> str | None:
        await self._enter("image_id")
        return self.images.get(ref)

    async def image_exists(self, ref: str) -> bool:
        return await self.image_id(ref) is not None

    async def build_image(self, build: ImageBuild) -> None:
        await self._enter("build_image")
        tag, context = build.tag, build.context
        if tag in self.images:
            return
        if tag in self.fail_builds:
            raise BuildFailed("the image build failed; see the build log", detail="fake build failure")
        self.builds.append(tag)
        if build.on_line is not None:
            build.on_line("Step 1/1 : FROM fake")
        self.images[tag] = f"sha256:{len(self.images):064x}"
        self.image_sizes[tag] = len(context.dockerfile) + sum(len(b) for b in context.files.values())

    async def container_image(self, ref: str) -> str | None:
        await self._enter("container_image")
        return None

    async def image_onbuild(self, ref: str) -> list[str] | None:
        await self._enter("image_onbuild")
        return [] if ref in self.images else None

    async def image_usage(self, repos: tuple[str, ...]) -> dict[str, int]:
        await self._enter("image_usage")
        prefixes = tuple(f"{r}:" for r in repos)
        return {t: self.image_sizes.get(t, 0) for t in self.images if t.startswith(prefixes)}

    async def remove_image(self, tag: str) -> ImageRemoval:
        await self._enter("remove_image")
        if tag not in self.images:
            return ImageRemoval.MISSING
        if any(c.spec.image == tag for c in self.containers.values()):
            return ImageRemoval.IN_USE
        del self.images[tag]
        self.image_sizes.pop(tag, None)
        return ImageRemoval.REMOVED

    async def remove_build_leftovers(self) -> int:
        await self._enter("remove_build_leftovers")
        return 0

    # -- one-shot jobs ----------------------------------------------------------------------
    async def run_job(self, spec: JobSpec) -> JobResult:
        await self._enter("run_job")
        if spec.image not in self.images:
            raise BuildFailed(f"the job could not run: no such image: {spec.image}")
        self.jobs.append(spec)
        result = self.job_handler(spec)
        out, err = result.stdout[-spec.max_output_bytes :], result.stderr[-spec.max_output_bytes :]
        cut = len(out) < len(result.stdout) or len(err) < len(result.stderr)
        image = None
        if spec.commit_to and result.exit_code == 0 and not result.timed_out:
            image = self.images[spec.commit_to] = f"sha256:{len(self.images):064x}"
        return replace(result, stdout=out, stderr=err, truncated=result.truncated or cut, image=image)


def _conforms(fake: FakeBackend) -> Backend:
    return fake  # mypy checks here that the fake has every method of the protocol, typed alike
