"""The worker's logic on real Redis and the in-memory FakeBackend: redelivery, idempotency, crash
streaks, quota races. No Docker here; what Docker itself does is tested against Docker elsewhere.

The queue's key names are global, so these tests run on a redis-server of their own: a command
on the shared database would be taken by the session's real runner (or another run's).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.asyncio import Redis

from protocol import heartbeats, keys
from protocol.aio import cancel_and_wait
from protocol.client import RunnerClient
from protocol.errors import ErrorCode
from protocol.models import Command, Event, EventType, Op, Result, RunnerHealth, SourceKind, SourceSpec
from runner.app import connect_redis
from runner.backend import DockerEvent
from runner.builds.cache import ImageCache
from runner.events import EventBus, EventWatcher
from runner.operations import Operations
from runner.settings import Settings
from runner.sources import Sources
from runner.state import StateStore
from runner.worker import Worker
from tests.fakes.backend import STOPPED_EXIT, FakeBackend
from tests.fixtures.services import _private_redis
from tests.integration.helpers import SLEEPER, eventually

pytestmark = pytest.mark.integration

RUNTIME = "botrunner/runtime:fake"
QUOTA = 2
RESTART_MAX = 3
OWNER = 4242


@pytest.fixture(scope="module")
def own_redis_url() -> Iterator[str]:
    with _private_redis() as url:
        yield url


class FrozenBeforeAck(Worker):
    """A runner that did the work and froze before its ack: killed there, it leaves the entry
    pending, as a crash or an OOM kill of the runner would."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.froze = asyncio.Event()

    async def _finish(
        self, entry_id: str, result: Result, op: Op | None = None, *, reply_to: str | None
    ) -> None:
        self.froze.set()
        await asyncio.Event().wait()


@dataclass
class Rig:
    redis: Redis
    fake: FakeBackend
    settings: Settings
    store: StateStore
    watcher: EventWatcher
    ops: Operations
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    client: RunnerClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = RunnerClient(self.redis)  # one requester, as one control-bot process

    def worker(self, consumer: str = "fake-runner", cls: type[Worker] = Worker) -> Worker:
        settings = self.settings.model_copy(update={"runner_id": consumer})
        worker = cls(settings, self.redis, self.ops)
        self.workers.append(worker)
        self.tasks.append(asyncio.create_task(worker.run(self.stopping)))
        return worker

    def watch(self) -> None:
        self.tasks.append(asyncio.create_task(self.watcher.run(self.stopping)))

    async def submit(self, cmd: Command, payload: bytes | None = None) -> None:
        # Straight onto the stream: the heartbeat check of RunnerClient.submit is not under test.
        cmd = self.client.expect(cmd)
        if payload is not None:
            await self.redis.set(keys.upload(cmd.request_id), payload, ex=keys.UPLOAD_TTL)
        await self.redis.xadd(keys.COMMANDS_STREAM, {"data": cmd.model_dump_json()})

    async def call(self, cmd: Command, payload: bytes | None = None) -> Result:
        await self.submit(cmd, payload)
        return await self.client.wait(cmd.request_id, timeout=10)

    async def events(self, name: str) -> list[Event]:
        entries: Any = await self.redis.xrange(keys.EVENTS_STREAM)
        out = [Event.model_validate_json(fields[b"data"]) for _id, fields in entries]
        return [e for e in out if e.name == name]

    async def stop_all(self) -> None:
        """Kill every worker and watcher, with the commands they have in flight."""
        self.stopping.set()
        tasks = [*self.tasks, *(t for w in self.workers for t in w._inflight)]
        await cancel_and_wait(tasks)
        self.stopping, self.tasks, self.workers = asyncio.Event(), [], []

    async def crashes(self, name: str) -> list[Event]:
        return [e for e in await self.events(name) if e.type is EventType.CRASHED]

    async def alerted(self, name: str) -> bool:
        return any(e.alert for e in await self.crashes(name))

    async def mark_gone(self, container_id: str) -> bool:
        """The container's "expected stop" mark is cleared (or dropped)."""
        return not await self.redis.exists(keys.expected_stop(container_id))


