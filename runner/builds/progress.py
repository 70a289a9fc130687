"""Progress from a worker thread (a clone, a build) to the command's async progress callback."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import threading
import time
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from typing import Any, TypeVar

from protocol.models import Stage

ProgressFn = Callable[[Stage, str], Coroutine[Any, Any, None]]
T = TypeVar("T")

# "owner=… bot=… request=…" of the command being prepared, for the log lines of clones and builds.
LOG_CTX: ContextVar[str] = ContextVar("botrunner_log_ctx", default="")

# The chat edits its message at most about once a second; more would only be dropped.
MIN_INTERVAL_S = 1.0


class Cancelled(Exception):
    """Raised in a worker thread whose command was cancelled (runner shutdown)."""


class ThreadProgress:
    """Call `emit(text)` from any thread; at most one message per interval reaches the loop.

    `run()` runs the blocking work in a daemon thread of its own. A thread cannot be cancelled, so
    when the awaiting task is, `cancelled` is set and the work stops at its next check (`check()`,
    the clone's watchdog). Unlike asyncio.to_thread's pool, which the interpreter joins at exit,
    a daemon thread never holds up the runner's shutdown, however long the build it waits on.
    """

    def __init__(self, progress: ProgressFn, stage: Stage, interval: float = MIN_INTERVAL_S) -> None:
        self.progress, self.stage, self.interval = progress, stage, interval
        self.loop = asyncio.get_running_loop()
        self.cancelled = threading.Event()
        self._last = 0.0
        self._pending: list[concurrent.futures.Future[None]] = []

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        done: asyncio.Future[T] = self.loop.create_future()
        context = contextvars.copy_context()

        def settle(outcome: Callable[[], None]) -> None:
            if not done.done():
                outcome()

        def work() -> None:
            try:
                result = context.run(fn, *args, **kwargs)
            except BaseException as e:
                report = functools.partial(settle, functools.partial(done.set_exception, e))
            else:
                report = functools.partial(settle, functools.partial(done.set_result, result))
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
                self.loop.call_soon_threadsafe(report)

        threading.Thread(target=work, name=f"{self.stage.value}-worker", daemon=True).start()
        try:
            return await done
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        finally:
            await self.flush()

    def check(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled()

    def emit(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        coro = self.progress(self.stage, text)
        try:
            self._pending.append(asyncio.run_coroutine_threadsafe(coro, self.loop))
        except RuntimeError:  # the loop is closed: the runner is gone, and so is the requester's wait
            coro.close()

    async def flush(self) -> None:
        """Wait for what was sent, so no progress message arrives after the result."""
        for fut in self._pending:
            with contextlib.suppress(Exception):  # progress is best effort
                await asyncio.wrap_future(fut)
        self._pending.clear()
