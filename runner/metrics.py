"""The runner's Prometheus endpoint: `/metrics` on RUNNER_METRICS_HOST:RUNNER_METRICS_PORT.

Per-bot figures are read from Redis at scrape time, so any runner of several answers for every bot,
and a scrape costs a handful of round trips whatever the number of bots. Build counters are this
process's own. Labels are an owner id, a bot name (validated, never free text), a state, a source
kind, a result code: nothing carries env or user text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.asyncio import Redis

from protocol import keys, prometheus
from protocol.heartbeats import live_runners
from protocol.models import Desired
from runner.state import StateStore

log = logging.getLogger(__name__)

# This process's own metrics register here (the build counters, declared where they are counted:
# runner/operations/base.py); the per-bot figures are collected from Redis at each scrape.
REGISTRY = prometheus.registry()
REQUEST_TIMEOUT_S = 5.0


class _Snapshot(Collector):
    """Figures read from Redis for one scrape."""

    def __init__(self, families: list[GaugeMetricFamily | CounterMetricFamily]) -> None:
        self.families = families

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield from self.families


def _text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


def _per_bot(name: str, doc: str, raw: dict[bytes, bytes]) -> CounterMetricFamily:
    fam = CounterMetricFamily(name, doc, labels=["owner", "bot"])
    for field, count in raw.items():
        owner, _, bot = _text(field).partition(":")
        fam.add_metric([owner, bot], float(count))
    return fam


async def snapshot(redis: Redis, store: StateStore) -> list[GaugeMetricFamily | CounterMetricFamily]:
    """Every per-bot and runner-wide figure, in five round trips."""
    records = await store.all_records()
    runners = await live_runners(redis)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.METRIC_RESTARTS)
        pipe.hgetall(keys.METRIC_CRASHES)
        pipe.mget([keys.stats(r.owner, r.name) for r in records] or [keys.METRIC_RESTARTS])
        restarts, crashes, usage = await pipe.execute()
    try:
        groups = await redis.xinfo_groups(keys.COMMANDS_STREAM)
    except Exception:  # no stream yet: nothing is pending
        groups = []
    pending = sum(int(g.get("pending") or 0) + int(g.get("lag") or 0) for g in groups)

    states = {"running": 0, "down": 0, "stopped": 0}
    memory = GaugeMetricFamily(
        "botrunner_bot_memory_bytes", "A running bot's memory use.", labels=["owner", "bot"]
    )
    cpu = GaugeMetricFamily(
        "botrunner_bot_cpu_ratio",
        "A running bot's CPU use, in cores (1.0 = one core).",
        labels=["owner", "bot"],
    )
    for rec, raw in zip(records, usage if records else [], strict=False):
        if rec.desired is Desired.STOPPED:
            states["stopped"] += 1
        elif raw is None:
            states["down"] += 1  # meant to run, yet no fresh sample: stopped, crashed or starting
        else:
            states["running"] += 1
            mem, _, pct = _text(raw).partition(" ")
            memory.add_metric([str(rec.owner), rec.name], float(mem))
            cpu.add_metric([str(rec.owner), rec.name], float(pct) / 100)
    bots = GaugeMetricFamily("botrunner_bots", "Hosted bots by state.", labels=["state"])
    for state, n in states.items():
        bots.add_metric([state], n)

    # The freshest live runner's heartbeat (live_runners has only fresh ones).
    newest = max((r.ts for r in runners), default=None)
    age = time.time() - newest if newest is not None else float("nan")
    up = newest is not None
    return [
        bots,
        memory,
        cpu,
        _per_bot("botrunner_bot_restarts", "Restarts of a bot after it died.", restarts),
        _per_bot("botrunner_crashes", "Times a bot died unexpectedly.", crashes),
        GaugeMetricFamily("botrunner_queue_pending", "Commands queued or in flight.", value=pending),
        GaugeMetricFamily("botrunner_runner_up", "1 while a runner's heartbeat is fresh.", value=float(up)),
        GaugeMetricFamily(
            "botrunner_runner_heartbeat_age_seconds", "Seconds since the last runner heartbeat.", value=age
        ),
    ]


async def exposition(redis: Redis, store: StateStore) -> bytes:
    """The whole text a scrape gets."""
    live = CollectorRegistry(auto_describe=False)
    live.register(_Snapshot(await snapshot(redis, store)))
    return generate_latest(REGISTRY) + generate_latest(live)


class MetricsServer:
    """A minimal HTTP/1.1 server on the runner's event loop: GET /metrics, nothing else."""

    def __init__(self, redis: Redis, store: StateStore, host: str, port: int) -> None:
        self.redis = redis
        self.store = store
        self.host = host
        self.port = port

    async def run(self) -> None:
        try:
            server = await asyncio.start_server(self._handle, self.host, self.port)
        except OSError as e:  # metrics are a nicety: the runner keeps running without them
            log.error(
                "metrics cannot listen on %s:%s (RUNNER_METRICS_HOST/PORT): %s", self.host, self.port, e
            )
            return
        log.info("metrics on http://%s:%s/metrics", self.host, self.port)
        async with server:
            await server.serve_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT_S)
            method, path, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            if method != "GET" or path.split("?", 1)[0] != "/metrics":
                await _reply(writer, b"404 Not Found", "text/plain", b"not found\n")
                return
            try:
                body = await exposition(self.redis, self.store)
            except Exception as e:  # Redis away: say so, the runner_up series goes missing
                log.warning("metrics scrape failed: %s", e)
                await _reply(writer, b"503 Service Unavailable", "text/plain", b"redis unavailable\n")
                return
            await _reply(writer, b"200 OK", CONTENT_TYPE_LATEST, body)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _reply(writer: asyncio.StreamWriter, status: bytes, ctype: str, body: bytes) -> None:
    head: Iterable[bytes] = (
        b"HTTP/1.1 " + status,
        b"Content-Type: " + ctype.encode(),
        b"Content-Length: " + str(len(body)).encode(),
        b"Connection: close",
    )
    writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
    await writer.drain()
