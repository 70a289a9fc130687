"""Asynchronous events: publish them on the events stream, and derive them from Docker's."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import KW_ONLY, dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError

from protocol import keys
from protocol.aio import cancel_and_wait
from protocol.errors import DockerUnavailable
from protocol.models import Desired, Event, EventType
from runner.backend import Backend, ContainerInfo, DockerEvent
from runner.history import History
from runner.secrets import Secrets
from runner.state import StateStore

log = logging.getLogger(__name__)

# A bot that ran this long before dying starts a new crash streak (and so a new alert).
STABLE_RUN_S = 60.0
# The longest unwatched gap a new watcher alerts crashes for: a leader change takes the lease's
# TTL (RUNNER_CLAIM_IDLE_MS, 30 s by default) and a little; a longer gap is a restart.
CATCH_UP_MAX_S = 120.0


class EventBus:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.history = History(redis)

    async def publish(self, event: Event) -> None:
        await self.history.note(event)  # restarts and crashes: the chart's marks and their counters
        await self.redis.xadd(
            keys.EVENTS_STREAM,
            {"data": event.model_dump_json()},
            maxlen=keys.EVENTS_MAXLEN,
            approximate=True,
        )
        log.info("event %s owner=%s bot=%s exit=%s", event.type, event.owner, event.name, event.exit_code)


@dataclass
class Gap:
    """What a new watcher reads of the time nobody watched (EventWatcher.unwatched)."""

    deaths: list[tuple[DockerEvent, bool]] = field(default_factory=list)  # and whether expected
    containers: list[ContainerInfo] = field(default_factory=list)  # every managed one, as it is now


@dataclass(eq=False)
class EventWatcher:
    """Turns Docker's start/die/oom events into botrunner events, reporting a crash loop once.

    Operations that stop a container on purpose (stop, restart, update, delete) announce it with
    `expect_stop`, so its death is not mistaken for a crash. What it remembers (expected stops,
    crash streaks, loops reported) lives in Redis: the runner that stops a bot may not be the
    leader that watches the events.
    """

    backend: Backend
    store: StateStore
    bus: EventBus
    _: KW_ONLY
    restart_max: int
    memory_limit: int
    secrets: Secrets = field(default_factory=Secrets.ephemeral)  # masks the bot's env values in log tails
    # oom comes just before die in the same stream, to the same watcher: memory is enough.
    # Container id -> when an oom event was seen.
    _oom: dict[str, float] = field(init=False, default_factory=dict)
    # Containers inside a health gate (runner.healthgate): the gate's verdict is their one message.
    gated: set[str] = field(init=False, default_factory=set)
    # Container id -> exit code of its last death.
    gated_exits: dict[str, int | None] = field(init=False, default_factory=dict)
    # When run() last subscribed to the engine's events.
    subscribed_at: float | None = field(init=False, default=None)
    # Container id -> the finish time of the death catch-up handled (its last, then).
    _caught_up: dict[str, float] = field(init=False, default_factory=dict)

    @property
    def redis(self) -> Redis:
        return self.store.redis

    async def expect_stop(self, container_id: str | None, for_s: int = keys.EXPECTED_STOP_TTL) -> None:
        if container_id:
            await self.redis.set(keys.expected_stop(container_id), repr(time.time()), ex=for_s)

    async def forget_missed_starts(self, infos: Iterable[ContainerInfo]) -> int:
        """Drop the expected stops whose container started again before this watcher subscribed.

        The start event clears a marker. One that came while no leader watched (the old one died,
        the new one had not taken over) was never seen, and its marker would hide the next real
        crash of that container for EXPECTED_STOP_TTL. A start before the subscription was missed
        for sure; a later one is an event this watcher gets, so a death still on its way is never
        mistaken for a crash. Returns how many it dropped.
        """
        since = self.subscribed_at
        running = [i for i in infos if i.running and i.started_at is not None]
        if since is None or not running:
            return 0
        marks = await self.redis.mget([keys.expected_stop(i.id) for i in running])
        stale = []
        for info, mark in zip(running, marks, strict=True):
            with contextlib.suppress(ValueError):  # an unreadable mark expires with its TTL
                if mark is not None and float(mark) < (info.started_at or 0) < since:
                    stale.append(keys.expected_stop(info.id))
        if stale:
            await self.redis.delete(*stale)
            log.info("forgot %d expected stop(s) whose start was not watched", len(stale))
        return len(stale)

    async def expected(self, container_id: str) -> bool:
        """Whether an operation announced it stops (or restarts) this container on purpose."""
        return await self._was_expected(container_id)

    async def reset_streak(self, owner: int, name: str) -> None:
        await self.redis.delete(keys.crash_streak(owner, name))

    async def run(self, stopping: asyncio.Event) -> None:
        delay = 0.5
        engine_was_down = False
        while not stopping.is_set():
            # After an engine outage there is nothing to alert: a dockerd restart stops every bot
            # and starts the failed ones again; reconcile sees to them.
            unwatched_since = None if engine_was_down else await self._watched_until()
            # Every event from here on reaches this loop: the stream opens a moment later (in a
            # thread), and the engine replays what came in between (Backend.events(since)). The
            # gap before it is read meanwhile, from the containers' state, and no live event is
            # handled before that read is done: a live start clears the mark that tells a
            # restart's stop in the gap from a crash.
            self.subscribed_at = time.time()
            reading = asyncio.create_task(self.unwatched(unwatched_since, self.subscribed_at))
            beside = [
                reading,
                asyncio.create_task(self.catch_up(reading), name="events-catch-up"),
                asyncio.create_task(self._mark_watched(), name="events-watched"),
            ]
            try:
                async for ev in self.backend.events(since=self.subscribed_at):
                    delay = 0.5
                    await reading  # at once, but for the first event or so
                    try:
                        await self.handle(ev)
                    except DockerUnavailable:
                        raise
                    except Exception:
                        log.exception("handling docker event %s failed", ev)
            except DockerUnavailable as e:
                engine_was_down = True
                log.warning("docker events unavailable (%s); retrying in %.1f s", e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            finally:
                await cancel_and_wait(beside)

    async def unwatched(self, since: float | None, until: float) -> Gap:
        """What happened while no watcher was subscribed (the leader changed, or the engine's
        event stream was down), from the containers' own state: the deaths in between, each with
        whether an operation had announced it, and the containers as they are now. `since` None:
        nobody watched before, no death to catch up.

        Not caught up: a gap over CATCH_UP_MAX_S, a gap from an engine outage (run() passes None),
        and bots stopped from outside (143/137, no OOM, not restarted). Those are a host restart or
        dockerd's: reconcile brings the bots back, and a crash alert for each would be noise."""
        try:
            managed = await self.backend.managed()
            deaths = []
            if since is not None and until - since <= CATCH_UP_MAX_S:
                for owner, name, info in managed:
                    died = info.finished_at is not None and since < info.finished_at < until
                    if died and not info.stopped_from_outside:
                        deaths.append(
                            DockerEvent("die", owner, name, info.id, info.exit_code, info.finished_at)
                        )
            marks = (
                await self.redis.mget([keys.expected_stop(ev.container_id) for ev in deaths])
                if deaths
                else []
            )
            # The engine stamps a die event after its cleanup, so a death just before `until`
            # may come replayed too: handled here, not again there.
            self._caught_up = {ev.container_id: ev.at for ev in deaths if ev.at is not None}
            return Gap(
                deaths=[(ev, mark is not None) for ev, mark in zip(deaths, marks, strict=True)],
                containers=[info for _owner, _name, info in managed],
            )
        except (DockerUnavailable, RedisError) as e:
            log.warning("catching up on unwatched events skipped: %s", e)
        except Exception:  # never in the way of the live events, which wait for this read
            log.exception("reading what no watcher saw failed")
        return Gap()

    async def catch_up(self, reading: asyncio.Task[Gap]) -> None:
        """Each death in the gap handled as its die event would have been (one alert per crash
        streak); then the expected stops whose start went unseen are dropped."""
        gap = await reading
        try:
            for ev, expected in gap.deaths:
                log.info("owner=%s bot=%s: a death no watcher saw; handling it now", ev.owner, ev.name)
                await self._died(ev, expected=expected)
            await self.forget_missed_starts(gap.containers)
        except (DockerUnavailable, RedisError) as e:
            log.warning("catching up on unwatched events skipped: %s", e)

    async def _watched_until(self) -> float | None:
        try:
            mark = await self.redis.get(keys.EVENTS_WATCHED)
            return float(mark) if mark is not None else None
        except (RedisError, ValueError) as e:
            log.warning("when events were last watched is unknown: %s", e)
            return None

    async def _mark_watched(self) -> None:
        """While subscribed: how far the engine's events have been watched, for the next watcher."""
        while True:
            with contextlib.suppress(RedisError):
                await self.redis.set(keys.EVENTS_WATCHED, repr(time.time()), ex=keys.EVENTS_WATCHED_TTL)
            await asyncio.sleep(keys.EVENTS_WATCHED_EVERY)

    async def _was_expected(self, container_id: str) -> bool:
        return bool(await self.redis.exists(keys.expected_stop(container_id)))

    async def handle(self, ev: DockerEvent) -> None:
        if ev.action == "oom":
            self._oom[ev.container_id] = time.monotonic()
        elif ev.action == "die":
            await self._died(ev)
        elif ev.action == "start":
            await self._started(ev)
            info = await self.backend.inspect(ev.owner, ev.name)
            if info is None or info.id != ev.container_id:
                return
            if info.restart_count > 0:
                await self.bus.publish(
                    Event(
                        type=EventType.RESTARTED,
                        owner=ev.owner,
                        name=ev.name,
                        restart_count=info.restart_count,
                    )
                )
            else:
                await self.bus.publish(Event(type=EventType.STARTED, owner=ev.owner, name=ev.name))

    async def _started(self, ev: DockerEvent) -> None:
        key = keys.expected_stop(ev.container_id)
        mark = await self.redis.get(key)
        # A start from before the mark (handled late: start, then at once a restart) is not the
        # start that ends the stop it announces; clearing on it would make that stop a crash.
        with contextlib.suppress(ValueError):
            if mark is not None and ev.at is not None and ev.at < float(mark):
                return
        await self.redis.delete(key)

    async def _died(self, ev: DockerEvent, *, expected: bool | None = None) -> None:
        """`expected`: whether an operation announced this stop, known from earlier (catch-up
        reads the marks before live events may clear them); None: a live event, ask Redis now."""
        rec = await self.store.get(ev.owner, ev.name)
        if rec is None:
            return  # deleted
        info = await self.backend.inspect(ev.owner, ev.name)
        if info is None or info.id != ev.container_id:
            return  # replaced by an update or removed: the old one's death is no news
        if expected is None and self._caught_up.get(ev.container_id, -1.0) == info.finished_at:
            return  # a live (replayed) event of a death catch-up handled
        exit_code = ev.exit_code if ev.exit_code is not None else info.exit_code
        oom = info.oom_killed or self._oom.pop(ev.container_id, None) is not None
        if expected is None:
            expected = await self._was_expected(ev.container_id)
        if expected or rec.desired is Desired.STOPPED or (exit_code == 0 and not oom):
            if rec.desired is Desired.STOPPED or exit_code == 0:
                await self.bus.publish(
                    Event(type=EventType.STOPPED, owner=ev.owner, name=ev.name, exit_code=exit_code)
                )
            return
        if any(ev.container_id.startswith(cid) or cid.startswith(ev.container_id) for cid in self.gated):
            self.gated_exits[ev.container_id] = exit_code  # a restarting container shows none
            return  # a crash inside a health gate: the gate's verdict is its one message
        now = time.time()
        ran = (info.finished_at or now) - (info.started_at or now)
        key = keys.crash_streak(ev.owner, ev.name)
        if ran >= STABLE_RUN_S:
            await self.redis.delete(key)
        streak = int(await self.redis.hincrby(key, "streak", 1))
        await self.redis.expire(key, keys.CRASH_STREAK_TTL)
        # Deaths handled late all see the final state; only the first of them reports the loop
        # (HSETNX: even two watchers at once could not both report it).
        gave_up = not info.running and not info.restarting and info.restart_count >= self.restart_max
        crash_loop = gave_up and streak > 1 and bool(await self.redis.hsetnx(key, "loop_reported", "1"))
        tail = self.secrets.masker(rec.env)(await self.backend.logs(ev.owner, ev.name, 25, None))
        await self.bus.publish(
            Event(
                type=EventType.CRASHED,
                owner=ev.owner,
                name=ev.name,
                exit_code=exit_code,
                oom_killed=oom,
                restart_count=info.restart_count,
                memory_limit_bytes=self.memory_limit,
                alert=streak == 1,
                crash_loop=crash_loop,
                log_tail=tail[-3000:],
            )
        )
