"""An in-memory stand-in for RunnerClient, for the API's unit tests only (e2e tests use the real runner).

It answers like the runner: the same error classes and codes (protocol.errors), env merged on update,
typed errors as failed Results, progress before a deploy's result.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from protocol import keys
from protocol.client import DEFAULT_TIMEOUT_S, ProgressCallback
from protocol.errors import (
    AlreadyExists,
    BotrunnerError,
    ErrorCode,
    InvalidSource,
    NotFound,
    QuotaExceeded,
    RunnerUnavailable,
)
from protocol.models import (
    BotState,
    BotStatus,
    Command,
    Desired,
    ErrorInfo,
    Limits,
    Op,
    Progress,
    QuotaInfo,
    Result,
    RunnerHealth,
    SourceInfo,
    SourceKind,
    Stage,
)
from protocol.rules import check_env, validate_name
from protocol.sealing import encode_public_key
from runner.secrets import Secrets

LIMITS = Limits(memory_bytes=256 * 1024 * 1024, cpu=0.5, pids=128)


@dataclass
class FakeBot:
    owner: int
    name: str
    source: SourceInfo
    env: dict[str, str] = field(default_factory=dict)
    running: bool = True
    restarts: int = 0
    logs: list[str] = field(default_factory=list)

    def status(self) -> BotStatus:
        now = time.time()
        return BotStatus(
            owner=self.owner,
            name=self.name,
            state=BotState.RUNNING if self.running else BotState.STOPPED,
            desired=Desired.RUNNING if self.running else Desired.STOPPED,
            uptime_seconds=12.0 if self.running else None,
            restart_count=self.restarts,
            limits=LIMITS,
            source=self.source,
            env_masked={k: "••••••" for k in sorted(self.env)},
            container_id="c0ffee" * 10 + "beef" if self.running else None,
            created_at=now,
            updated_at=now,
        )


class PublishedKey:
    """The one Redis key the gateway reads through RunnerClient.redis: the runner's public key."""

    def __init__(self, secrets: Secrets) -> None:
        self.secrets = secrets

    async def get(self, key: str) -> bytes | None:
        assert key == keys.RUNNER_PUBKEY, key
        return encode_public_key(self.secrets.public_key).encode()


