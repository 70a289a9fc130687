"""The one gateway from every front end (chat, HTTP API, Mini App) to the runner.

Each operation is written once here: who may touch which bot, the checks every front end needs
(the control bot's own token, env and upload limits), the command, and its failure raised as a
`BotrunnerError` with a code and typed params. Front ends parse their input and render the outcome;
nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from nacl.public import PublicKey
from redis.exceptions import RedisError

from controlbot import metrics
from controlbot.audit import AuditEntry, AuditLog, AuditQuery, env_detail
from controlbot.ratelimit import RateLimiter
from controlbot.telegram_check import NO_TOKENS, TokenCheck, TokenChecker
from protocol import archive, keys, rules
from protocol.client import BUILD_TIMEOUT_S, DEFAULT_TIMEOUT_S, ProgressCallback, RunnerClient
from protocol.errors import (
    BotrunnerError,
    ErrorCode,
    ErrorParams,
    InvalidEnv,
    InvalidSource,
    NotFound,
    RunnerUnavailable,
    StoreUnavailable,
)
from protocol.models import (
    ArchiveInfo,
    BackupMode,
    BotStats,
    BotStatus,
    Command,
    Event,
    Op,
    QuotaInfo,
    Result,
    RunnerHealth,
    SourceKind,
    SourceSpec,
    SystemInfo,
)
from protocol.sealing import PublicKeyCache, has_userinfo, seal_env, seal_git_url

log = logging.getLogger(__name__)

# How long a deploy may wait in the queue before the runner drops it unread (within the
# requester's own BUILD_TIMEOUT_S wait, so the requester hears EXPIRED rather than a timeout).
DEPLOY_QUEUE_WAIT_S = 600.0
_CODING_RE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.MULTILINE)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or an empty archive
# Operations that change nothing: every other op is audited, so a new one is audited for free.
READS = frozenset({Op.STATUS, Op.LOGS, Op.LIST, Op.SYSTEM, Op.STATS, Op.QUOTA, Op.RELEASES})
VERDICT_POLL_S = 0.25


class Channel(StrEnum):
    """Which front end a caller came through (audit entries record it)."""

    CHAT = "chat"
    API = "api"
    CLI = "cli"
    WEBAPP = "webapp"


@dataclass(frozen=True)
class Caller:
    """Who asks: a Telegram user, as the chat's access middleware or the API's auth established it."""

    id: int
    admin: bool
    locale: str = "en"
    channel: Channel = Channel.CHAT

    def may_touch(self, owner: int) -> bool:
        return owner == self.id or self.admin


@dataclass(frozen=True)
class Target:
    """A bot as addressed by a user: its owner and name."""

    owner: int
    name: str

    def ref(self, viewer: int) -> str:
        return self.name if self.owner == viewer else f"{self.owner}/{self.name}"


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes

    @property
    def kind(self) -> SourceKind:
        return source_kind(self.filename)


@dataclass(frozen=True)
class DeployRequest:
    """A start or an update, whichever front end asked: the bot, its code, and env values to set.

    The code is an uploaded file (`upload`, with `source.entrypoint` for a .zip), a git source
    (`source`), or, for an update of a git bot, a pull of its branch (`pull`).
    """

    op: Op
    target: Target
    env: dict[str, str] | None = None
    upload: Upload | None = None
    source: SourceSpec | None = None
    pull: bool = False
    tokens: TokenCheck | None = None  # what Telegram said of its tokens, when asked already

    def spec(self) -> SourceSpec | None:
        if self.upload is None:
            return self.source
        entrypoint = self.source.entrypoint if self.source is not None else None
        return SourceSpec(kind=self.upload.kind, filename=self.upload.filename, entrypoint=entrypoint)


def source_kind(filename: str | None) -> SourceKind:
    """A .zip is a bot package, treated like a repository; anything else we accept is a .py."""
    return SourceKind.ZIP if (filename or "").lower().endswith(".zip") else SourceKind.FILE


def press_target(caller: Caller, owner: int, name: str) -> Target:
    """Re-check a button's data against whoever pressed it: a forged press is 'not found'."""
    if not caller.may_touch(owner):
        log.warning("user=%s pressed a button for owner=%s bot=%s: refused", caller.id, owner, name)
        raise NotFound(name)
    return Target(owner=owner, name=name)


