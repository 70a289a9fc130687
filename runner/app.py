"""The runner daemon: wires the queue, Docker, the heartbeat and the background loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from redis.asyncio import Redis

from protocol import heartbeats, keys
from protocol.aio import cancel_and_wait, task_stack
from protocol.client import blocking_pool
from protocol.errors import BotrunnerError, DockerUnavailable
from protocol.models import Desired, RunnerHealth
from protocol.sealing import encode_public_key
from runner.backend.base import Backend, BuildLimits
from runner.backend.factory import create_backend
from runner.builds.cache import ImageCache
from runner.builds.gitcheck import check_git_egress
from runner.builds.runtime import RuntimeImage, ensure_runtime_image
from runner.cluster import Leadership, peer_conflict
from runner.conflicts import ConflictWatch
from runner.disk import DiskWatch
from runner.events import EventBus, EventWatcher
from runner.healthgate import HealthGate
from runner.history import History
from runner.keys import load_or_create, publish
from runner.metrics import MetricsServer
from runner.operations import Operations
from runner.operations.env import seal_plain_records
from runner.reconcile import reconcile_pass
from runner.secrets import Secrets
from runner.settings import Settings
from runner.sources import Sources
from runner.state import StateStore
from runner.worker import Worker

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 20.0
DAY_S = 86400.0
BACKGROUND_STOP_S = 5.0
DOCKER_PROBE_TIMEOUT_S = 5.0
REDIS_POOL_SIZE = 256
REDIS_POOL_WAIT_S = 20.0


def connect_redis(url: str) -> Redis:
    """The runner's Redis client. Its pool waits for a free connection rather than failing: a burst
    of a hundred deploys, each with its bot's lease renewing beside it, outgrew redis-py's default
    pool of 100 connections, which raises "Too many connections" mid-command."""
    return blocking_pool(url, size=REDIS_POOL_SIZE, wait=REDIS_POOL_WAIT_S, health_check_interval=10)


def dump_tasks() -> None:
    tasks = sorted(asyncio.all_tasks(), key=lambda t: t.get_name())
    log.warning(
        "SIGUSR1: %d task(s)\n%s",
        len(tasks),
        "\n".join(f"--- {t.get_name()}\n{task_stack(t)}" for t in tasks),
    )


class Runner:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis = connect_redis(settings.redis_url)
        self.backend: Backend = create_backend(settings)
        self.store = StateStore(self.redis, settings.max_bots_per_user)
        self.bus = EventBus(self.redis)
        # Sealed secrets (#10): KeyFileError here stops the runner before it touches anything.
        self.secrets = Secrets(load_or_create(settings.runner_key_file))
        self.history = History(self.redis)
        self.watcher = EventWatcher(
            self.backend,
            self.store,
            self.bus,
            restart_max=settings.runner_restart_max,
            memory_limit=settings.memory_limit_bytes,
            secrets=self.secrets,
        )
        self.runtime = RuntimeImage()
        self.images = ImageCache(settings, self.redis, self.backend, self._images_in_use)
        self.ops = Operations(
            settings,
            self.redis,
            self.store,
            self.backend,
            self.bus,
            self.watcher,
            Sources(settings, self.images, self.runtime.get),
            self.secrets,
        )
        self.worker = Worker(settings, self.redis, self.ops)
        self.disk = DiskWatch(
            self.store,
            self.backend,
            self.bus,
            self.watcher,
            limit_bytes=settings.disk_limit_bytes,
            stop_timeout=settings.runner_stop_timeout,
        )
        self.conflicts = ConflictWatch(
            self.redis, self.store, self.backend, self.bus, settings.runner_conflict_interval
        )
        # Issue 12: the health gate watches new containers beside the worker, under its bot locks.
        self.gate = HealthGate(
            grace=settings.runner_health_grace,
            redis=self.redis,
            backend=self.backend,
            store=self.store,
            releases=self.ops.releases,
            watcher=self.watcher,
            bus=self.bus,
            bot_lock=self.worker.scheduler.bot,
            restore=self.ops.restore_release,
            stop_timeout=settings.runner_stop_timeout,
        )
        self.ops.gate = self.gate
        self.stopping = asyncio.Event()
        self.docker_version: str | None = None
        self.nodes: int | None = None  # the swarm's node count; None on one docker host
        # None until the first probe; reconciling on recovery needs a known outage first.
        self.docker_ok: bool | None = None
        self._probed = asyncio.Event()
        self._bg: set[asyncio.Task[None]] = set()
        self.engine_id: str | None = None
        self._runtime_ready = asyncio.Event()
        # Once per cluster, in the runner holding the leader lease (runner/cluster.py).
        self.leadership = Leadership(
            self.redis,
            settings.runner_id,
            settings.runner_claim_idle_ms,
            {
                "docker-events": lambda: self.watcher.run(self.stopping),
                # Gates a stopped runner left open go on (the gate's in-memory marks live with the
                # watcher, on the leader).
                "health-gates": self.gate.resume,
                "reconcile": self._lead_reconcile,
                "stats": lambda: self._every(self.settings.runner_stats_interval, self._sample),
                # Once per cluster too: one disk stop, one 409 notice, one daily backup per bot.
                **{
                    what: self._loop(interval, self._housekeeping(what, fn))
                    for what, interval, fn in (
                        ("disk check", settings.runner_stats_interval, self.disk.check),
                        ("409 check", settings.runner_conflict_interval, self.conflicts.check),
                        ("daily backups", settings.runner_backup_check_interval, self._daily_backups),
                    )
                },
            },
        )

    @property
    def backend_name(self) -> str:
        return self.settings.runner_backend

    async def _join(self) -> None:
        """Refuse, with one line, to share a Redis with runners of another engine."""
        try:
            self.engine_id = await asyncio.wait_for(self.backend.engine_id(), DOCKER_PROBE_TIMEOUT_S)
        except Exception as e:  # Docker down at start: nothing to compare yet; the probe reports it
            log.warning("could not read the engine's id: %s", e)
            return
        conflict = await peer_conflict(
            self.redis,
            runner_id=self.settings.runner_id,
            instance=self.settings.runner_instance,
            backend=self.backend_name,
            engine_id=self.engine_id,
        )
        if conflict:
            log.error("%s", conflict)
            print(conflict, file=sys.stderr)
            raise SystemExit(2)

    async def run(self) -> None:
        # Before anything else: a runner whose key differs from the published one refuses to start
        # (KeyMismatch), or it would seal and open with a key the other runner cannot use.
        await publish(self.redis, self.secrets.key)
        if sealed := await seal_plain_records(self.store, self.secrets):
            log.info("sealed the env of %d bot record(s) written before sealing", sealed)
        loop = asyncio.get_running_loop()
        # Every docker-py call holds a thread; the default pool (cores + 4) is too small once
        # stats, logs and inspects of many bots overlap.
        loop.set_default_executor(ThreadPoolExecutor(self.settings.runner_threads, "runner-io"))
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        # An operator's "what is it waiting for?": every task's stack to the log, nothing stops.
        loop.add_signal_handler(signal.SIGUSR1, dump_tasks)
        try:
            await self._join()
        except SystemExit:
            await self.redis.aclose()
            raise
        background = [
            asyncio.create_task(self._heartbeat(), name="heartbeat"),
            asyncio.create_task(self._probe_docker(), name="docker-probe"),
            asyncio.create_task(self._runtime_image(), name="runtime-image"),
            asyncio.create_task(self.leadership.run(), name="leadership"),
            # builds in the sandbox: a private git host allowed but blocked by the guard is named once
            asyncio.create_task(asyncio.to_thread(check_git_egress, self.settings), name="git-egress-check"),
        ]
        if self.settings.runner_metrics_port:  # every runner answers for all bots: figures are in Redis
            server = MetricsServer(
                self.redis, self.store, self.settings.runner_metrics_host, self.settings.runner_metrics_port
            )
            background.append(asyncio.create_task(server.run(), name="metrics"))
        consumer = asyncio.create_task(self.worker.run(self.stopping), name="consumer")
        log.info("runner %s started (instance %s)", self.settings.runner_id, self.settings.runner_instance)
        try:
            await self.stopping.wait()
            log.info("SIGTERM: no new commands; finishing the ones in flight")
            await cancel_and_wait([consumer])
            await self.worker.drain(DRAIN_TIMEOUT_S)
        finally:
            # Bounded: a stop must not hang on a background task stuck in a slow engine call.
            stuck = await cancel_and_wait(background, timeout=BACKGROUND_STOP_S)
            if stuck:
                log.warning("stopping without waiting for: %s", ", ".join(t.get_name() for t in stuck))
            with contextlib.suppress(Exception):
                await heartbeats.leave(self.redis, self.settings.runner_id)
            await self.redis.aclose()
            log.info("runner stopped")

    async def _heartbeat(self) -> None:
        """Beat on time whatever Docker does: the docker probe runs in its own task."""
        # The first beat waits (briefly) for the first probe, so it never claims an unknown Docker.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._probed.wait(), DOCKER_PROBE_TIMEOUT_S + 1)
        while True:
            await self._beat()
            await asyncio.sleep(keys.HEARTBEAT_INTERVAL)

    async def _beat(self) -> None:
        try:
            health = RunnerHealth(
                runner_id=self.settings.runner_id,
                ts=time.time(),
                docker_ok=bool(self.docker_ok),
                docker_version=self.docker_version,
                nodes=self.nodes,
                egress=self.backend.egress,
                backend=self.backend_name,
                engine_id=self.engine_id,
                instance=self.settings.runner_instance,
                leader=self.leadership.leading,
            )
            await heartbeats.beat(self.redis, health)
            # Re-published should Redis lose its data (no persistence): front ends seal with it.
            await self.redis.set(keys.RUNNER_PUBKEY, encode_public_key(self.secrets.public_key), nx=True)
        except Exception as e:  # redis.ConnectionError and friends: keep beating
            log.warning("heartbeat failed: %s", e)

    async def _probe_docker(self) -> None:
        while True:
            try:
                self.docker_version = await asyncio.wait_for(self.backend.version(), DOCKER_PROBE_TIMEOUT_S)
                if self.backend_name == "swarm":
                    self.nodes = await asyncio.wait_for(self.backend.node_count(), DOCKER_PROBE_TIMEOUT_S)
                ok = True
            except Exception:  # unavailable, timed out, or an error answer: not usable either way
                ok = False
            changed = ok is not self.docker_ok
            if ok and self.docker_ok is False and self.leadership.leading:
                log.info("docker answers again; reconciling")
                task = asyncio.create_task(self._reconcile(full=True))
                self._bg.add(task)
                task.add_done_callback(self._bg.discard)
            elif not ok and self.docker_ok is not False:
                log.warning("docker does not answer")
            self.docker_ok = ok
            self._probed.set()
            if changed:
                await self._beat()
            await asyncio.sleep(keys.HEARTBEAT_INTERVAL)

    async def _runtime_image(self) -> None:
        s = self.settings
        delay = 5.0
        while True:
            try:
                await self.backend.prepare()
                # Before any bot can start: a guard that cannot be installed keeps them all down.
                await self.backend.guard_egress()
                tag = await ensure_runtime_image(
                    self.backend,
                    base=s.runner_base_image,
                    packages=s.runner_runtime_packages,
                    ca_bundle=s.runner_ca_bundle,
                    limits=BuildLimits(s.runner_build_network, s.runner_build_timeout, s.build_memory_bytes),
                )
                log.info("runtime image %s ready", tag)
                self.runtime.set(tag)
                self._runtime_ready.set()  # the leader's first (full) reconcile waits for it
                return
            except BotrunnerError as e:
                log.error("runtime image not ready: %s; retrying in %.0f s", e, delay)
                self.runtime.fail(e)
            except Exception as e:
                log.exception("runtime image build crashed; retrying in %.0f s", delay)
                self.runtime.fail(DockerUnavailable(f"the runtime image is not ready: {e}"))
            await asyncio.sleep(delay)
            self.runtime.reset()
            delay = min(delay * 2, 120.0)

    async def _images_in_use(self) -> set[str]:
        records = await self.store.all_records()
        # Kept releases' images too, so a rollback never needs a build (issue 12).
        return {rec.image for rec in records} | await self.ops.releases.images([r.key for r in records])

    async def _reconcile(self, full: bool = False) -> None:
        try:
            # Repairs rules someone flushed; drops them once the network is gone.
            await self.backend.guard_egress()
            fixed = await reconcile_pass(self.ops, self.worker.scheduler.bot, full=full)
            if fixed:
                log.info("reconciliation fixed %d bot(s)", fixed)
        except (BotrunnerError, OSError) as e:
            log.warning("reconciliation skipped: %s", e)
        except Exception:
            log.exception("reconciliation failed")

    async def _lead_reconcile(self) -> None:
        """A new leader reconciles fully once the runtime image is there (it may have taken over
        from a dead one mid-outage), then periodically."""
        await self._runtime_ready.wait()
        await self._reconcile(full=True)
        await self._every(self.settings.runner_reconcile_interval, self._reconcile)

    async def _sample(self) -> None:
        """Resource use, sampled off the request path, all running bots in one sweep."""
        started = time.monotonic()
        try:
            records = await self.store.all_records()
            running = [r.key for r in records if r.desired is Desired.RUNNING]
            usage = await self.backend.stats_many(running) if running else {}
            await self.store.save_usage(usage)
            await self.history.record(usage)
            took = time.monotonic() - started
            if took > self.settings.runner_stats_interval:  # samples would be further apart than asked
                log.warning("stats of %d bots took %.1f s, over RUNNER_STATS_INTERVAL", len(running), took)
        except (DockerUnavailable, OSError) as e:
            log.warning("stats skipped: %s", e)
        except Exception:
            log.exception("stats sampling failed")

    async def _daily_backups(self) -> None:
        await self.ops.daily_backups(due_after=DAY_S)

    @staticmethod
    def _housekeeping(what: str, fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """fn, whose failure is logged and tried again at the next interval, never the loop's end."""

        async def guarded() -> None:
            try:
                await fn()
            except Exception as e:
                log.warning("%s skipped: %s", what, e)

        return guarded

    def _loop(
        self, interval: float, fn: Callable[[], Awaitable[None]]
    ) -> Callable[[], Coroutine[Any, Any, None]]:
        return lambda: self._every(interval, fn)

    async def _every(self, interval: float, fn: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval)
            await fn()