@pytest.fixture
async def rig(own_redis_url: str) -> AsyncIterator[Rig]:
    redis = connect_redis(own_redis_url)  # the runner's own client and pool
    await redis.flushdb()
    settings = Settings(
        _env_file=None,
        redis_url=own_redis_url,
        runner_instance="fake",
        runner_id="fake-runner",
        max_bots_per_user=QUOTA,
        runner_restart_max=RESTART_MAX,
        runner_claim_idle_ms=200,
        runner_stop_timeout=0,
    )
    fake = FakeBackend(restart_max=RESTART_MAX)
    fake.images[RUNTIME] = "sha256:runtime"
    store = StateStore(redis, settings.max_bots_per_user)
    bus = EventBus(redis)
    watcher = EventWatcher(fake, store, bus, restart_max=RESTART_MAX, memory_limit=1 << 28)

    async def in_use() -> set[str]:
        return {rec.image for rec in await store.all_records()}

    async def runtime() -> str:
        return RUNTIME

    sources = Sources(settings, ImageCache(settings, redis, fake, in_use), runtime)
    ops = Operations(settings, redis, store, fake, bus, watcher, sources)
    rig = Rig(redis, fake, settings, store, watcher, ops)

    async def beat() -> None:
        """The heartbeat a runner process would keep: clients wait only while some runner is alive."""
        while True:
            health = RunnerHealth(runner_id="fake-runner", ts=time.time(), docker_ok=True)
            await heartbeats.beat(redis, health)
            await asyncio.sleep(keys.HEARTBEAT_INTERVAL)

    beating = asyncio.create_task(beat())
    try:
        yield rig
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        await rig.stop_all()
        await rig.client.close()
        await redis.aclose()


def start_cmd(name: str, **kw: Any) -> Command:
    return Command(op=Op.START, owner=OWNER, name=name, source=SourceSpec(kind=SourceKind.FILE), **kw)


@pytest.mark.parametrize("same_consumer", [True, False], ids=["restarted-runner", "other-runner"])
async def test_an_unacked_command_is_redone_without_a_second_effect(rig: Rig, same_consumer: bool) -> None:
    frozen = rig.worker("runner-a", FrozenBeforeAck)
    assert isinstance(frozen, FrozenBeforeAck)
    cmd = start_cmd("redo")
    await rig.submit(cmd, SLEEPER)
    await asyncio.wait_for(frozen.froze.wait(), 10)
    first = rig.fake.containers[(OWNER, "redo")].id
    await rig.stop_all()  # the runner dies with the entry pending, its effect done
    await asyncio.sleep(0.3)  # idle past runner_claim_idle_ms, so another runner may claim it

    # A restarted runner reads its own pending entries; another one claims them once idle.
    rig.worker("runner-a" if same_consumer else "runner-b")
    res = await rig.client.wait(cmd.request_id, timeout=10)

    assert res.ok, res.error
    assert res.bot is not None and res.bot.container_id == first[:12]
    assert rig.fake.calls["deploy"] == 1  # the redelivered start found its container and kept it
    assert await rig.store.quota(OWNER) == (1, QUOTA)
    assert await rig.redis.xpending(keys.COMMANDS_STREAM, keys.COMMANDS_GROUP) == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }


async def test_a_request_id_takes_effect_once(rig: Rig) -> None:
    rig.worker()
    cmd = start_cmd("once", env={"A": "1"})
    first = await rig.call(cmd, SLEEPER)
    assert first.ok, first.error
    # The same request again (a requester's retry, a duplicated entry): the stored answer, no work.
    again = await rig.call(cmd, SLEEPER)
    assert again == first
    assert rig.fake.calls["deploy"] == 1

    set_env = Command(op=Op.SET_ENV, owner=OWNER, name="once", env={"B": "2"})
    assert (await rig.call(set_env)).ok
    assert (await rig.call(set_env)).ok
    assert rig.fake.calls["deploy"] == 2  # one new container for the new env, not two
    rec = await rig.store.get(OWNER, "once")
    assert rec is not None and rig.ops.secrets.open_env(rec.env) == {"A": "1", "B": "2"}  # sealed at rest


