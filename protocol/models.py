"""Pydantic models of every message on the wire. JSON only, never pickle."""

from __future__ import annotations

import time
import uuid
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from protocol.errors import BotrunnerError, ErrorCode, ErrorParams
from protocol.keys import REPLIES_PATTERN

# How long a command may wait in the queue before the runner discards it unread.
DEFAULT_DEADLINE_S = 30.0


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", use_enum_values=False)


class Op(StrEnum):
    START = "start"
    STOP = "stop"
    RESTART = "restart"
    UPDATE = "update"
    DELETE = "delete"
    STATUS = "status"
    LOGS = "logs"
    LIST = "list"
    SET_ENV = "set_env"
    SET_QUOTA = "set_quota"
    SYSTEM = "system"
    QUOTA = "quota"  # read an owner's quota: bots owned against the limit
    DELETE_WEBHOOK = "delete_webhook"  # remove the webhook on a bot's token, so it can poll
    BACKUP = "backup"  # /data as a .tar.gz now, or the daily backups: on, off, listed
    RESTORE = "restore"  # replace /data from a .tar.gz (or undo the last restore)
    STATS = "stats"  # a bot's resource history since `since` (issue 13)
    # releases and rollback (issue 12)
    RELEASES = "releases"
    ROLLBACK = "rollback"


class BackupMode(StrEnum):
    NOW = "now"  # archive /data now and hand it over in chunks (keys.archive)
    DAILY = "daily"  # keep daily backups in the bot's backups volume
    OFF = "off"  # stop the daily backups (the kept ones stay until the bot is deleted)
    LIST = "list"  # the kept daily backups


class SourceKind(StrEnum):
    FILE = "file"  # a single .py (may carry PEP 723 metadata)
    ZIP = "zip"  # a bot package, treated like a repository
    GIT = "git"  # a git repository URL


class SourceSpec(_Model):
    """What to deploy. FILE and ZIP payloads travel in keys.upload(request_id), not in the stream."""

    kind: SourceKind
    filename: str | None = None
    git_url: str | None = None
    branch: str | None = None
    commit: str | None = None
    entrypoint: str | None = None


class Command(_Model):
    request_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    op: Op
    owner: int  # whose bot(s): the quota and the namespace
    actor: int | None = None  # who asked; differs from owner when an admin acts on another's bot
    admin: bool = False
    name: str | None = None
    deadline: float = Field(default_factory=lambda: time.time() + DEFAULT_DEADLINE_S)
    source: SourceSpec | None = None
    # start/update: None keeps the current env; set_env: values to set.
    env: dict[str, str] | None = None
    unset: list[str] = Field(default_factory=list)
    tail: int = 30
    since: float | None = None  # epoch seconds
    all_owners: bool = False
    target_owner: int | None = None  # set_quota
    quota: int | None = None  # set_quota; None clears the override
    pull: bool = False  # update of a git bot: pull the branch head
    # start/update/set_env: the @username Telegram's getMe gave for each token-shaped env value.
    usernames: dict[str, str] = Field(default_factory=dict)
    backup: BackupMode | None = None  # backup: what to do (None: now)
    undo: bool = False  # restore: put back what the last restore replaced
    # Where the runner XADDs this request's Progress and Result: the requester's replies stream
    # (keys.replies). None: nobody listens; a state change's Result is still kept in keys.result.
    reply_to: str | None = Field(None, pattern=REPLIES_PATTERN)
    release: int | None = None  # rollback: the release to restore (None: the previous); logs: whose


class BotState(StrEnum):
    RUNNING = "running"
    STARTING = "starting"
    RESTARTING = "restarting"
    STOPPED = "stopped"
    CRASHED = "crashed"
    MISSING = "missing"


