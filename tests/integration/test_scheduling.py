"""Fair share and two runners on one queue, at the worker's level: real Redis (a private server:
the queue's keys are global), the in-memory FakeBackend, and workers as asyncio tasks.

The operations are replaced by a handler that records who runs when and blocks where a test says,
so what is measured is the scheduling alone: per-bot order, the per-owner cap, the build pool, the
deadline while queued, the leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from protocol import keys
from protocol.aio import cancel_and_wait
from protocol.errors import ErrorCode
from protocol.models import Command, EventType, Op, Result, SourceKind, SourceSpec
from runner.cluster import Leadership
from runner.events import EventWatcher
from runner.lease import Lease, held
from runner.reconcile import reconcile, reconcile_pass
from runner.sources import ProgressFn
from tests.fakes.backend import STOPPED_EXIT
from tests.integration.helpers import SLEEPER, eventually
from tests.integration.test_worker_logic import OWNER, Rig, own_redis_url, rig, start_cmd

pytestmark = pytest.mark.integration
__all__ = ["own_redis_url", "rig"]  # fixtures, imported for their names

FILE = SourceSpec(kind=SourceKind.FILE, filename="bot.py")


class Recorder:
    """Stands in for Operations.handle: records overlap per bot and per owner, blocks on request."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.running: Counter[object] = Counter()
        self.peak: Counter[object] = Counter()
        self.calls: Counter[str] = Counter()
        self.gates: dict[str, asyncio.Event] = {}  # request id -> released when set
        self.hold_s = 0.0

    def block(self, cmd: Command) -> asyncio.Event:
        return self.gates.setdefault(cmd.request_id, asyncio.Event())

    async def handle(self, cmd: Command, progress: ProgressFn) -> Result:
        self.calls[cmd.request_id] += 1
        keys_ = [("bot", cmd.owner, cmd.name), ("owner", cmd.owner)]
        for k in keys_:
            self.running[k] += 1
            self.peak[k] = max(self.peak[k], self.running[k])
        try:
            self.order.append(cmd.request_id)
            if cmd.request_id in self.gates:
                await self.gates[cmd.request_id].wait()
            await asyncio.sleep(self.hold_s)
        finally:
            for k in keys_:
                self.running[k] -= 1
        return Result(request_id=cmd.request_id)


@pytest.fixture(autouse=True)
def patient(rig: Rig) -> None:
    """Leases of 3 s: on this loaded machine a 200 ms lease can lapse between two renewals."""
    rig.settings = rig.settings.model_copy(update={"runner_claim_idle_ms": 3000})


@pytest.fixture
async def rec(rig: Rig) -> AsyncIterator[Recorder]:
    recorder = Recorder()
    rig.ops.handle = recorder.handle  # type: ignore[method-assign]
    yield recorder
    for gate in recorder.gates.values():
        gate.set()


async def answers(rig: Rig, cmds: list[Command], timeout: float = 10) -> list[Result]:
    # rig.submit addressed the replies to rig.client's stream: only that client sees them.
    return list(await asyncio.gather(*(rig.client.wait(c.request_id, timeout=timeout) for c in cmds)))


def update(owner: int, name: str) -> Command:
    return Command(op=Op.UPDATE, owner=owner, name=name, source=FILE)


async def test_one_bot_runs_one_command_at_a_time_in_order(rig: Rig, rec: Recorder) -> None:
    rig.worker("a")
    rec.hold_s = 0.02
    cmds = [Command(op=Op.SET_ENV, owner=OWNER, name="ordered", env={"N": str(i)}) for i in range(8)]
    for cmd in cmds:
        await rig.submit(cmd)
    results = await answers(rig, cmds)
    assert all(r.ok for r in results), [r.error for r in results]
    assert rec.order == [c.request_id for c in cmds]
    assert rec.peak[("bot", OWNER, "ordered")] == 1