async def test_a_crash_loop_alerts_once_and_reports_the_loop_once(rig: Rig) -> None:
    rig.worker()
    rig.watch()
    assert (await rig.call(start_cmd("loopy"), SLEEPER)).ok
    assert rig.fake.calls["events"] == 1  # the watcher listens (the start above gave it time)

    # A stop asked for is no crash.
    assert (await rig.call(Command(op=Op.STOP, owner=OWNER, name="loopy"))).ok

    async def stopped() -> bool:
        return any(e.type is EventType.STOPPED for e in await rig.events("loopy"))

    await eventually(stopped, timeout=5, every=0.02)
    assert [e.exit_code for e in await rig.events("loopy") if e.type is EventType.STOPPED] == [STOPPED_EXIT]
    assert (await rig.call(Command(op=Op.START, owner=OWNER, name="loopy"))).ok

    async def crashed(n: int) -> None:
        async def seen() -> bool:
            return len(await rig.crashes("loopy")) >= n

        await eventually(seen, timeout=5, every=0.02)

    # Each crash is handled before the next: Docker restarts it up to RESTART_MAX times, then not.
    for n in range(1, RESTART_MAX + 2):
        rig.fake.say(OWNER, "loopy", f"Traceback {n}")
        rig.fake.crash(OWNER, "loopy", exit_code=1)
        await crashed(n)

    crashed_events = await rig.crashes("loopy")
    assert [e.alert for e in crashed_events] == [True] + [False] * RESTART_MAX
    assert [e.crash_loop for e in crashed_events] == [False] * RESTART_MAX + [True]
    last = crashed_events[-1]
    assert last.restart_count == RESTART_MAX and f"Traceback {RESTART_MAX + 1}" in (last.log_tail or "")

    # The user starts it again: a new streak, so the next crash alerts again (and, the policy's
    # count spent, it stays down: a single crash is no loop).
    assert (await rig.call(Command(op=Op.START, owner=OWNER, name="loopy"))).ok
    rig.fake.crash(OWNER, "loopy", exit_code=2)
    await crashed(RESTART_MAX + 2)
    last = (await rig.crashes("loopy"))[-1]
    assert last.alert and last.exit_code == 2 and not last.crash_loop


async def test_a_restart_no_leader_watched_hides_no_later_crash(rig: Rig) -> None:
    """The old leader died, the new one not yet watching: a restart's start event goes unseen and
    its "expected stop" mark stays. The new watcher drops it as it subscribes; the next crash alerts."""
    rig.worker()
    assert (await rig.call(start_cmd("unseen"), SLEEPER)).ok
    assert (await rig.call(Command(op=Op.RESTART, owner=OWNER, name="unseen"))).ok
    cid = rig.fake.containers[(OWNER, "unseen")].id
    assert await rig.redis.exists(keys.expected_stop(cid))  # nobody saw the start that clears it

    await asyncio.sleep(0.01)  # the restart's start, strictly before the new leader subscribes
    rig.watch()

    await eventually(lambda: rig.mark_gone(cid), timeout=5, every=0.01)
    rig.fake.crash(OWNER, "unseen", exit_code=1)

    await eventually(lambda: rig.alerted("unseen"), timeout=5, every=0.02)


async def test_a_crash_while_no_leader_watched_is_alerted_once_by_the_next(rig: Rig) -> None:
    """The leader was SIGKILLed; before the next one takes its lease, a bot crashes and Docker
    restarts it. The next watcher finds that death in the container's state and alerts it, once;
    a bot stopped from outside (143, not restarted) in the same gap is no alert."""
    rig.worker()
    assert (await rig.call(start_cmd("gap"), SLEEPER)).ok
    assert (await rig.call(start_cmd("termed"), SLEEPER)).ok
    await rig.redis.set(keys.EVENTS_WATCHED, repr(time.time()))  # the old leader's last mark
    await asyncio.sleep(0.01)
    rig.fake.crash(OWNER, "gap", exit_code=1)  # restarted by the policy: running again
    rig.fake.containers[(OWNER, "termed")].restart_policy = False
    rig.fake.crash(OWNER, "termed", exit_code=143)
    assert rig.fake.containers[(OWNER, "gap")].status == "running"
    await asyncio.sleep(0.01)

    rig.watch()

    await eventually(lambda: rig.alerted("gap"), timeout=5, every=0.02)
    await asyncio.sleep(0.3)
    assert [e.alert for e in await rig.crashes("gap")] == [True]
    assert await rig.crashes("termed") == []
    # The new watcher marks how far it watched, for the one after it.
    assert float(await rig.redis.get(keys.EVENTS_WATCHED) or 0) >= rig.watcher.subscribed_at - 0.01


