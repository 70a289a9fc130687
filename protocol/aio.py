"""Cancelling for sure: a wait_for that keeps cancels, stopping tasks, and seeing where one waits.

On Python 3.11, `asyncio.wait_for` drops a cancel that arrives just as the operation it waits for
completes (CPython gh-86296; 3.12 rewrote wait_for on `asyncio.timeout`). redis-py 8 wraps each
command's socket write in `wait_for` whenever a socket timeout is set, and its default is 5 s: a
task cancelled while it sends a Redis command can carry on as if nothing had happened. Here 534 of
2000 cancels of tasks busy sending EVALs were dropped, and under CPU load a task survived fifty
cancels in a row. One `cancel()` and an unbounded wait then hang for good: that is how a bot's
lease keeper outlived its holder, renewed the lock forever and left the bot's commands queued
until they expired.

- `keep_cancels()` puts 3.12's wait_for in place on 3.11 (a no-op on 3.12 and later). Each of our
  processes calls it before its event loop starts: the runner, the control bot, the test session.
- `cancel_and_wait()` stops tasks and waits for them, cancelling again while any still runs.
"""

from __future__ import annotations

import asyncio
import asyncio.tasks
import gc
import sys
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

RECANCEL_EVERY_S = 0.1

F = TypeVar("F", bound="asyncio.Future[Any]")
T = TypeVar("T")


async def wait_for(fut: Awaitable[T], timeout: float | None) -> T:
    """CPython 3.12's asyncio.wait_for: the awaitable runs in the caller's task under
    asyncio.timeout, so a cancel is never mistaken for a result that came at the same time.
    A timeout of 0 or less stops the awaitable (with cancel_and_wait) unless it is done already."""
    if timeout is not None and timeout <= 0:
        task = asyncio.ensure_future(fut)
        if task.done():
            return task.result()
        await cancel_and_wait([task])
        try:
            return task.result()
        except asyncio.CancelledError as exc:
            raise TimeoutError from exc
    async with asyncio.timeout(timeout):
        return await fut


def keep_cancels() -> None:
    """On Python 3.11, replace asyncio.wait_for (looked up at call time by redis-py, aiohttp and
    the rest) with 3.12's. Idempotent."""
    if sys.version_info < (3, 12):
        asyncio.wait_for = asyncio.tasks.wait_for = wait_for  # type: ignore[assignment]


async def cancel_and_wait(tasks: Iterable[F], *, timeout: float | None = None) -> set[F]:
    """Cancel tasks, and again every RECANCEL_EVERY_S while any still runs, until all are done or
    timeout passes; return those still running. The caller's own cancellation is never swallowed.

    A task that handles its cancel with a slow cleanup (more than RECANCEL_EVERY_S of awaits) may
    see that cleanup cancelled too: cleanups must be short, or shielded.
    """
    pending = {t for t in tasks if not t.done()}
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    while pending:
        wait = RECANCEL_EVERY_S if deadline is None else min(RECANCEL_EVERY_S, deadline - loop.time())
        if wait <= 0:
            break
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=wait)
    return pending


def task_stack(task: asyncio.Task[Any]) -> str:
    """Where task waits right now: its whole chain of awaits, innermost last.

    Task.print_stack shows a coroutine's outermost frame only; this follows what each frame awaits
    (coroutines, async generators behind `async with`, generators), as a traceback would show it.
    """
    lines: list[str] = []
    obj: Any = task.get_coro()
    for _ in range(100):
        frame = (
            getattr(obj, "cr_frame", None) or getattr(obj, "ag_frame", None) or getattr(obj, "gi_frame", None)
        )
        if frame is not None:
            lines.append(
                f'  File "{frame.f_code.co_filename}", line {frame.f_lineno}, in {frame.f_code.co_name}'
            )
        nxt = (
            getattr(obj, "cr_await", None)
            or getattr(obj, "ag_await", None)
            or getattr(obj, "gi_yieldfrom", None)
        )
        if nxt is None and frame is None:  # an async generator's asend/athrow: the generator behind it
            nxt = next((r for r in gc.get_referents(obj) if hasattr(r, "ag_frame")), None)
        if nxt is None:
            if frame is None:
                lines.append(f"  awaiting {obj!r}"[:300])
            break
        obj = nxt
    return "\n".join(lines)
