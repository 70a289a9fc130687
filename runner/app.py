"""The runner daemon: wires the queue, Docker, the heartbeat and the background loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from redis.asyncio import Redis

from protocol import keys
from protocol.errors import BotrunnerError, DockerUnavailable
from protocol.models import Desired, RunnerHealth
from runner.backend.base import Backend, BuildLimits
from runner.backend.factory import create_backend
from runner.builds.cache import ImageCache
from runner.builds.runtime import RuntimeImage, ensure_runtime_image
from runner.events import EventBus, EventWatcher
from runner.healthgate import HealthGate
from runner.operations import Operations
from runner.reconcile import reconcile
from runner.settings import Settings
from runner.sources import Sources
from runner.state import StateStore
from runner.worker import Worker

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 20.0
DOCKER_PROBE_TIMEOUT_S = 5.0


class Runner:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis = Redis.from_url(settings.redis_url, health_check_interval=10)
        self.backend: Backend = create_backend(settings)
        self.store = StateStore(self.redis, settings.max_bots_per_user)
        self.bus = EventBus(self.redis)
        self.watcher = EventWatcher(
            self.backend,
            self.store,
            self.bus,
            restart_max=settings.runner_restart_max,
            memory_limit=settings.memory_limit_bytes,
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
        )
        self.worker = Worker(settings, self.redis, self.ops)
        # Issue 12: the health gate watches new containers beside the worker, under its bot locks.
        self.gate = HealthGate(
            grace=settings.runner_health_grace,
            redis=self.redis,
            backend=self.backend,
            store=self.store,
            releases=self.ops.releases,
            watcher=self.watcher,
            bus=self.bus,
            locks=self.worker.locks,
            restore=self.ops.restore,
            stop_timeout=settings.runner_stop_timeout,
        )
        self.ops.gate = self.gate
        self.stopping = asyncio.Event()
        self.docker_version: str | None = None
        # None until the first probe; reconciling on recovery needs a known outage first.
        self.docker_ok: bool | None = None
        self._probed = asyncio.Event()
        self._bg: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        # Every docker-py call holds a thread; the default pool (cores + 4) is too small once
        # stats, logs and inspects of many bots overlap.
        loop.set_default_executor(ThreadPoolExecutor(self.settings.runner_threads, "runner-io"))
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        background = [
            asyncio.create_task(self._heartbeat(), name="heartbeat"),
            asyncio.create_task(self._probe_docker(), name="docker-probe"),
            asyncio.create_task(self._runtime_image(), name="runtime-image"),
            asyncio.create_task(self.watcher.run(self.stopping), name="docker-events"),
            asyncio.create_task(self.gate.resume(), name="health-gates"),
            asyncio.create_task(
                self._every(self.settings.runner_reconcile_interval, self._reconcile), name="reconcile"
            ),
            asyncio.create_task(self._every(self.settings.runner_stats_interval, self._sample), name="stats"),
        ]
        consumer = asyncio.create_task(self.worker.run(self.stopping), name="consumer")
        log.info("runner %s started (instance %s)", self.settings.runner_id, self.settings.runner_instance)
        try:
            await self.stopping.wait()
            log.info("SIGTERM: no new commands; finishing the ones in flight")
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)
            await self.worker.drain(DRAIN_TIMEOUT_S)
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await self.redis.delete(keys.HEARTBEAT)
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
                egress=self.backend.egress,
            )
            await self.redis.set(keys.HEARTBEAT, health.model_dump_json(), ex=keys.HEARTBEAT_TTL)
        except Exception as e:  # redis.ConnectionError and friends: keep beating
            log.warning("heartbeat failed: %s", e)

    async def _probe_docker(self) -> None:
        while True:
            try:
                self.docker_version = await asyncio.wait_for(self.backend.version(), DOCKER_PROBE_TIMEOUT_S)
                ok = True
            except Exception:  # unavailable, timed out, or an error answer: not usable either way
                ok = False
            changed = ok is not self.docker_ok
            if ok and self.docker_ok is False:
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
                await self._reconcile(full=True)
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
            await (
                self.backend.guard_egress()
            )  # repairs rules someone flushed; drops them once the network is gone
            fixed = await reconcile(self.ops, self.worker.locks, full=full)
            if fixed:
                log.info("reconciliation fixed %d bot(s)", fixed)
        except (BotrunnerError, OSError) as e:
            log.warning("reconciliation skipped: %s", e)
        except Exception:
            log.exception("reconciliation failed")

    async def _sample(self) -> None:
        """Resource use, sampled off the request path, all running bots in one sweep."""
        try:
            records = await self.store.all_records()
            running = [r.key for r in records if r.desired is Desired.RUNNING]
            usage = await self.backend.stats_many(running) if running else {}
            await self.store.save_usage(usage)
        except (DockerUnavailable, OSError) as e:
            log.warning("stats skipped: %s", e)
        except Exception:
            log.exception("stats sampling failed")

    async def _every(self, interval: float, fn: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval)
            await fn()