async def test_a_crash_while_the_event_stream_opens_is_alerted(rig: Rig) -> None:
    """A new leader picks the moment it watches from, and its stream opens a moment later (a
    thread, a busy host). A bot that dies in between is neither catch-up's (after that moment) nor
    a live event: the stream replays it (Backend.events(since)). CI once lost this very alert
    (test_two_runners.py)."""
    rig.worker()
    assert (await rig.call(start_cmd("opening"), SLEEPER)).ok
    await rig.redis.set(keys.EVENTS_WATCHED, repr(time.time()))  # the old leader's last mark
    rig.fake.events_open_delay = 0.5
    rig.watch()
    await eventually(lambda: _true(rig.watcher.subscribed_at is not None), timeout=5, every=0.005)
    rig.fake.crash(OWNER, "opening", exit_code=1)
    assert rig.fake.calls["events"] == 1  # still opening

    await eventually(lambda: rig.alerted("opening"), timeout=5, every=0.02)
    await asyncio.sleep(0.3)
    assert [e.alert for e in await rig.crashes("opening")] == [True]


async def test_a_restart_while_the_event_stream_opens_hides_no_later_crash(rig: Rig) -> None:
    """A restart whose start comes after the new watcher's moment but before its stream opened:
    too late for forget_missed_starts, so only the replayed start event clears its mark."""
    rig.worker()
    assert (await rig.call(start_cmd("reopened"), SLEEPER)).ok
    rig.fake.events_open_delay = 0.5
    rig.watch()
    await eventually(lambda: _true(rig.watcher.subscribed_at is not None), timeout=5, every=0.005)
    await asyncio.sleep(0.01)
    assert (await rig.call(Command(op=Op.RESTART, owner=OWNER, name="reopened"))).ok
    cid = rig.fake.containers[(OWNER, "reopened")].id

    await eventually(lambda: rig.mark_gone(cid), timeout=5, every=0.01)
    rig.fake.crash(OWNER, "reopened", exit_code=1)

    await eventually(lambda: rig.alerted("reopened"), timeout=5, every=0.02)


async def test_a_death_just_before_the_watchers_moment_is_handled_once(rig: Rig) -> None:
    """dockerd stamps a die event after its cleanup, later than the container's FinishedAt. A
    death just before the new watcher's moment is then catch-up's (by FinishedAt) and comes
    replayed too (by the event's stamp): one crash event, not two, or its streak would count 2
    and the bot's next crash alert nobody."""
    rig.worker()
    assert (await rig.call(start_cmd("twice"), SLEEPER)).ok
    await rig.redis.set(keys.EVENTS_WATCHED, repr(time.time()))  # the old leader's last mark
    await asyncio.sleep(0.01)
    rig.fake.die_event_lag = 0.5
    rig.fake.crash(OWNER, "twice", exit_code=1)  # restarted by the policy
    rig.watch()

    await eventually(lambda: rig.alerted("twice"), timeout=5, every=0.02)
    await asyncio.sleep(1.0)  # the replayed die: handled (or not) by now
    assert [e.alert for e in await rig.crashes("twice")] == [True]


