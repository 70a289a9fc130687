"""Who asks and what for: the caller, the bot they address, a deploy's request."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from controlbot.telegram_check import TokenCheck
from protocol.errors import (
    NotFound,
)
from protocol.models import (
    Op,
    SourceKind,
    SourceSpec,
)

log = logging.getLogger(__name__)


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
