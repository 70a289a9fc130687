"""The docker-py client every Docker module shares, and the one place its failures are sorted.

Every docker-py call blocks, so each goes through `asyncio.to_thread` (or, for a build that may
outlive its caller, a daemon thread of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions

from protocol.errors import DockerUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

# Docker answered, even if with a refusal: not an outage.
ANSWERS = (docker.errors.APIError, docker.errors.NotFound, docker.errors.InvalidArgument)
# The engine is not there: the socket is gone, the daemon hangs up, the client is broken.
OUTAGES = (requests.exceptions.ConnectionError, docker.errors.DockerException, OSError)


class Engine:
    """Holds the lazily made docker client; drops it after an outage so the next call reconnects."""

    def __init__(
        self,
        *,
        instance: str,
        network_mode: str,
        restart_max: int,
        client_factory: Callable[[], docker.DockerClient] = docker.from_env,
    ) -> None:
        self.instance = instance
        self.network_mode = network_mode
        self.restart_max = restart_max
        self._client_factory = client_factory
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> docker.DockerClient:
        with self._lock:
            if self._client is None:
                self._client = self._client_factory()
            return self._client

    def _reset(self) -> None:
        with self._lock:
            if self._client is not None:
                try:
                    self._client.close()
                except Exception:  # closing a broken client must not mask the real error
                    log.debug("closing docker client failed", exc_info=True)
            self._client = None

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except ANSWERS:
            raise
        except OUTAGES as e:
            self._reset()
            raise DockerUnavailable() from e

    async def version(self) -> str:
        """The engine's version, for /system."""
        data = await self._call(lambda: self.client.version())
        return str(data.get("Version", "?"))

    async def _daemon(self, fn: Callable[[threading.Event], T], name: str) -> T:
        """Run fn(cancelled) in a daemon thread. When the caller is cancelled, `cancelled` is set
        and fn stops at its next check. Unlike to_thread's pool, which the interpreter joins at
        exit, a daemon thread never holds up the runner's shutdown, however long the build."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        cancelled = threading.Event()
        context = contextvars.copy_context()  # the command's log context, for the thread's lines

        def settle(outcome: Callable[[], None]) -> None:
            if not done.done():
                outcome()

        def work() -> None:
            try:
                result = context.run(fn, cancelled)
            except BaseException as e:
                report = functools.partial(settle, functools.partial(done.set_exception, e))
            else:
                report = functools.partial(settle, functools.partial(done.set_result, result))
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
                loop.call_soon_threadsafe(report)

        threading.Thread(target=work, name=name, daemon=True).start()
        try:
            return await done
        except asyncio.CancelledError:
            cancelled.set()
            raise
        except ANSWERS:
            raise
        except OUTAGES as e:
            self._reset()
            raise DockerUnavailable() from e


def disk_usage(client: docker.DockerClient) -> dict[str, Any]:
    """`docker system df`, which the engine runs one at a time: while another runner's (or a user's,
    or this runner's image pruning) runs, it answers 500 "a disk usage operation is already
    running"; wait for it, a while. Every `df` of the runner goes through here."""
    return dict(retry_while(client.api.df, "already running", attempts=100, pause=0.1))


def retry_while(call: Callable[[], T], transient: str, *, attempts: int, pause: float) -> T:
    """call(), again after pause while the engine answers an error naming `transient` (a state it
    leaves on its own), at most attempts times in all."""
    for _ in range(attempts - 1):
        try:
            return call()
        except docker.errors.APIError as e:
            if transient not in str(e):
                raise
        time.sleep(pause)
    return call()