class FakeRunner:
    """Implements the part of RunnerClient the API uses: health, submit, wait, call.

    Like the runner, it holds the key pair: `sealed` keeps commands as they arrived (env values
    sealed), `commands` as the runner reads them once opened."""

    def __init__(self, quota: int = 3) -> None:
        self.secrets = Secrets.ephemeral()
        self.redis = PublishedKey(self.secrets)
        self.sealed: list[Command] = []
        self.up = True
        self.quota = quota
        self.bots: dict[tuple[int, str], FakeBot] = {}
        self.commands: list[Command] = []
        self.payloads: dict[str, bytes | None] = {}
        self.fail_next: BotrunnerError | None = None
        self._pending: dict[str, Command] = {}

    async def health(self) -> RunnerHealth | None:
        return RunnerHealth(runner_id="fake", ts=time.time(), docker_ok=True) if self.up else None

    async def submit(self, cmd: Command, payload: bytes | None = None) -> None:
        if not self.up:
            raise RunnerUnavailable()
        self.sealed.append(cmd)
        opened = {"env": self.secrets.open_env(cmd.env) if cmd.env is not None else None}
        if cmd.source is not None and cmd.source.git_url is not None:
            source = cmd.source.model_copy(update={"git_url": self.secrets.open_url(cmd.source.git_url)})
            opened["source"] = source  # type: ignore[assignment]
        cmd = cmd.model_copy(update=opened)
        self.commands.append(cmd)
        self.payloads[cmd.request_id] = payload
        self._pending[cmd.request_id] = cmd

    async def wait(
        self,
        request_id: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        on_progress: ProgressCallback | None = None,
    ) -> Result:
        cmd = self._pending.pop(request_id)
        if cmd.op in (Op.START, Op.UPDATE) and on_progress is not None:
            stages = [Stage.STOPPING, Stage.STARTING] if cmd.op is Op.UPDATE else [Stage.STARTING]
            for stage in stages:
                await on_progress(Progress(request_id=request_id, stage=stage))
        try:
            if self.fail_next is not None:
                exc, self.fail_next = self.fail_next, None
                raise exc
            return self._apply(cmd, self.payloads.get(request_id))
        except BotrunnerError as e:
            return Result(request_id=request_id, ok=False, error=ErrorInfo.from_exc(e))

    async def call(
        self,
        cmd: Command,
        payload: bytes | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        on_progress: ProgressCallback | None = None,
    ) -> Result:
        await self.submit(cmd, payload)
        return await self.wait(cmd.request_id, timeout=timeout, on_progress=on_progress)

    # --- the operations ---------------------------------------------------------------------

    def _bot(self, cmd: Command) -> FakeBot:
        assert cmd.name is not None
        bot = self.bots.get((cmd.owner, cmd.name))
        if bot is None:
            raise NotFound(cmd.name)
        return bot

    def _used(self, owner: int) -> int:
        return sum(1 for o, _ in self.bots if o == owner)

    def _apply(self, cmd: Command, payload: bytes | None) -> Result:
        rid = cmd.request_id
        if cmd.op is Op.QUOTA:
            return Result(request_id=rid, quota=QuotaInfo(used=self._used(cmd.owner), limit=self.quota))
        if cmd.op is Op.LIST:
            bots = [b.status() for b in self.bots.values() if cmd.all_owners or b.owner == cmd.owner]
            return Result(
                request_id=rid, bots=bots, quota=QuotaInfo(used=self._used(cmd.owner), limit=self.quota)
            )
        if cmd.op is Op.START and cmd.source is not None:
            return Result(request_id=rid, bot=self._create(cmd, payload).status())
        validate_name(cmd.name)
        bot = self._bot(cmd)
        if cmd.op is Op.START or cmd.op is Op.RESTART:
            bot.running = True
            bot.restarts += cmd.op is Op.RESTART
        elif cmd.op is Op.STOP:
            bot.running = False
        elif cmd.op is Op.UPDATE:
            self._update(bot, cmd, payload)
        elif cmd.op is Op.SET_ENV:
            env = {**bot.env, **(cmd.env or {})}
            for key in cmd.unset:
                env.pop(key, None)
            bot.env = check_env(env)
        elif cmd.op is Op.DELETE:
            del self.bots[(bot.owner, bot.name)]
            return Result(request_id=rid, quota=QuotaInfo(used=self._used(cmd.owner), limit=self.quota))
        elif cmd.op is Op.LOGS:
            return Result(request_id=rid, logs="".join(line + "\n" for line in bot.logs[-cmd.tail :]))
        return Result(request_id=rid, bot=bot.status())

    def _create(self, cmd: Command, payload: bytes | None) -> FakeBot:
        assert cmd.source is not None
        name = validate_name(cmd.name)
        env = check_env(cmd.env or {})
        if (cmd.owner, name) in self.bots:
            raise AlreadyExists(name)
        if self._used(cmd.owner) >= self.quota:
            raise QuotaExceeded(self.quota, self._used(cmd.owner))
        if cmd.source.kind is SourceKind.GIT and cmd.source.git_url and "broken" in cmd.source.git_url:
            raise BotrunnerError(
                "pip install failed", code=ErrorCode.BUILD_FAILED, detail="ERROR: No matching dist"
            )
        info = SourceInfo(
            kind=cmd.source.kind,
            filename=cmd.source.filename,
            sha256=hashlib.sha256(payload).hexdigest() if payload else None,
            git_url=cmd.source.git_url,
            branch=cmd.source.branch,
            commit="abc1234" if cmd.source.kind is SourceKind.GIT else None,
        )
        bot = FakeBot(owner=cmd.owner, name=name, source=info, env=env)
        bot.logs.append(f"started {name}")
        self.bots[(cmd.owner, name)] = bot
        return bot

    def _update(self, bot: FakeBot, cmd: Command, payload: bytes | None) -> None:
        if cmd.pull and bot.source.kind is not SourceKind.GIT:
            # As the runner's resolve_spec: only a bot deployed from git can pull.
            raise InvalidSource(
                "only a bot deployed from git can pull; send its new code instead", field="source"
            )
        if payload is not None:
            bot.source = bot.source.model_copy(update={"sha256": hashlib.sha256(payload).hexdigest()})
        if cmd.env is not None:
            bot.env = check_env({**bot.env, **cmd.env})  # merged, as the runner does
        bot.running = True
