"""The gateway's plumbing: its clients, sealing, the runner's health, and the one way to the runner."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from nacl.public import PublicKey
from redis.exceptions import RedisError

from controlbot import metrics
from controlbot.audit import AuditEntry, AuditLog, env_detail
from controlbot.gateway.types import Caller, Target
from controlbot.ratelimit import RateLimiter
from controlbot.telegram_check import NO_TOKENS, TokenCheck, TokenChecker
from protocol import keys
from protocol.client import DEFAULT_TIMEOUT_S, ProgressCallback, RunnerClient
from protocol.errors import (
    BotrunnerError,
    ErrorCode,
    NotFound,
    RunnerUnavailable,
    StoreUnavailable,
)
from protocol.models import (
    BotStatus,
    Command,
    Event,
    Op,
    Result,
    RunnerHealth,
    SourceSpec,
)
from protocol.sealing import PublicKeyCache, has_userinfo, seal_env, seal_git_url

log = logging.getLogger(__name__)


# How long a deploy may wait in the queue before the runner drops it unread (within the
# requester's own BUILD_TIMEOUT_S wait, so the requester hears EXPIRED rather than a timeout).
DEPLOY_QUEUE_WAIT_S = 600.0
# Operations that change nothing: every other op is audited, so a new one is audited for free.
READS = frozenset({Op.STATUS, Op.LOGS, Op.LIST, Op.SYSTEM, Op.STATS, Op.QUOTA, Op.RELEASES})
VERDICT_POLL_S = 0.25


@dataclass(eq=False)
class GatewayBase:
    """The gateway's plumbing: its clients, sealing, the runner's health, and the one `call`."""

    runner: RunnerClient
    _: KW_ONLY
    bot_token: str = field(repr=False)
    max_upload_bytes: int
    telegram: TokenChecker | None = None
    max_backup_bytes: int = 200 << 20
    limiter: RateLimiter | None = None
    audit: AuditLog | None = None
    # The runner's published key: env values and git credentials are sealed with it (#10).
    public_keys: PublicKeyCache = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.public_keys = PublicKeyCache(self.runner.redis)

    async def check_tokens(self, env: dict[str, str] | None) -> TokenCheck:
        """Ask Telegram about the bot tokens in env (TOKEN_INVALID when it rejects one)."""
        return await self.telegram.check(env) if self.telegram is not None else NO_TOKENS

    # -- checks every front end needs -----------------------------------------------------------
    async def public_key(self) -> PublicKey:
        """The key to seal with; RUNNER_UNAVAILABLE until a runner has published one."""
        try:
            key = await self.public_keys.get()
        except (RedisError, OSError) as e:
            raise StoreUnavailable() from e
        if key is None:
            raise RunnerUnavailable()
        return key

    async def seal_env(self, env: dict[str, str] | None) -> dict[str, str] | None:
        """Checked values, sealed: nothing but the runner can read them once they leave here."""
        return seal_env(env, await self.public_key()) if env else env

    async def seal_source(self, spec: SourceSpec | None) -> SourceSpec | None:
        """A git URL that carries credentials is sealed like an env value."""
        if spec is None or not has_userinfo(spec.git_url):
            return spec
        return spec.model_copy(update={"git_url": seal_git_url(spec.git_url, await self.public_key())})

    async def health(self) -> RunnerHealth | None:
        return await self.runner.health()

    async def ensure_runner(self) -> None:
        """Fail at once, before any slow work, when the runner's heartbeat is stale."""
        try:
            healthy = await self.runner.health() is not None
        except (RedisError, OSError) as e:
            raise StoreUnavailable() from e
        if not healthy:
            raise RunnerUnavailable()

    # -- the one way to the runner ------------------------------------------------------------
    async def call(
        self,
        caller: Caller,
        op: Op,
        target: Target | None = None,
        *,
        payload: bytes | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        on_progress: ProgressCallback | None = None,
        **fields: Any,
    ) -> Result:
        """Send one command as caller; its successful Result, or its error raised."""
        owner = target.owner if target else fields.pop("owner", caller.id)
        if not caller.may_touch(owner):
            raise NotFound(target.name if target else "?")
        if self.limiter is not None:  # chat and API draw from one allowance per user
            try:
                await self.limiter.hit(caller.id, op)
            except RedisError as e:
                raise StoreUnavailable() from e
        cmd = Command(
            op=op,
            owner=owner,
            actor=caller.id,
            admin=caller.admin,
            name=target.name if target else None,
            **fields,
        )
        log.info(
            "user=%s via=%s %s owner=%s bot=%s request=%s",
            caller.id,
            caller.channel.value,
            op.value,
            owner,
            cmd.name,
            cmd.request_id,
        )
        started, outcome = time.perf_counter(), "ok"
        try:
            result = await self.runner.call(cmd, payload, timeout=timeout, on_progress=on_progress)
            return result.raise_for_error()
        except RedisError as e:
            outcome = ErrorCode.STORE_UNAVAILABLE.value
            raise StoreUnavailable() from e
        except BotrunnerError as e:
            outcome = e.code.value
            if e.bot is None and target is not None:
                e.bot = target.ref(caller.id)
            raise
        finally:
            metrics.COMMANDS.labels(op.value, outcome).inc()
            metrics.COMMAND_DURATION.labels(op.value).observe(time.perf_counter() - started)
            if op not in READS and self.audit is not None:
                await self.audit.write(_entry(caller, cmd, outcome))

    # -- operations ---------------------------------------------------------------------------


def _entry(caller: Caller, cmd: Command, outcome: str) -> AuditEntry:
    detail = env_detail(cmd.env, cmd.unset)
    owner = cmd.owner
    if cmd.op is Op.SET_QUOTA:
        owner = cmd.target_owner if cmd.target_owner is not None else cmd.owner
        detail = f"limit={'default' if cmd.quota is None else cmd.quota}"
    elif cmd.source is not None:
        detail = "; ".join(p for p in (cmd.source.kind.value, detail) if p)
    return AuditEntry(
        actor=caller.id,
        action=cmd.op.value,
        channel=caller.channel.value,
        result=outcome,
        owner=owner,
        bot=cmd.name,
        detail=detail,
    )


async def wait_verdict(runner: RunnerClient, request_id: str, timeout: float) -> Event | None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            raw = await runner.redis.get(keys.verdict(request_id))
        except RedisError as e:
            raise StoreUnavailable() from e
        if raw is not None:
            return Event.model_validate_json(raw)
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(VERDICT_POLL_S)


def _admin_only(caller: Caller) -> None:
    if not caller.admin:
        raise BotrunnerError("only admins may do that", code=ErrorCode.FORBIDDEN)


def _bot(result: Result, caller: Caller, target: Target) -> BotStatus:
    if result.bot is None:
        raise BotrunnerError(
            "the runner answered without the bot's status", code=ErrorCode.INTERNAL, bot=target.ref(caller.id)
        )
    return result.bot