async def test_an_owners_surplus_waits_in_its_own_queue(rig: Rig, rec: Recorder) -> None:
    rig.worker("a")
    hog = [Command(op=Op.STOP, owner=OWNER, name=f"hog{i}") for i in range(6)]
    for cmd in hog:
        rec.block(cmd)
        await rig.submit(cmd)
    other = Command(op=Op.STOP, owner=OWNER + 1, name="mine")
    started = time.monotonic()
    await rig.submit(other)
    [res] = await answers(rig, [other], timeout=3)
    assert res.ok and time.monotonic() - started < 1.0
    assert rec.peak[("owner", OWNER)] == rig.settings.runner_max_inflight_per_user == 2
    for gate in rec.gates.values():
        gate.set()
    assert all(r.ok for r in await answers(rig, hog))


async def test_queued_commands_of_one_bot_hold_no_slot(rig: Rig, rec: Recorder) -> None:
    """Today's starvation: ten commands of one slow bot took all eight slots."""
    rig.worker("a")
    first = update(OWNER, "slow")
    rec.block(first)
    await rig.submit(first)
    for _ in range(10):
        await rig.submit(Command(op=Op.RESTART, owner=OWNER, name="slow"))
    others = [Command(op=Op.LIST, owner=OWNER + i) for i in range(1, 12)]
    others += [Command(op=Op.STOP, owner=OWNER + 100 + i, name="x") for i in range(10)]
    started = time.monotonic()
    for cmd in others:
        await rig.submit(cmd)
    assert all(r.ok for r in await answers(rig, others, timeout=5))
    assert time.monotonic() - started < 2.0


async def test_builds_hold_no_quick_slot(rig: Rig, rec: Recorder) -> None:
    """Twelve owners' builds that hang: quick commands of others (and of themselves) still run."""
    rig.worker("a")
    builds = [update(OWNER + i, "b") for i in range(12)]
    for cmd in builds:
        rec.block(cmd)
        await rig.submit(cmd)
    await eventually(lambda: _true(len(rec.order) == 12), timeout=5, every=0.02)
    quick = [Command(op=Op.RESTART, owner=OWNER + i, name="other") for i in range(12)]
    quick.append(Command(op=Op.STATUS, owner=OWNER, name="b"))  # a read: no lock, no wait
    for cmd in quick:
        await rig.submit(cmd)
    assert all(r.ok for r in await answers(rig, quick, timeout=3))


async def test_the_build_pool_caps_builds_not_deploys(rig: Rig) -> None:
    """RUNNER_BUILD_CONCURRENCY bounds the image builds themselves (runner/builds/cache.py)."""
    cache = rig.ops.sources.images
    inside = peak = 0
    gate = asyncio.Event()

    async def slow_ensure(*_a: Any, **_k: Any) -> bool:
        nonlocal inside, peak
        inside += 1
        peak = max(peak, inside)
        await gate.wait()
        inside -= 1
        return False

    import runner.builds.cache as cache_mod

    original = cache_mod.ensure_image
    cache_mod.ensure_image = slow_ensure  # type: ignore[assignment]
    try:
        bridge = cache_mod._Bridge(_noop, cache_mod.Stage.BUILDING, ())
        tasks = [asyncio.create_task(cache._build(bridge, None, f"t{i}")) for i in range(5)]  # type: ignore[arg-type]
        await asyncio.sleep(0.2)
        assert peak == inside == rig.settings.runner_build_concurrency == 2
        gate.set()
        await asyncio.gather(*tasks)
    finally:
        cache_mod.ensure_image = original  # type: ignore[assignment]


async def test_a_command_that_waits_past_its_deadline_is_answered_expired(rig: Rig, rec: Recorder) -> None:
    rig.worker("a")
    blockers = [Command(op=Op.STOP, owner=OWNER, name=f"b{i}") for i in range(2)]
    for cmd in blockers:
        rec.block(cmd)
        await rig.submit(cmd)

    # Both blockers hold the owner's two slots before the late one arrives (each takes its bot's
    # lease in Redis first, on its own connection: submitted together, they could finish in any order).
    async def both_running() -> bool:
        return rec.running[("owner", OWNER)] == 2

    await eventually(both_running, timeout=5, every=0.01)
    late = Command(op=Op.STOP, owner=OWNER, name="late", deadline=time.time() + 0.5)
    await rig.submit(late)
    started = time.monotonic()
    [res] = await answers(rig, [late], timeout=5)
    assert not res.ok and res.error is not None and res.error.code is ErrorCode.EXPIRED
    assert time.monotonic() - started < 2.0  # answered at its deadline, not when a slot came
    assert rec.calls[late.request_id] == 0


