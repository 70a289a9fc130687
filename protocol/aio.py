"""Stopping a task for sure, and seeing where a task waits.

On Python 3.11, `asyncio.wait_for` drops a cancel that arrives just as the operation it waits for
completes (CPython gh-86296, fixed in 3.12). redis-py 8 wraps each command's socket write in
`wait_for` whenever a socket timeout is set, and its default is 5 s: a task cancelled while it
sends a Redis command can carry on as if nothing had happened: 534 of 2000 cancels of tasks busy
sending EVALs were dropped here (tasks like tests/integration/test_aio.py's `busy`). One
`cancel()` and an unbounded wait then hang for good: that is how a bot's lease keeper outlived its
holder, renewed the lock forever and left the bot's commands queued until they expired.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterable
from typing import Any, TypeVar

RECANCEL_EVERY_S = 0.1

F = TypeVar("F", bound="asyncio.Future[Any]")


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