class Desired(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"


class SourceInfo(_Model):
    kind: SourceKind
    filename: str | None = None
    sha256: str | None = None
    git_url: str | None = None  # credentials stripped
    branch: str | None = None
    commit: str | None = None
    commit_subject: str | None = None
    entrypoint: str | None = None
    dependencies: list[str] = Field(default_factory=list)


class Limits(_Model):
    memory_bytes: int
    cpu: float
    pids: int


class BotStatus(_Model):
    owner: int
    name: str
    state: BotState
    desired: Desired
    uptime_seconds: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    oom_killed: bool = False
    restart_count: int = 0
    memory_bytes: int | None = None
    cpu_percent: float | None = None
    limits: Limits
    source: SourceInfo
    env_masked: dict[str, str] = Field(default_factory=dict)
    # HMAC-SHA256 hex of each env value under a key only the runner holds: equal values compare
    # equal (the same token in two bots), yet nobody can test a guessed value against it.
    env_hmac: dict[str, str] = Field(default_factory=dict)
    usernames: dict[str, str] = Field(default_factory=dict)  # env key -> the bot's @username
    backup_daily: bool = False
    container_id: str | None = None
    image: str | None = None
    created_at: float
    updated_at: float
    # Releases (issue 12): the current release's number, the one a rollback restores by default,
    # and whether the health gate still watches the current one.
    release: int | None = None
    previous_release: int | None = None
    checking: bool = False


class ReleaseInfo(_Model):
    """One recorded release of a bot, as front ends show it (never its env)."""

    number: int
    op: Op  # what made it: start, update, rollback, set_env
    created_at: float
    actor: int | None = None  # who made it; None: the runner itself
    source: SourceInfo
    image: str
    entrypoint: str
    current: bool = False
    failed: bool = False  # it crashed inside its health gate
    restored: int | None = None  # a rollback: the release it restored
    has_logs: bool = False  # its output was kept when it was replaced


class GateVerdict(StrEnum):
    """How a health gate ended."""

    HEALTHY = "healthy"  # still running at the end of the grace period
    ROLLED_BACK = "rolled_back"  # crashed; the previous release runs again
    FAILED = "failed"  # crashed with nothing to go back to: left stopped
    EXITED = "exited"  # exited with code 0: reported, not rolled back


class QuotaInfo(_Model):
    used: int
    limit: int


class RunnerInfo(_Model):
    """One live runner, as /system lists it."""

    runner_id: str
    heartbeat_age_seconds: float
    backend: str = "docker"
    nodes: int | None = None  # None: one host (docker)
    docker_ok: bool = True
    leader: bool = False


class SystemInfo(_Model):
    runner_id: str
    heartbeat_age_seconds: float | None = None
    docker_version: str | None = None
    bots_running: int = 0
    bots_total: int = 0
    backend: str = "docker"
    egress: str | None = None
    runners: list[RunnerInfo] = Field(default_factory=list)  # every live runner, this one included


class ArchiveInfo(_Model):
    """A bot's /data archive, sent as chunks on keys.archive(request_id)."""

    filename: str
    size_bytes: int
    chunks: int


class BackupEntry(_Model):
    filename: str
    size_bytes: int
    created_at: float


class ErrorInfo(_Model):
    """An error on the wire: its code, a plain English sentence, and typed figures to word it anew."""

    code: ErrorCode
    message: str
    field: str | None = None
    detail: str | None = None  # e.g. the whole log of a failed build
    bot: str | None = None
    params: ErrorParams = Field(default_factory=ErrorParams)

    # The fields are BotrunnerError's attributes and the arguments of its constructor.
    @classmethod
    def from_exc(cls, exc: BotrunnerError) -> ErrorInfo:
        return cls.model_validate(exc, from_attributes=True)

    def to_exc(self) -> BotrunnerError:
        return BotrunnerError(**dict(self))


NO_REASON = ErrorInfo(code=ErrorCode.INTERNAL, message="the runner reported a failure without a reason")


class Stage(StrEnum):
    CLONING = "cloning"
    INSTALLING = "installing"
    BUILDING = "building"
    STOPPING = "stopping"
    STARTING = "starting"


class NoteKind(StrEnum):
    """Remarks a successful deploy comes with; front ends word each one themselves."""

    ENTRYPOINT = "entrypoint"  # path: the file python runs
    DEPS_INSTALLED = "deps_installed"  # count: dependencies pip installed now
    DEPS_CACHED = "deps_cached"  # count: dependencies taken from a cached image
    DOCKERFILE_BUILT = "dockerfile_built"  # the image was built from the bot's Dockerfile
    DOCKERFILE_CACHED = "dockerfile_cached"  # ... and an earlier build of the same tree was reused
    ENTRYPOINT_IGNORED = "entrypoint_ignored"  # a Dockerfile's CMD runs; the entry point given does not
    SYMLINKS_IGNORED = "symlinks_ignored"  # count: symlinks leading outside the bot, dropped
    TOKEN_UNVERIFIED = "token_unverified"  # key: Telegram could not be reached to check its token
    WEBHOOK_SET = "webhook_set"  # key: a webhook is set on its token, so polling gets nothing


class Note(_Model):
    kind: NoteKind
    path: str | None = None
    count: int | None = None
    key: str | None = None

    def english(self) -> str:
        """The note as a plain sentence, for the API and the CLI."""
        texts = {
            NoteKind.ENTRYPOINT: f"entry point: {self.path}",
            NoteKind.DEPS_INSTALLED: f"dependencies: installed ({self.count})",
            NoteKind.DEPS_CACHED: f"dependencies: cached ({self.count})",
            NoteKind.DOCKERFILE_BUILT: "built from its Dockerfile",
            NoteKind.DOCKERFILE_CACHED: "built from its Dockerfile (cached)",
            NoteKind.ENTRYPOINT_IGNORED: "the Dockerfile's CMD runs; the entry point given is ignored",
            NoteKind.SYMLINKS_IGNORED: f"ignored {self.count} symlink(s) leading outside",
            NoteKind.TOKEN_UNVERIFIED: f"Telegram could not be reached to check the token in {self.key}",
            NoteKind.WEBHOOK_SET: (
                f"a webhook is set on the token in {self.key}: a polling bot gets no updates until it is "
                "removed"
            ),
        }
        return texts[self.kind]


def notes_text(notes: list[Note]) -> str | None:
    return "; ".join(n.english() for n in notes) or None


class Sample(_Model):
    """One point of a bot's resource history."""

    ts: float
    memory_bytes: int
    cpu_percent: float


class BotStats(_Model):
    """A bot's resource history over a range, with its limits and when it restarted or crashed."""

    owner: int
    name: str
    limits: Limits
    samples: list[Sample] = Field(default_factory=list)
    restarts: list[float] = Field(default_factory=list)  # epoch seconds of restarts and crashes


class Progress(_Model):
    type: Literal["progress"] = "progress"
    request_id: str
    stage: Stage
    message: str = ""


class Result(_Model):
    type: Literal["result"] = "result"
    request_id: str
    ok: bool = True
    error: ErrorInfo | None = None
    bot: BotStatus | None = None
    bots: list[BotStatus] | None = None
    logs: str | None = None
    quota: QuotaInfo | None = None
    system: SystemInfo | None = None
    notes: list[Note] = Field(default_factory=list)
    archive: ArchiveInfo | None = None  # backup now: where the archive's chunks are
    backups: list[BackupEntry] | None = None  # backup list
    stats: BotStats | None = None  # Op.STATS
    releases: list[ReleaseInfo] | None = None

    def raise_for_error(self) -> Result:
        """The result itself when it succeeded; its error raised otherwise (INTERNAL when it has none)."""
        if not self.ok:
            raise (self.error or NO_REASON).to_exc()
        return self


Reply = Annotated[Progress | Result, Field(discriminator="type")]
REPLY_ADAPTER: TypeAdapter[Progress | Result] = TypeAdapter(Reply)


class EventType(StrEnum):
    STARTED = "started"
    CRASHED = "crashed"
    RESTARTED = "restarted"
    STOPPED = "stopped"
    DELETED = "deleted"
    RECOVERED = "recovered"  # brought back by reconciliation
    MISSING = "missing"  # the container vanished and could not be brought back
    CONFLICT = "conflict"  # the bot's output shows Telegram's 409: another poller uses its token
    DISK_LIMIT_EXCEEDED = "disk_limit_exceeded"  # /app and /data grew past BOT_DISK_LIMIT: stopped
    GATE = "gate"  # a health gate ended: verdict, release, restored, request_id, log_tail


class Event(_Model):
    type: EventType
    owner: int
    name: str
    ts: float = Field(default_factory=time.time)
    exit_code: int | None = None
    oom_killed: bool = False
    restart_count: int = 0
    memory_limit_bytes: int | None = None
    disk_limit_bytes: int | None = None  # DISK_LIMIT_EXCEEDED: the limit, and what the bot held
    disk_used_bytes: int | None = None
    # For CRASHED: alert is true only for the first crash of a streak, so a loop is reported once;
    # crash_loop is true when the restart cap was reached and the bot stays down.
    alert: bool = False
    crash_loop: bool = False
    log_tail: str | None = None
    # GATE: the verdict, the release it watched, the release running again (ROLLED_BACK) and the
    # request that deployed it (the chat finds the message to edit by it).
    verdict: GateVerdict | None = None
    release: int | None = None
    restored: int | None = None
    request_id: str | None = None


class RunnerHealth(_Model):
    runner_id: str
    ts: float
    docker_ok: bool
    docker_version: str | None = None
    # What bots may reach: "public", "open", "open (host network)"; None from older runners.
    egress: str | None = None
    bots_running: int = 0
    bots_total: int = 0
    # More than one runner: the engine kind ("docker", "swarm"), its nodes (None: one host), the
    # engine's id (docker info ID; runners on one Redis must share it) and the runner's instance.
    backend: str = "docker"
    nodes: int | None = None
    engine_id: str | None = None
    instance: str | None = None
    leader: bool = False