async def test_two_workers_never_run_one_bot_at_once(rig: Rig, rec: Recorder) -> None:
    rig.worker("a")
    rig.worker("b")
    rec.hold_s = 0.03
    cmds = [Command(op=Op.RESTART, owner=OWNER, name="shared") for _ in range(12)]
    for cmd in cmds:
        await rig.submit(cmd)
    assert all(r.ok for r in await answers(rig, cmds))
    assert rec.peak[("bot", OWNER, "shared")] == 1
    assert set(rec.calls.values()) == {1}


async def test_a_long_command_is_never_stolen_from_a_live_worker(rig: Rig, rec: Recorder) -> None:
    """claim idle is 600 ms here; the command takes 3 s; the other worker claims all it can."""
    rig.settings = rig.settings.model_copy(update={"runner_claim_idle_ms": 600})
    rig.worker("a")
    long = update(OWNER, "long")
    gate = rec.block(long)
    await rig.submit(long)
    await eventually(lambda: _true(rec.calls[long.request_id] == 1), timeout=5, every=0.02)
    await asyncio.sleep(0.8)  # past the idle time: without refreshes, b would claim it at once
    rig.worker("b")
    await asyncio.sleep(2.2)
    gate.set()
    [res] = await answers(rig, [long])
    assert res.ok and rec.calls[long.request_id] == 1


async def test_a_lease_is_renewed_while_held_and_freed_when_its_holder_dies(rig: Rig) -> None:
    r = rig.redis
    async with held(r, "lease:t", 300, holder="a"):
        await asyncio.sleep(1.0)  # three TTLs: renewed meanwhile
        assert not await Lease(r, "lease:t", 300, holder="b").try_acquire()
    assert await r.get("lease:t") is None  # released on exit

    dead = Lease(r, "lease:t", 300, holder="dead")
    assert await dead.try_acquire()  # and never renewed: its holder was SIGKILLed
    thief = Lease(r, "lease:t", 300, holder="b")
    started = time.monotonic()
    await asyncio.wait_for(thief.acquire(), 2)
    assert 0.2 < time.monotonic() - started < 1.0
    # The old holder cannot renew or release what is now another's.
    assert not await dead.renew()
    dead.held = True
    await dead.release()
    assert (await r.get("lease:t")).decode().startswith("b:")


async def test_a_holder_that_loses_its_lease_stops(rig: Rig) -> None:
    r = rig.redis

    async def hold() -> None:
        async with held(r, "lease:lost", 300, holder="a"):
            await r.set("lease:lost", "someone-else")  # it lapsed while we stalled, and was taken
            await asyncio.sleep(5)

    task = asyncio.create_task(hold())
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert await r.get("lease:lost") == b"someone-else"  # not released: not ours


async def test_a_burst_of_three_hundred_commands_is_all_answered(rig: Rig, rec: Recorder) -> None:
    """Each command in flight holds its bot's lease and renews it beside its own Redis calls: with
    redis-py's default pool (100 connections, raising when full) a burst like the chat's failed
    commands with "Too many connections" and lost leases. The runner's pool waits instead."""
    rig.worker("a")
    rec.hold_s = 0.5
    cmds = [update(700_000 + i % 150, f"burst-{i}") for i in range(300)]
    await asyncio.gather(*(rig.submit(c) for c in cmds))
    results = await answers(rig, cmds, timeout=60)
    assert [r.error for r in results if not r.ok] == []
    assert len(rec.order) == 300


async def test_a_lease_that_lapsed_while_its_holder_stalled_is_taken_back_not_lost(rig: Rig) -> None:
    """A stall over the TTL (a loop blocked, Redis briefly away) with nobody else waiting is no
    loss: the holder goes on. Cancelling it would only fail a command nobody else had started."""
    r = rig.redis
    async with held(r, "lease:lapsed", 300, holder="a") as lease:
        time.sleep(0.5)  # the whole loop stalls: no renewal can run, the key expires
        assert await r.get("lease:lapsed") is None
        await asyncio.sleep(0.4)  # the next renewal takes it back; this task is not cancelled
        assert await r.get("lease:lapsed") == lease.token.encode()
    assert await r.get("lease:lapsed") is None


