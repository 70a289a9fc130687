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
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from redis.exceptions import RedisError

from protocol import keys, rules
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

log = logging.getLogger(__name__)

_CODING_RE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.MULTILINE)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or an empty archive
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

    def __init__(self, runner: RunnerClient, *, bot_token: str, max_upload_bytes: int) -> None:
        self.runner = runner
        self.bot_token = bot_token
        self.max_upload_bytes = max_upload_bytes

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
        try:
            result = await self.runner.call(cmd, payload, timeout=timeout, on_progress=on_progress)
            return result.raise_for_error()
        except RedisError as e:
            raise StoreUnavailable() from e
        except BotrunnerError as e:
            if e.bot is None and target is not None:
                e.bot = target.ref(caller.id)
            raise

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
        return await self.call(
            caller,
            req.op,
            req.target,
            payload=req.upload.data if req.upload else None,
            timeout=BUILD_TIMEOUT_S,
            on_progress=on_progress,
            source=req.spec(),
            pull=req.pull,
            env=env,
        )

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
        return await self.call(caller, Op.SET_ENV, target, env=self.check_env(env), unset=unset)

    async def set_quota(self, caller: Caller, owner: int, limit: int | None) -> QuotaInfo:
        _admin_only(caller)
        result = await self.call(caller, Op.SET_QUOTA, target_owner=owner, quota=limit)
        return result.quota or QuotaInfo(used=0, limit=limit or 0)

    async def system(self, caller: Caller) -> SystemInfo | None:
        _admin_only(caller)
        return (await self.call(caller, Op.SYSTEM)).system


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
