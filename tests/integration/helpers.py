"""Small helpers for driving the runner through the real queue."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import docker
from redis.asyncio import Redis

from protocol import keys
from protocol.client import RunnerClient
from protocol.models import Command, Event, Op, Result, SourceKind, SourceSpec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "bots"

SLEEPER = b"import time\nprint('sleeper up', flush=True)\nwhile True:\n    time.sleep(1)\n"


async def call(
    client: RunnerClient,
    op: Op,
    owner: int,
    name: str | None = None,
    *,
    payload: bytes | None = None,
    filename: str = "bot.py",
    timeout: float = 120,
    **kwargs: Any,
) -> Result:
    if payload is not None and "source" not in kwargs:
        kwargs["source"] = SourceSpec(kind=SourceKind.FILE, filename=filename)
    cmd = Command(op=op, owner=owner, name=name, **kwargs)
    return await client.call(cmd, payload, timeout=timeout)


async def start_bot(client: RunnerClient, owner: int, name: str, code: bytes = SLEEPER, **kw: Any) -> Result:
    res = await call(client, Op.START, owner, name, payload=code, **kw)
    assert res.ok, res.error
    return res


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(every)


async def events_for(redis: Redis, owner: int, name: str) -> list[Event]:
    entries = await redis.xrange(keys.EVENTS_STREAM)
    out = [Event.model_validate_json(fields[b"data"]) for _id, fields in entries]
    return [e for e in out if e.owner == owner and e.name == name]


def containers_of(docker_client: docker.DockerClient, owner: int, name: str) -> list[Any]:
    flt = {"label": [f"botrunner.owner={owner}", f"botrunner.bot={name}"]}
    return list(docker_client.containers.list(all=True, filters=flt))
