"""The runner's cache of built images: one build per content hash, last use recorded, LRU pruning."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field

from redis.asyncio import Redis

from protocol import keys
from protocol.errors import BuildFailed, InvalidSource
from protocol.models import Stage
from runner.backend.base import Backend, BuildContext, JobLimits
from runner.builds.deps import deps_tag
from runner.builds.dockerfile_check import check_dockerfile
from runner.builds.images import ensure_image
from runner.builds.pipjob import install
from runner.builds.progress import LOG_CTX, ProgressFn, ThreadProgress
from runner.builds.prune import prune, remove_leftovers
from runner.builds.repoimage import repo_context, repo_tag
from runner.builds.tree import Tree
from runner.settings import Settings

log = logging.getLogger(__name__)

# Lines of a pip run worth showing as progress.
_PIP_PREFIXES = ("Collecting", "Downloading", "Building wheel", "Installing collected", "Successfully")


@dataclass(eq=False)
class ImageCache:
    settings: Settings
    redis: Redis
    backend: Backend
    in_use: Callable[[], Awaitable[set[str]]]
    _: KW_ONLY
    prune_grace: float = 600.0
    _locks: dict[str, asyncio.Lock] = field(init=False, default_factory=dict)
    _prune_lock: asyncio.Lock = field(init=False, default_factory=asyncio.Lock)
    # The build pool (fair share): builds wait here, holding none of the quick commands' slots.
    _build_slots: asyncio.Semaphore = field(init=False)
    _tasks: set[asyncio.Task[list[str]]] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self._build_slots = asyncio.Semaphore(self.settings.runner_build_concurrency)

    @property
    def limits(self) -> JobLimits:
        """The build sandbox's: pip and clone jobs keep them all, an image build what it can."""
        s = self.settings
        return JobLimits(
            network=s.runner_build_network or s.runner_network_mode,
            timeout=s.runner_build_timeout,
            memory_bytes=s.build_memory_bytes,
            cpu=s.runner_build_cpu_limit,
            pids=s.runner_build_pids_limit,
        )

    async def deps_image(self, runtime: str, deps: list[str], progress: ProgressFn) -> tuple[str, bool]:
        """(tag, cached): the runtime image plus deps; pip runs only for a set never built."""
        tag = await deps_tag(self.backend, runtime, deps)
        async with self._locks.setdefault(tag, asyncio.Lock()):
            cached = await self.backend.image_exists(tag)
            if not cached:
                await progress(Stage.INSTALLING, f"installing {len(deps)} dependencies")
                log.info(
                    "dependencies: pip install of %d package(s) into %s %s", len(deps), tag, LOG_CTX.get()
                )
                try:
                    pip_out = await install(self.backend, runtime, deps, tag, self.limits)
                except BuildFailed:
                    self._spawn_prune()
                    raise
                bridge = _Bridge(progress, Stage.INSTALLING, _PIP_PREFIXES)
                for line in pip_out.splitlines()[-3:]:
                    bridge.on_line(line)  # the outcome ("Successfully installed ...") as progress
                await bridge.flush()
                self._spawn_prune()
            await self.redis.hset(keys.IMAGE_CACHE, tag, str(time.time()))
        log.info("dependencies: %s %s %s", "cached" if cached else "built", tag, LOG_CTX.get())
        return tag, cached

    async def repo_image(self, tree: Tree, progress: ProgressFn) -> tuple[str, bool]:
        """(tag, cached): the image of a repository's own Dockerfile."""
        ctx = repo_context(tree)
        await self.check_dockerfile(ctx.dockerfile)
        await progress(Stage.BUILDING, "building the repository's Dockerfile")
        tag = repo_tag(ctx)
        cached = await self._build(_Bridge(progress, Stage.BUILDING, ("Step ",)), ctx, tag)
        log.info("repository image: %s %s %s", "cached" if cached else "built", tag, LOG_CTX.get())
        return tag, cached

    async def check_dockerfile(self, text: str) -> None:
        """Refuse what the legacy builder would do outside the sandbox (dockerfile_check.py)."""
        plan = await asyncio.to_thread(check_dockerfile, text)
        for base in plan.bases:
            triggers = await self.backend.image_onbuild(base)
            if triggers is None:
                raise InvalidSource(
                    f"Dockerfile: the base image {base!r} could not be pulled or inspected", field="source"
                )
            if triggers:
                raise InvalidSource(
                    f"Dockerfile: the base image {base!r} has ONBUILD triggers, which are not allowed",
                    field="source",
                )

    async def _build(self, bridge: _Bridge, ctx: BuildContext, tag: str) -> bool:
        """Build (or find) tag and record its use; True when it was cached."""
        try:
            async with self._build_slots:
                cached = await ensure_image(self.backend, ctx, tag, self.limits, bridge.on_line)
        except BuildFailed:
            self._spawn_prune()  # a failed build leaves its last good layers behind, untagged
            raise
        finally:
            await bridge.flush()  # no progress message may arrive after the result
        await self.redis.hset(keys.IMAGE_CACHE, tag, str(time.time()))
        if not cached:
            self._spawn_prune()
        return cached

    def _spawn_prune(self) -> None:
        task = asyncio.create_task(self.prune(), name="image-prune")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def prune(self) -> list[str]:
        """Bring the cache under RUNNER_IMAGE_CACHE_BYTES; never an image a bot record names."""
        async with self._prune_lock:
            try:
                raw = await self.redis.hgetall(keys.IMAGE_CACHE)
                last_used = {_text(k): float(v) for k, v in raw.items()}
                keep = await self.in_use()
                # Images bots use are used right now: when their bots go, they are the newest.
                in_use = {tag: time.time() for tag in keep & last_used.keys()}
                if in_use:
                    last_used.update(in_use)
                    await self.redis.hset(keys.IMAGE_CACHE, mapping={t: str(ts) for t, ts in in_use.items()})
                removed, forgotten = await prune(
                    self.backend,
                    last_used,
                    keep=keep,
                    cap_bytes=self.settings.image_cache_bytes,
                    grace=self.prune_grace,
                )
                if removed or forgotten:
                    await self.redis.hdel(keys.IMAGE_CACHE, *removed, *forgotten)
                await remove_leftovers(self.backend)
                return removed
            except Exception as e:  # pruning is housekeeping: never fail a command over it
                log.warning("cache: pruning skipped: %s", e)
                return []


class _Bridge(ThreadProgress):
    """Build log lines worth showing (those starting with one of prefixes) as progress."""

    def __init__(self, progress: ProgressFn, stage: Stage, prefixes: tuple[str, ...]) -> None:
        super().__init__(progress, stage)
        self.prefixes = prefixes

    def on_line(self, line: str) -> None:
        if line.lstrip().startswith(self.prefixes):
            self.emit(line.strip()[:200])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
