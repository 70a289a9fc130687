"""protocol/aio.py: task_stack (the whole chain of awaits, where Task.print_stack shows one frame),
and the wait_for that keep_cancels puts in place."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from protocol.aio import cancel_and_wait, task_stack, wait_for


@contextlib.asynccontextmanager
async def slow_exit() -> AsyncIterator[None]:
    try:
        yield
    finally:
        await asyncio.sleep(10)


async def stuck_in_an_exit() -> None:
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(slow_exit())


async def test_the_chain_goes_through_async_with_exits_down_to_the_sleep() -> None:
    task = asyncio.create_task(stuck_in_an_exit())
    await asyncio.sleep(0.01)
    try:
        names = [line.rsplit(" in ", 1)[-1] for line in task_stack(task).splitlines() if " in " in line]
        assert names[0] == "stuck_in_an_exit"
        assert "slow_exit" in names and names[-1] == "sleep"
        assert names.index("slow_exit") < names.index("sleep")
    finally:
        await cancel_and_wait([task])


def test_both_daemons_keep_cancels_before_their_event_loop() -> None:
    """Python 3.11's wait_for drops cancels (protocol/aio.py): each daemon's main puts 3.12's in place."""
    import controlbot.__main__
    import runner.__main__

    for main in (runner.__main__.main, controlbot.__main__.main):
        names = main.__code__.co_names
        assert "keep_cancels" in names and names.index("keep_cancels") < names.index("asyncio"), main


async def test_wait_for_answers_as_python_312s_does() -> None:
    assert await wait_for(asyncio.sleep(0, "now"), 1) == "now"
    with pytest.raises(TimeoutError):
        await wait_for(asyncio.sleep(10), 0.01)
    done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    done.set_result("ready")
    assert await wait_for(done, 0) == "ready"  # no time left, but the answer is there
    cleaned = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            cleaned.set()

    task = asyncio.create_task(slow())
    await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        await wait_for(task, 0)  # no time left: stopped, and its cleanup has run
    assert task.cancelled() and cleaned.is_set()
