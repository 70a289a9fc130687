"""Resource history, the audit stream and the runner's metrics against a real Redis."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from controlbot.audit import AuditEntry, AuditLog, AuditQuery, env_detail
from protocol import keys
from protocol.models import Desired, Event, EventType, SourceInfo, SourceKind
from runner.backend.base import ResourceUsage
from runner.history import History
from runner.metrics import exposition
from runner.state import BotRecord, StateStore

pytestmark = pytest.mark.integration

_owners = itertools.count(7_700_000 + os.getpid() % 1000 * 100)


@pytest.fixture
async def owner(redis_client: Redis) -> AsyncIterator[int]:
    """An owner id no other test uses; everything keyed by it is removed afterwards."""
    oid = next(_owners)
    yield oid
    found = [k async for k in redis_client.scan_iter(match=f"{keys.PREFIX}:*:{oid}:*")]
    if found:
        await redis_client.delete(*found)
    await redis_client.srem(keys.OWNERS, oid)
    for counter in (keys.METRIC_RESTARTS, keys.METRIC_CRASHES):
        await redis_client.hdel(counter, f"{oid}:bot-a")


@pytest.mark.parametrize("offset", [5, 150, 295], ids=["bucket-start", "mid-bucket", "bucket-end"])
async def test_samples_are_downsampled_after_an_hour_and_capped(
    redis_client: Redis, owner: int, offset: int
) -> None:
    history = History(redis_client)
    # `now` (and so the first sample) sits `offset` seconds into a bucket: at 295 the first bucket
    # holds a single sample, which is what a CI run happened to hit.
    base = time.time()
    now = round(base - (base - offset) % keys.HISTORY_BUCKET_S, 3)
    start = now - 2 * 3600
    # Two hours of samples every 10 s: the first hour must come back as 5-minute averages.
    for i in range(0, 2 * 3600, 10):
        usage = {(owner, "bot-a"): ResourceUsage(memory_bytes=1000 + i, cpu_percent=float(i // 10 % 2))}
        await history.record(usage, ts=start + i)
    samples = await history.samples(owner, "bot-a", now - 7 * 86400)
    raw = await redis_client.zcard(keys.history_raw(owner, "bot-a"))
    coarse = await redis_client.zcard(keys.history_coarse(owner, "bot-a"))
    assert raw <= 361 and 11 <= coarse <= 25
    assert [s.ts for s in samples] == sorted(s.ts for s in samples)
    old = [s for s in samples if s.ts < now - 3600 - keys.HISTORY_BUCKET_S]
    # Each coarse sample is its bucket's average. The first bucket may hold a single sample, because
    # `start` need not fall on a bucket boundary; every later one holds 30 and averages 0.5 CPU.
    buckets: dict[float, list[int]] = {}
    for i in range(0, 2 * 3600, 10):
        ts = round(start + i, 3)
        buckets.setdefault(ts // keys.HISTORY_BUCKET_S * keys.HISTORY_BUCKET_S, []).append(i)
    assert len(old) >= 10
    for s in old:
        members = buckets[s.ts]
        assert s.cpu_percent == pytest.approx(sum(i // 10 % 2 for i in members) / len(members), abs=0.001)
        assert s.memory_bytes == sum(1000 + i for i in members) // len(members)
    assert all(s.cpu_percent == pytest.approx(0.5, abs=0.1) for s in old[1:])  # averaged
    assert len(await history.samples(owner, "bot-a", now - 600)) in range(55, 62)
    assert await redis_client.ttl(keys.history_raw(owner, "bot-a")) > 6 * 86400


async def test_restart_marks_and_counters_and_metrics(redis_client: Redis, owner: int) -> None:
    history = History(redis_client)
    store = StateStore(redis_client, 3)
    await store.reserve(owner, "bot-a", "req")
    await store.save(
        BotRecord(
            owner=owner,
            name="bot-a",
            desired=Desired.RUNNING,
            source=SourceInfo(kind=SourceKind.FILE),
            image="img",
            entrypoint="bot.py",
            request_id="req",
            env={"SECRET": "hunter22"},
        )
    )
    await store.save_usage({(owner, "bot-a"): ResourceUsage(memory_bytes=12_345_678, cpu_percent=25.0)})
    await history.note(Event(type=EventType.CRASHED, owner=owner, name="bot-a"))
    await history.note(Event(type=EventType.RESTARTED, owner=owner, name="bot-a"))
    await history.note(Event(type=EventType.STARTED, owner=owner, name="bot-a"))  # not marked
    assert len(await history.marks(owner, "bot-a", time.time() - 60)) == 2
    text = (await exposition(redis_client, store)).decode()
    labels = f'{{bot="bot-a",owner="{owner}"}}'
    assert f"botrunner_bot_memory_bytes{labels} 1.2345678e+07" in text
    assert f"botrunner_bot_cpu_ratio{labels} 0.25" in text
    assert f"botrunner_bot_restarts_total{labels} 1.0" in text
    assert f"botrunner_crashes_total{labels} 1.0" in text
    assert "botrunner_queue_pending" in text and "botrunner_runner_up" in text
    assert "hunter22" not in text and "SECRET" not in text
    await store.release(owner, "bot-a")
    assert await redis_client.exists(keys.history_events(owner, "bot-a")) == 0
    assert await redis_client.hget(keys.METRIC_CRASHES, f"{owner}:bot-a") is None


async def test_audit_filters_pages_and_keeps_no_values(redis_client: Redis, owner: int) -> None:
    log = AuditLog(redis_client, max_entries=10_000)
    for i in range(25):
        await log.write(
            AuditEntry(
                actor=owner,
                action="set_env",
                channel="api",
                result="ok",
                owner=owner,
                bot="bot-a" if i % 2 else "bot-b",
                detail=env_detail({"TOKEN": "v"}, ["OLD"]),
            )
        )
    mine = await log.read(AuditQuery(owner=owner), limit=20)
    assert len(mine) == 20 and mine[0].ts >= mine[-1].ts
    rest = await log.read(AuditQuery(owner=owner), limit=20, offset=20)
    assert len(rest) == 5 and {e.id for e in rest}.isdisjoint(e.id for e in mine)
    only_a = await log.read(AuditQuery(owner=owner, bot="bot-a"), limit=100)
    assert len(only_a) == 12 and all(e.bot == "bot-a" for e in only_a)
    assert only_a[0].detail == "set TOKEN; unset OLD"
    assert await log.read(AuditQuery(actor=owner + 1, owner=owner), limit=5) == []
    await redis_client.xdel(keys.AUDIT_STREAM, *[e.id for e in mine + rest])