class DropsACancel:
    """A Redis client whose EVAL takes 200 ms and drops the first cancel that reaches it, as
    redis-py 8 does on Python 3.11 when the cancel meets the end of its socket write (asyncio.wait_for,
    CPython gh-86296; protocol/aio.py)."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.dropped = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.redis, name)

    async def eval(self, *args: Any) -> Any:
        try:
            await asyncio.sleep(0.2)
        except asyncio.CancelledError:
            if self.dropped:
                raise
            self.dropped += 1
        return await self.redis.eval(*args)


async def test_a_lease_keeper_that_drops_its_cancel_still_ends_with_its_block(rig: Rig) -> None:
    """The stuck bot locks of a CI run: a keeper that survived its one cancel renewed its bot's lock
    for good, and the block's exit waited for it for good; the bot's commands then expired."""
    r = DropsACancel(rig.redis)
    async with asyncio.timeout(5):
        async with held(r, "lease:dropped", 300, holder="a"):  # renewals every 100 ms, 200 ms each
            await asyncio.sleep(0.15)  # the exit comes while the keeper is in its EVAL
    assert r.dropped == 1
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "lease lease:dropped"]
    assert await rig.redis.get("lease:dropped") is None  # released, and never renewed again
    await asyncio.sleep(0.5)
    assert await rig.redis.get("lease:dropped") is None


async def test_a_leader_that_loses_its_lease_stops_even_a_job_that_drops_its_cancel(rig: Rig) -> None:
    """In a loaded run the leader lost its lease and never led again: stopping its jobs waited for
    good on one that had dropped its cancel (in a Redis call). Alerts and reconcile stopped."""
    started, ended = asyncio.Event(), asyncio.Event()

    async def job() -> None:
        started.set()
        dropped = False
        try:
            while True:
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    if dropped:
                        raise
                    dropped = True
        finally:
            ended.set()

    leadership = Leadership(rig.redis, "runner-a", 300, {"job": job})
    leading = asyncio.create_task(leadership.run())
    try:
        await asyncio.wait_for(started.wait(), 2)
        await rig.redis.set(keys.LEADER, "runner-b:token", px=800)  # runner-b took over
        await asyncio.wait_for(ended.wait(), 2)
        started.clear()
        await asyncio.wait_for(started.wait(), 3)  # runner-b went away: runner-a leads again
        assert leadership.leading
    finally:
        assert await cancel_and_wait([leading], timeout=5) == set()


async def test_a_stop_one_runner_made_is_no_crash_to_the_leaders_watcher(rig: Rig) -> None:
    """Runner A restarts the bot; runner B (the leader) watches the engine's events."""
    leader = EventWatcher(rig.fake, rig.store, rig.ops.bus, restart_max=3, memory_limit=1 << 28)
    rig.tasks.append(asyncio.create_task(leader.run(rig.stopping)))
    rig.worker("a")
    assert (await rig.call(start_cmd("calm"), SLEEPER)).ok
    assert (await rig.call(Command(op=Op.RESTART, owner=OWNER, name="calm"))).ok
    await eventually(lambda: _events(rig, "calm", EventType.STARTED, 2), timeout=5, every=0.02)
    assert await rig.crashes("calm") == []
    # A real crash, after a restart a user asked for: one alert, even from a watcher that never saw
    # the streak start (the streak lives in Redis).
    rig.fake.crash(OWNER, "calm", exit_code=1)
    await eventually(lambda: _events(rig, "calm", EventType.CRASHED, 1), timeout=5, every=0.02)
    assert [e.alert for e in await rig.crashes("calm")] == [True]


