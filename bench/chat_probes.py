"""What bench_chat watches: the command stream, Redis MONITOR, docker start events and first output.

All times are wall clock (time.time()), so they compare across the bench, the fake Bot API, Redis,
the runner and dockerd on this host.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import docker
import docker.errors
from redis.asyncio import Redis

from protocol import keys
from protocol.models import Command, Op

STEP_TIMEOUT = 60.0


def log_time(raw: bytes) -> float:
    """The daemon's timestamp of a `logs(timestamps=True)` line, e.g. 2026-12-01T15:29:30.123456789Z."""
    stamp = raw.split(b" ", 1)[0].decode()
    head, _, frac = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float(f"0.{frac or 0}")


def first_output(client: docker.DockerClient, name: str) -> float:
    """Wall-clock time of the container's first log line; polls its logs, bounded in time."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(docker.errors.NotFound):
            raw = client.api.logs(name, timestamps=True)
            if raw.strip():
                return log_time(raw.splitlines()[0])
        time.sleep(0.01)
    raise TimeoutError(f"{name} printed nothing in {STEP_TIMEOUT} s")


class StreamWatch:
    """XREAD BLOCK on the command stream from '$': sees each entry when added, before the runner XDELs it."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.seen: dict[tuple[str, str], float] = {}  # (op, bot name) -> when we read it
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        # Cancelling a blocked XREAD can hang redis-py's connection; let the block run out instead.
        self._stopping = True
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=3)

    async def _run(self) -> None:
        last = "$"
        while not self._stopping:
            # 1 s blocks stay inside redis-py's 5 s socket timeout (ENVIRONMENT.md)
            for _stream, entries in await self.redis.xread({keys.COMMANDS_STREAM: last}, block=1000) or []:
                now = time.time()
                for entry_id, fields in entries:
                    last = entry_id.decode()
                    cmd = Command.model_validate_json(fields[b"data"])
                    self.seen.setdefault((cmd.op.value, cmd.name or ""), now)

    async def wait(self, op: Op, name: str) -> float:
        deadline = time.monotonic() + STEP_TIMEOUT
        while (op.value, name) not in self.seen:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{op.value} {name} never reached the stream")
            await asyncio.sleep(0.005)
        return self.seen[(op.value, name)]


class Monitor:
    """`redis-cli monitor` in the profile phase: every command with the server's time and client port.

    A separate process, so a busy bench loop neither loses nor delays lines.
    """

    # The runner's and the bench's own polling, which says nothing about one deploy.
    NOISE = ("XREADGROUP", "XAUTOCLAIM", "XREAD", "MONITOR", "PING")
    # What the control bot sends (RunnerClient.health / submit / wait); the rest is the runner's.
    CONTROLBOT = ("GET botrunner:runner:heartbeat", "SET botrunner:upload:", "XADD botrunner:commands")
    LINE = re.compile(r"^(\d+\.\d+) \[\d+ [^:]+:(\d+)\] (.*)$")

    def __init__(self, port: int, path: Path) -> None:
        self.path = path
        self.lines: list[tuple[float, int, str]] = []
        with path.open("wb") as out:
            self.proc = subprocess.Popen(
                ["redis-cli", "-p", str(port), "monitor"], stdout=out, stderr=subprocess.STDOUT
            )

    async def stop(self, after: float) -> None:
        """Stop once the monitor has written past `after`, within 5 s; then parse its output."""
        deadline = time.monotonic() + 5
        while not self._parse() or self.lines[-1][0] < after:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        self.proc.terminate()
        self.proc.wait(10)
        self._parse()

    def _parse(self) -> bool:
        self.lines = []
        for line in self.path.read_text(errors="replace").splitlines():
            if m := self.LINE.match(line):
                words = re.findall(r'"((?:[^"\\]|\\.)*)"', m[3])
                self.lines.append((float(m[1]), int(m[2]), " ".join(words)))
        return bool(self.lines)

    def until_start(self, run: ChatRun) -> list[tuple[float, str]]:
        """Commands (verb and key, no values) from the update's hand-over to the START's XADD."""
        out: list[tuple[float, str]] = []
        for t, port, c in self.lines:
            shape = re.sub(r"[0-9a-f]{32}", "<request>", " ".join(c.split()[:2]))
            if t < run.delivered or c.startswith(self.NOISE):
                continue
            if t > run.xadd + 0.005:
                break
            who = "bot" if c.startswith(self.CONTROLBOT) or c.startswith("BLPOP") else "runner"
            out.append((t, f"{who}:{port} {shape}"))
            if c.startswith("XADD botrunner:commands") and re.search(r"op\W+start", c):
                break
        return out


class StartEvents:
    """Docker `start` events of this run's containers, from one event stream in a thread.

    Waiting on these instead of polling docker while the runner creates the container keeps the
    bench from loading dockerd during the very steps it measures (the floor polls only after start).
    """

    def __init__(self, client: docker.DockerClient, instance: str) -> None:
        self.started: dict[str, float] = {}
        self._stream = client.events(
            decode=True, filters={"label": f"botrunner.instance={instance}", "event": "start"}
        )
        threading.Thread(target=self._run, name="docker-events", daemon=True).start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):  # the stream ends with an error when closed
            for event in self._stream:
                name = event.get("Actor", {}).get("Attributes", {}).get("name")
                if name:
                    self.started[name] = event.get("timeNano", 0) / 1e9

    def close(self) -> None:
        self._stream.close()

    async def wait(self, name: str) -> float:
        deadline = time.monotonic() + STEP_TIMEOUT
        while name not in self.started:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} never started")
            await asyncio.sleep(0.005)
        return self.started[name]


@dataclass
class ChatRun:
    upload: float
    delivered: float
    calls: list[tuple[float, str]]
    xadd: float
    started: float
    first_output: float
    card: float

    def first_call(self, method: str, after: float) -> float:
        return next(t for t, m in self.calls if m == method and t >= after)
