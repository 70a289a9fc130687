"""Calls to the runner on behalf of a chat user, with ownership enforced before anything is sent."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from controlbot.parsing import Target
from protocol.client import DEFAULT_TIMEOUT_S, ProgressCallback, RunnerClient
from protocol.errors import BotrunnerError, NotFound, RunnerUnavailable
from protocol.models import BotStatus, Command, Op, Result

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Caller:
    """Who is talking to the control bot, as the access middleware established it."""

    id: int
    is_admin: bool
    locale: str = "en"

    def may_touch(self, owner: int) -> bool:
        return owner == self.id or self.is_admin


def press_target(caller: Caller, owner: int, name: str) -> Target:
    """Re-check an inline button's data against whoever pressed it: a forged press is 'not found'."""
    if not caller.may_touch(owner):
        log.warning("user=%s pressed a button for owner=%s bot=%s: refused", caller.id, owner, name)
        raise NotFound(name)
    return Target(owner=owner, name=name)


async def ensure_runner(runner: RunnerClient) -> None:
    """Fail at once, before any slow work, when the runner's heartbeat is stale."""
    try:
        healthy = await runner.health() is not None
    except (RedisConnectionError, RedisTimeoutError, OSError) as e:
        raise RunnerUnavailable() from e
    if not healthy:
        raise RunnerUnavailable()


async def call(
    runner: RunnerClient,
    caller: Caller,
    op: Op,
    target: Target | None = None,
    *,
    payload: bytes | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    on_progress: ProgressCallback | None = None,
    **fields: Any,
) -> Result:
    """Send one command as `caller` and return its successful Result, or raise its error."""
    owner = target.owner if target else fields.pop("owner", caller.id)
    if not caller.may_touch(owner):
        raise NotFound(target.name if target else "?")
    cmd = Command(
        op=op,
        owner=owner,
        actor=caller.id,
        admin=caller.is_admin,
        name=target.name if target else None,
        **fields,
    )
    log.info("user=%s %s owner=%s bot=%s request=%s", caller.id, op.value, owner, cmd.name, cmd.request_id)
    try:
        result = await runner.call(cmd, payload, timeout=timeout, on_progress=on_progress)
        return result.raise_for_error()
    except (RedisConnectionError, RedisTimeoutError) as e:
        raise RunnerUnavailable() from e
    except BotrunnerError as e:
        if e.bot is None and target is not None:
            e.bot = target.ref(caller.id)
        raise


async def status(runner: RunnerClient, caller: Caller, target: Target) -> BotStatus:
    result = await call(runner, caller, Op.STATUS, target)
    if result.bot is None:
        raise NotFound(target.ref(caller.id))
    return result.bot


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def bots_sharing_values(
    runner: RunnerClient, caller: Caller, owner: int, values: dict[str, str], exclude: str | None
) -> dict[str, list[str]]:
    """For each env key whose value another of the owner's bots already uses: those bots' names."""
    if not values:
        return {}
    result = await call(runner, caller, Op.LIST, owner=owner)
    hashes = {key: sha256_hex(value) for key, value in values.items() if value}
    shared: dict[str, list[str]] = {}
    for bot in result.bots or []:
        if bot.name == exclude or bot.owner != owner:
            continue
        used = set(bot.env_sha256.values())
        for key, digest in hashes.items():
            if digest in used:
                shared.setdefault(key, []).append(bot.name)
    return shared
