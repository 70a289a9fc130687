"""The health gate: after a deploy, update or rollback, watch the new container for a grace period.

The watch is a background task, so it holds no command slot; the reply went out when the container
ran. The gate is recorded in Redis with its deadline, so a restarted runner resumes it. If the
container exits inside the window:
- an update goes back to the previous release (one that did not fail) by itself;
- a first deploy, a rollback, or an update with nothing to go back to is left stopped (no loop);
- an exit with code 0 is reported, not rolled back;
- a stop from outside (SIGTERM or SIGKILL, no OOM: `docker stop`, a dockerd restart, a reboot) ends
  the gate with no verdict, and the reconcile starts the bot again.
The verdict is one GATE event on the events stream (the chat edits its deploy message with it) and a
short-lived key by request id (the API's `?wait=health`). Inside a gate the watcher publishes no
crash alert for the container: the verdict is the one message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel
from redis.asyncio import Redis

from protocol import keys
from protocol.errors import BotrunnerError
from protocol.models import Desired, Event, EventType, GateVerdict
from runner.backend import Backend, ContainerInfo
from runner.events import EventBus, EventWatcher
from runner.releases import Release, ReleaseStore
from runner.state import BotRecord, StateStore

log = logging.getLogger(__name__)

POLL_S = 0.2
TAIL_LINES = 25
# How long a gated container's death stays out of crash alerts after the verdict (late events).
QUIET_AFTER_S = 30.0

# Restores release `number` of the bot under request id; provided by the operations.
RestoreFn = Callable[[BotRecord, Release, str], Awaitable[None]]


class GateKind(StrEnum):
    FIRST = "first"  # a new bot: nothing to go back to
    UPDATE = "update"  # new code: back to `fallback` on a crash
    ROLLBACK = "rollback"  # never rolled back again


class Gate(BaseModel):
    owner: int
    name: str
    request_id: str
    container_id: str
    kind: GateKind
    release: int
    fallback: int | None = None
    deadline: float  # epoch seconds


@dataclass(eq=False, kw_only=True)
class HealthGate:
    grace: float
    redis: Redis
    backend: Backend
    store: StateStore
    releases: ReleaseStore
    watcher: EventWatcher
    bus: EventBus
    bot_lock: Callable[[int, str], AbstractAsyncContextManager[None]]
    restore: RestoreFn
    stop_timeout: float
    _tasks: set[asyncio.Task[None]] = field(init=False, default_factory=set)

    async def begin(self, rec: BotRecord, kind: GateKind, release: int, fallback: int | None) -> bool:
        """Open a gate on the bot's new container; False when there is none (grace 0, not running)."""
        if self.grace <= 0 or rec.container_id is None:
            return False
        gate = Gate(
            owner=rec.owner,
            name=rec.name,
            request_id=rec.request_id,
            container_id=rec.container_id,
            kind=kind,
            release=release,
            fallback=fallback if kind is GateKind.UPDATE else None,
            deadline=time.time() + self.grace,
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(
                keys.gate(rec.owner, rec.name),
                gate.model_dump_json(),
                ex=int(self.grace) + keys.GATE_TTL_MARGIN,
            )
            pipe.sadd(keys.GATES, f"{rec.owner}:{rec.name}")
            await pipe.execute()
        self._spawn(gate)
        return True

    async def open(self, owner: int, name: str) -> bool:
        return bool(await self.redis.exists(keys.gate(owner, name)))

    async def resume(self) -> None:
        """After a restart: watch the gates a previous runner left open, to their recorded deadline."""
        for member in await self.redis.smembers(keys.GATES):
            owner, _, name = (member.decode() if isinstance(member, bytes) else member).partition(":")
            raw = await self.redis.get(keys.gate(int(owner), name))
            if raw is None:
                await self.redis.srem(keys.GATES, member)
                continue
            gate = Gate.model_validate_json(raw)
            log.info("resuming the health gate of owner=%s bot=%s request=%s", owner, name, gate.request_id)
            self._spawn(gate)

    def _spawn(self, gate: Gate) -> None:
        self.watcher.gated.add(gate.container_id)
        task = asyncio.create_task(self._watch(gate), name=f"gate-{gate.owner}-{gate.name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _current(self, gate: Gate) -> bool:
        raw = await self.redis.get(keys.gate(gate.owner, gate.name))
        return raw is not None and Gate.model_validate_json(raw).request_id == gate.request_id

    async def _watch(self, gate: Gate) -> None:
        healthy = False
        try:
            while True:
                if not await self._current(gate):
                    return  # superseded by a newer deploy, whose gate takes over
                info = await self.backend.inspect(gate.owner, gate.name)
                if info is None or info.id != gate.container_id:
                    await self._close(gate)
                    return  # replaced or removed by a command: not this gate's news
                if await self.watcher.expected(info.id):
                    await self._close(gate)
                    return  # stopped or restarted on purpose (a command): nothing to judge
                if info.stopped_from_outside:
                    await self._close(gate)
                    return  # docker stop, a dockerd or host restart: reconcile brings it back
                if not info.running or info.restarting or info.restart_count > 0:
                    await self._crashed(gate, info)
                    return
                if time.time() >= gate.deadline:
                    healthy = True
                    await self._finish(
                        gate,
                        Event(
                            type=EventType.GATE, owner=gate.owner, name=gate.name, verdict=GateVerdict.HEALTHY
                        ),
                    )
                    return
                await asyncio.sleep(POLL_S)
        except asyncio.CancelledError:
            raise  # the runner stops: the gate stays recorded and the next runner resumes it
        except Exception:
            log.exception("health gate of owner=%s bot=%s failed", gate.owner, gate.name)
            await self._close(gate)
        finally:
            if healthy:  # it passed: from now on its crashes alert as any bot's do
                self.watcher.gated.discard(gate.container_id)
                self.watcher.gated_exits.pop(gate.container_id, None)
            else:
                self._quiet(gate.container_id)

    async def _crashed(self, gate: Gate, info: ContainerInfo) -> None:
        async with self.bot_lock(gate.owner, gate.name):
            rec = await self.store.get(gate.owner, gate.name)
            if rec is None or rec.request_id != gate.request_id or not await self._current(gate):
                return  # a command got there first
            if rec.desired is Desired.STOPPED or await self.watcher.expected(gate.container_id):
                await self._close(gate)
                return  # its owner stopped it: no crash to judge
            exit_code = (
                info.exit_code if info.exit_code is not None else await self._exit_code(gate.container_id)
            )
            # Kept in Redis and sent to the owner: the bot's own values are masked first.
            tail = self.watcher.secrets.masker(rec.env)(
                await self.backend.logs(
                    gate.owner, gate.name, self.releases.keep_log_lines or TAIL_LINES, None
                )
            )
            releases, _current = await self.releases.load(gate.owner, gate.name)
            by_number = {r.number: r for r in releases}
            failed = by_number.get(gate.release)
            if failed is not None:
                failed.failed = True
                await self.releases.update(gate.owner, gate.name, failed)
                await self.releases.keep_logs(gate.owner, gate.name, failed, tail)
            event = Event(
                type=EventType.GATE,
                owner=gate.owner,
                name=gate.name,
                exit_code=exit_code,
                oom_killed=info.oom_killed,
                memory_limit_bytes=self.watcher.memory_limit,
                log_tail="\n".join(tail.splitlines()[-TAIL_LINES:])[-3000:],
            )
            clean_exit = (
                exit_code == 0 and not info.restarting and info.restart_count == 0 and not info.oom_killed
            )
            fallback = by_number.get(gate.fallback) if gate.fallback is not None else None
            if clean_exit:
                event.verdict = GateVerdict.EXITED
            elif fallback is not None and not fallback.failed:
                try:
                    await self.restore(rec, fallback, f"{gate.request_id}-gate")
                    await self.releases.set_current(gate.owner, gate.name, fallback.number)
                    event.verdict, event.restored = GateVerdict.ROLLED_BACK, fallback.number
                except BotrunnerError as e:
                    log.error(
                        "restoring release %s of %s/%s failed: %s", fallback.number, gate.owner, gate.name, e
                    )
                    await self._stop(rec)
                    event.verdict = GateVerdict.FAILED
            else:
                await self._stop(rec)
                event.verdict = GateVerdict.FAILED
            await self._finish(gate, event)

    async def _exit_code(self, container_id: str) -> int | None:
        """A restarting container shows no exit code: take it from the die event (it may lag a bit)."""
        for _ in range(10):
            for cid, code in self.watcher.gated_exits.items():
                if cid.startswith(container_id) or container_id.startswith(cid):
                    return code
            await asyncio.sleep(0.2)
        return None

    async def _stop(self, rec: BotRecord) -> None:
        """Leave a bot that crashed in its gate stopped: no restart loop."""
        rec.desired = Desired.STOPPED
        await self.store.save(rec)
        await self.watcher.expect_stop(rec.container_id)
        with contextlib.suppress(BotrunnerError):
            await self.backend.stop(rec.owner, rec.name, self.stop_timeout)

    async def _finish(self, gate: Gate, event: Event) -> None:
        event.release, event.request_id = gate.release, gate.request_id
        await self.redis.set(keys.verdict(gate.request_id), event.model_dump_json(), ex=keys.VERDICT_TTL)
        await self._close(gate)
        await self.bus.publish(event)
        log.info(
            "health gate owner=%s bot=%s release=%s: %s", gate.owner, gate.name, gate.release, event.verdict
        )

    async def _close(self, gate: Gate) -> None:
        """Forget the gate, unless a newer deploy of the bot opened its own meanwhile."""
        key = keys.gate(gate.owner, gate.name)
        if await self._current(gate):
            await self.redis.delete(key)
        if not await self.redis.exists(key):
            await self.redis.srem(keys.GATES, f"{gate.owner}:{gate.name}")

    def _quiet(self, container_id: str) -> None:
        def forget() -> None:
            self.watcher.gated.discard(container_id)
            self.watcher.gated_exits.pop(container_id, None)

        asyncio.get_running_loop().call_later(QUIET_AFTER_S, forget)