async def test_reconcile_converges_both_ways_after_the_engine_restarts(rig: Rig) -> None:
    rig.worker("a")
    assert (await rig.call(start_cmd("up"), SLEEPER)).ok
    assert (await rig.call(start_cmd("down"), SLEEPER)).ok
    assert (await rig.call(Command(op=Op.STOP, owner=OWNER, name="down"))).ok
    assert not rig.fake.containers[(OWNER, "down")].restart_policy  # the stop cleared it

    rig.fake.daemon_restart()
    assert rig.fake.containers[(OWNER, "up")].status == "running"
    assert rig.fake.containers[(OWNER, "down")].exit_code == STOPPED_EXIT
    assert rig.fake.containers[(OWNER, "down")].status == "exited"

    # Something starts the stopped bot behind the runner's back: a periodic pass stops it again.
    await rig.fake.start(OWNER, "down")
    lock = rig.workers[0].scheduler.bot
    assert await reconcile(rig.ops, lock, full=False) == 1
    assert rig.fake.containers[(OWNER, "down")].status == "exited"
    assert rig.fake.containers[(OWNER, "up")].status == "running"
    # A user's start puts the policy back.
    assert (await rig.call(Command(op=Op.START, owner=OWNER, name="down"))).ok
    assert rig.fake.containers[(OWNER, "down")].restart_policy


@pytest.mark.parametrize("by", ["reconcile", "start"])
async def test_a_container_never_started_is_made_again_not_started(rig: Rig, by: str) -> None:
    """A runner died in a deploy, between the engine's create and the files' copy. The new
    leader's full pass, or a user's /start, comes before the command's redelivery: started as it
    is, the bot had no code, and, started once, the redelivered deploy adopted it for good."""
    rig.worker("a")
    assert (await rig.call(start_cmd("halfmade"), SLEEPER)).ok
    whole = rig.fake.containers[(OWNER, "halfmade")].spec
    await rig.fake.remove(OWNER, "halfmade", volumes=False)
    await rig.fake.deploy(replace(whole, files={}), start=False)  # what the dead runner left

    if by == "reconcile":
        assert await reconcile(rig.ops, rig.workers[0].scheduler.bot, full=True) == 1
    else:
        assert (await rig.call(Command(op=Op.START, owner=OWNER, name="halfmade"))).ok
    remade = rig.fake.containers[(OWNER, "halfmade")]
    assert remade.status == "running" and remade.spec.files == whole.files and whole.files


async def test_reconcile_acts_on_the_bot_as_it_is_under_its_lock_not_as_listed(rig: Rig) -> None:
    """The listing comes before the bots' locks; a command may replace a container in between
    (a set_env or an update). Reconcile looks again before acting: no second deploy, no
    "recovered" message for a bot that was never down."""
    rig.worker("a")
    assert (await rig.call(start_cmd("busy"), SLEEPER)).ok
    deploys = rig.fake.calls["deploy"]
    real_managed = rig.fake.managed

    async def listed_mid_replace() -> list[Any]:
        return [m for m in await real_managed() if m[1] != "busy"]  # between remove and create

    rig.fake.managed = listed_mid_replace  # type: ignore[method-assign]
    assert await reconcile(rig.ops, rig.workers[0].scheduler.bot, full=True) == 0
    assert rig.fake.calls["deploy"] == deploys
    assert not [e for e in await rig.events("busy") if e.type is EventType.RECOVERED]


async def test_a_bot_lock_lost_mid_pass_ends_the_pass_not_the_leaders_reconciling(rig: Rig) -> None:
    """held() cancels the task holding a lease another runner took. Reconcile ran in the leader's
    long-lived job task, so one lost lease ended reconciling on that leader for good."""
    rig.worker("a")
    assert (await rig.call(start_cmd("taken"), SLEEPER)).ok

    @contextlib.asynccontextmanager
    async def lost_at_once(owner: int, name: str) -> AsyncIterator[None]:
        async with held(rig.redis, f"lease:mid-pass:{name}", 300, holder="leader"):
            await rig.redis.set(f"lease:mid-pass:{name}", "runner-b:token")  # taken meanwhile
            await asyncio.sleep(5)  # cancelled within a renewal (100 ms)
            yield

    async with asyncio.timeout(5):
        assert await reconcile_pass(rig.ops, lost_at_once, full=True) == 0
        # The caller lives on: the next pass runs.
        assert await reconcile_pass(rig.ops, rig.workers[0].scheduler.bot, full=True) == 0


async def _events(rig: Rig, name: str, kind: EventType, n: int) -> bool:
    return len([e for e in await rig.events(name) if e.type is kind]) >= n


async def _true(value: bool) -> bool:
    return value


async def _noop(*_a: Any) -> None:
    return None