async def test_a_restart_across_the_new_watchers_start_is_no_crash(rig: Rig) -> None:
    """A restart the old leader's death split: its stop before the new watcher's moment (a death
    in the gap, announced by a mark), its start after (a live event, which clears the mark). The
    gap is read before any live event is handled, or that stop would be a crash alert, and it
    would count in the bot's crash streak so that its next real crash alerted nobody (CI, once)."""
    rig.worker()
    assert (await rig.call(start_cmd("split"), SLEEPER)).ok
    cid = rig.fake.containers[(OWNER, "split")].id
    await rig.redis.set(keys.EVENTS_WATCHED, repr(time.time()))  # the old leader's last mark
    await asyncio.sleep(0.01)
    await rig.watcher.expect_stop(cid)
    await rig.fake.stop(OWNER, "split", 5)  # the restart's first half; no watcher sees it
    rig.fake.latency_of.update(managed=0.3, inspect=0.3)  # the gap takes a while to read, and handle
    rig.watch()
    await eventually(lambda: _true(rig.watcher.subscribed_at is not None), timeout=5, every=0.005)
    await asyncio.sleep(0.05)
    await rig.fake.start(OWNER, "split")  # its second half, while the gap is read: running in it

    inspected = rig.fake.calls["inspect"]

    async def caught_up() -> bool:  # the start's inspect, and the death's (catch-up)
        return rig.fake.calls["inspect"] >= inspected + 2 and not await rig.redis.exists(
            keys.expected_stop(cid)
        )

    await eventually(caught_up, timeout=5, every=0.02)
    await asyncio.sleep(0.3)
    assert await rig.crashes("split") == []
    rig.fake.crash(OWNER, "split", exit_code=1)

    await eventually(lambda: rig.alerted("split"), timeout=5, every=0.02)


async def test_a_mark_for_a_start_the_watcher_will_see_is_kept(rig: Rig) -> None:
    """A start after the subscription reaches the watcher as an event, its death maybe still on
    the way: reconcile leaves that mark to the events, or a stop would read as a crash."""
    rig.worker()
    rig.watch()
    assert (await rig.call(start_cmd("seen"), SLEEPER)).ok
    await eventually(lambda: _true(rig.watcher.subscribed_at is not None), timeout=5, every=0.01)
    cid = rig.fake.containers[(OWNER, "seen")].id
    await rig.watcher.expect_stop(cid)
    rig.watcher.subscribed_at = time.time() - 3600  # as if subscribed before the container started
    assert await rig.watcher.forget_missed_starts([rig.fake.containers[(OWNER, "seen")].info()]) == 0
    assert await rig.redis.exists(keys.expected_stop(cid))


async def test_a_start_handled_late_keeps_the_stop_announced_after_it(rig: Rig) -> None:
    """A start, then at once a restart: the watcher, behind, handles the first start after the
    restart announced its stop. That start must not clear the mark, or the stop reads as a crash."""
    rig.worker()
    assert (await rig.call(start_cmd("quick"), SLEEPER)).ok
    cid = rig.fake.containers[(OWNER, "quick")].id
    first_start = time.time()
    await asyncio.sleep(0.01)
    await rig.watcher.expect_stop(cid)
    await rig.watcher.handle(DockerEvent("start", OWNER, "quick", cid, None, first_start))
    assert await rig.redis.exists(keys.expected_stop(cid))
    await rig.watcher.handle(DockerEvent("start", OWNER, "quick", cid, None, time.time()))
    assert not await rig.redis.exists(keys.expected_stop(cid))


async def _true(value: bool) -> bool:
    return value


async def test_two_starts_at_quota_minus_one_give_exactly_one_bot(rig: Rig) -> None:
    rig.worker()
    assert (await rig.call(start_cmd("first"), SLEEPER)).ok
    rig.fake.latency = 0.05  # both starts are in flight at once
    a, b = start_cmd("racer-a"), start_cmd("racer-b")
    await asyncio.gather(rig.submit(a, SLEEPER), rig.submit(b, SLEEPER))
    client = rig.client
    results = await asyncio.gather(*(client.wait(c.request_id, timeout=10) for c in (a, b)))

    assert sorted(r.ok for r in results) == [False, True]
    loser = next(r for r in results if not r.ok)
    assert loser.error is not None and loser.error.code is ErrorCode.QUOTA_EXCEEDED
    assert await rig.store.quota(OWNER) == (QUOTA, QUOTA)
    winner = next(r.bot.name for r in results if r.ok and r.bot is not None)
    # The loser left no container and no volumes behind.
    assert {n for _o, n in rig.fake.containers} == {"first", winner}
    assert not any("racer" in v and winner not in v for v in rig.fake.volumes)