def _python_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        head = b"\n".join(data.split(b"\n", 2)[:2])
        return _CODING_RE.search(head) is not None  # PEP 263 declares another encoding


class Gateway:
    """Every operation a front end can ask for, on behalf of a caller."""

    def __init__(
        self,
        runner: RunnerClient,
        *,
        bot_token: str,
        max_upload_bytes: int,
        telegram: TokenChecker | None = None,
        max_backup_bytes: int = 200 << 20,
        public_keys: PublicKeyCache | None = None,
        limiter: RateLimiter | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.runner = runner
        self.max_backup_bytes = max_backup_bytes
        self.bot_token = bot_token
        self.max_upload_bytes = max_upload_bytes
        self.telegram = telegram
        # The runner's published key: env values and git credentials are sealed with it (#10).
        self.public_keys = public_keys or PublicKeyCache(runner.redis)
        self.limiter = limiter

        self.audit = audit

    async def check_tokens(self, env: dict[str, str] | None) -> TokenCheck:
        """Ask Telegram about the bot tokens in env (TOKEN_INVALID when it rejects one)."""
        return await self.telegram.check(env) if self.telegram is not None else NO_TOKENS

    # -- checks every front end needs -----------------------------------------------------------
    def check_env(self, env: dict[str, str]) -> dict[str, str]:
        """Values to set: valid names and sizes, and never the control bot's own token."""
        for key, value in env.items():
            if rules.holds_token(value, self.bot_token):
                raise InvalidEnv(
                    f"{key} holds the control bot's own token; create a separate bot with @BotFather "
                    "and use its token",
                    params=ErrorParams(reason="own_token", key=key),
                )
        return rules.check_env(env)

    def check_upload_meta(self, filename: str, size: int | None) -> None:
        """What can be refused before a file is downloaded: its kind and its declared size."""
        if not filename.lower().endswith(rules.SOURCE_SUFFIXES):
            raise InvalidSource(
                "send a single .py file, or a bot package as a .zip",
                params=ErrorParams(reason="kind", path=filename[:200]),
            )
        if size is not None:
            self._check_size(size)

    def _check_size(self, size: int) -> None:
        if size > self.max_upload_bytes:
            raise InvalidSource(
                f"the file is larger than {self.max_upload_bytes / 2**20:g} MB",
                params=ErrorParams(reason="too_large", max_bytes=self.max_upload_bytes, size_bytes=size),
            )

    def check_upload(self, upload: Upload) -> None:
        """An upload's content: within the size limit, a zip archive or Python text."""
        self.check_upload_meta(upload.filename, None)
        self._check_size(len(upload.data))
        if not upload.data:
            raise InvalidSource("the file is empty", params=ErrorParams(reason="empty"))
        if upload.kind is SourceKind.ZIP:
            # What is inside (paths escaping the folder, symlinks, sizes) is the runner's to judge.
            if not upload.data.startswith(_ZIP_MAGIC):
                raise InvalidSource("the file is not a .zip archive", params=ErrorParams(reason="not_zip"))
        elif not _python_text(upload.data):
            raise InvalidSource(
                "this is a binary file, not Python source; send a .py file",
                params=ErrorParams(reason="binary"),
            )

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
    async def precheck(self, req: DeployRequest) -> None:
        """What a deploy can be refused for before any slow work (a download, a clone)."""
        self.check_env(req.env or {})
        await self.ensure_runner()

    async def deploy(
        self, caller: Caller, req: DeployRequest, on_progress: ProgressCallback | None = None
    ) -> Result:
        """Start a new bot or update one; the Result carries its status and the deploy's notes."""
        env = self.check_env(req.env) if req.env else None
        if req.upload is not None:
            self.check_upload(req.upload)
        tokens = req.tokens or await self.check_tokens(env)
        result = await self.call(
            caller,
            req.op,
            req.target,
            payload=req.upload.data if req.upload else None,
            timeout=BUILD_TIMEOUT_S,
            on_progress=on_progress,
            source=await self.seal_source(req.spec()),
            pull=req.pull,
            env=await self.seal_env(env),  # after the checks, which need the plain values
            usernames=tokens.usernames,
            # A deploy is worth running as long as its requester waits for it: in a burst it may
            # queue behind a hundred others for longer than the default 30 s.
            deadline=time.time() + DEPLOY_QUEUE_WAIT_S,
        )
        result.notes.extend(tokens.notes)
        return result

    async def status(self, caller: Caller, target: Target) -> BotStatus:
        return _bot(await self.call(caller, Op.STATUS, target), caller, target)

    async def bots(self, caller: Caller, *, all_owners: bool = False) -> Result:
        """The caller's bots (an admin's `all_owners`: everyone's) and the caller's quota."""
        if all_owners and not caller.admin:
            raise BotrunnerError("only admins may list every user's bots", code=ErrorCode.FORBIDDEN)
        return await self.call(caller, Op.LIST, all_owners=all_owners)

    async def act(self, caller: Caller, op: Op, target: Target) -> BotStatus:
        """Start, stop or restart a bot; its status afterwards."""
        timeout = BUILD_TIMEOUT_S if op is Op.START else DEFAULT_TIMEOUT_S
        return _bot(await self.call(caller, op, target, timeout=timeout), caller, target)

    async def delete(self, caller: Caller, target: Target) -> QuotaInfo | None:
        return (await self.call(caller, Op.DELETE, target)).quota

    async def logs(
        self,
        caller: Caller,
        target: Target,
        *,
        tail: int,
        since: float | None = None,
        release: int | None = None,
    ) -> str:
        """The bot's last lines; of release N (its kept output when it was replaced) with `release`."""
        return (await self.call(caller, Op.LOGS, target, tail=tail, since=since, release=release)).logs or ""

    # -- releases (issue 12) ---------------------------------------------------------------------
    async def releases(self, caller: Caller, target: Target) -> Result:
        """The bot's kept releases, newest first, and its status."""
        return await self.call(caller, Op.RELEASES, target)

    async def rollback(self, caller: Caller, target: Target, release: int | None = None) -> Result:
        """Run release N (default: the previous one) again, as a new release."""
        return await self.call(caller, Op.ROLLBACK, target, release=release, timeout=BUILD_TIMEOUT_S)

    async def health_verdict(self, request_id: str, timeout: float) -> Event | None:
        """The health gate's verdict on what request_id deployed, once it ends (None: not in time)."""
        return await wait_verdict(self.runner, request_id, timeout)

    async def set_env(self, caller: Caller, target: Target, env: dict[str, str], unset: list[str]) -> Result:
        """Merge env changes into a bot's env; the bot restarts to apply them."""
        if not env and not unset:
            raise InvalidEnv(
                "give at least one variable to set, or to unset", params=ErrorParams(reason="empty")
            )
        for key in unset:
            rules.check_env_key(key)
        env = self.check_env(env)
        tokens = await self.check_tokens(env)
        sealed = await self.seal_env(env)  # after the checks, which need the plain values
        result = await self.call(
            caller, Op.SET_ENV, target, env=sealed, unset=unset, usernames=tokens.usernames
        )
        result.notes.extend(tokens.notes)
        return result

    async def backup(self, caller: Caller, target: Target) -> tuple[ArchiveInfo, bytes]:
        """The bot's /data as a .tar.gz, made by the runner and handed over in chunks."""
        result = await self.call(caller, Op.BACKUP, target, timeout=BUILD_TIMEOUT_S)
        if result.archive is None:
            raise BotrunnerError("the runner answered without the archive", code=ErrorCode.INTERNAL)
        data = await archive.take(self.runner.redis, keys.archive(result.request_id), self.max_backup_bytes)
        return result.archive, data

    async def backup_schedule(self, caller: Caller, target: Target, mode: BackupMode) -> Result:
        """Daily backups on or off (the result carries the bot), or the kept ones listed (`backups`)."""
        return await self.call(caller, Op.BACKUP, target, backup=mode, timeout=BUILD_TIMEOUT_S)

    async def restore(self, caller: Caller, target: Target, data: bytes | None) -> BotStatus:
        """Replace the bot's /data with an archive (None: undo the last restore); it restarts."""
        request_id = uuid.uuid4().hex
        if data is not None:
            if len(data) > self.max_backup_bytes:
                raise InvalidSource(
                    f"the archive is larger than {self.max_backup_bytes >> 20} MB",
                    params=ErrorParams(
                        reason="too_large", max_bytes=self.max_backup_bytes, size_bytes=len(data)
                    ),
                )
            await self.ensure_runner()
            await archive.put(self.runner.redis, keys.archive(request_id), data)
        result = await self.call(
            caller, Op.RESTORE, target, request_id=request_id, undo=data is None, timeout=BUILD_TIMEOUT_S
        )
        return _bot(result, caller, target)

    async def delete_webhook(self, caller: Caller, target: Target) -> BotStatus:
        """Remove the webhook on the bot's token (the runner alone reads it), so the bot can poll."""
        return _bot(await self.call(caller, Op.DELETE_WEBHOOK, target), caller, target)

    async def quota(self, caller: Caller, owner: int | None = None) -> QuotaInfo:
        """Bots owned against the limit: the caller's own, or (admins) any user's."""
        if owner is not None and owner != caller.id:
            _admin_only(caller)
        result = await self.call(caller, Op.QUOTA, owner=caller.id if owner is None else owner)
        return result.quota or QuotaInfo(used=0, limit=0)

    async def set_quota(self, caller: Caller, owner: int, limit: int | None) -> QuotaInfo:
        _admin_only(caller)
        result = await self.call(caller, Op.SET_QUOTA, target_owner=owner, quota=limit)
        return result.quota or QuotaInfo(used=0, limit=limit or 0)

    async def system(self, caller: Caller) -> SystemInfo | None:
        _admin_only(caller)
        return (await self.call(caller, Op.SYSTEM)).system

    # -- what happened: resource history and the audit trail (issue 13) ------------------------
    async def stats(self, caller: Caller, target: Target, seconds: float) -> BotStats:
        """A bot's resource samples over the last `seconds`."""
        result = await self.call(caller, Op.STATS, target, since=time.time() - seconds)
        if result.stats is None:
            raise BotrunnerError("the runner answered without samples", code=ErrorCode.INTERNAL)
        return result.stats

    async def top(self, caller: Caller) -> list[BotStatus]:
        """Every bot of every owner, the heaviest on memory first (admins)."""
        _admin_only(caller)
        bots = (await self.bots(caller, all_owners=True)).bots or []
        return sorted(bots, key=lambda b: (-(b.memory_bytes or 0), -(b.cpu_percent or 0)))

    async def audit_log(
        self, caller: Caller, query: AuditQuery, *, limit: int = 20, offset: int = 0
    ) -> list[AuditEntry]:
        """Admins read the whole trail; anyone else, only what touched their own bots."""
        if not caller.admin:
            query = AuditQuery(owner=caller.id, bot=query.bot)
        if self.audit is None:
            return []
        try:
            return await self.audit.read(query, limit=max(1, min(limit, 500)), offset=max(0, offset))
        except RedisError as e:
            raise StoreUnavailable() from e

    async def record(self, caller: Caller, action: str, outcome: str = "ok") -> None:
        """Audit an action that does not go to the runner (API tokens)."""
        if self.audit is not None:
            await self.audit.write(
                AuditEntry(actor=caller.id, action=action, channel=caller.channel.value, result=outcome)
            )


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
