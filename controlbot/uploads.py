"""Uploaded sources (a .py or a .zip package): refuse bad ones before and after downloading."""

from __future__ import annotations

import contextlib
import logging
import math
import re
from html import escape

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Document, Message
from aiogram.utils.i18n import gettext as _

from controlbot import ops
from controlbot.errors import Refusal
from controlbot.parsing import EnvChanges, Target
from controlbot.settings import Settings
from protocol.client import RunnerClient
from protocol.errors import ErrorCode
from protocol.models import SourceKind

log = logging.getLogger(__name__)

_CODING_RE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.MULTILINE)
TOKEN_SHAPE = re.compile(r"^\d{3,}:[A-Za-z0-9_-]{5,}$")
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or an empty archive


def mb(nbytes: int) -> str:
    """Megabytes, rounded up, so a file just over the limit never reads as equal to it."""
    value = nbytes / (1024 * 1024)
    return f"{value:.0f}" if value == int(value) else f"{math.ceil(value * 10) / 10:.1f}"


def source_kind(filename: str | None) -> SourceKind:
    """A .zip is a bot package, treated like a repository; anything else we accept is a .py."""
    return SourceKind.ZIP if (filename or "").lower().endswith(".zip") else SourceKind.FILE


def check_document(doc: Document, settings: Settings) -> None:
    """Name and size checks that need no download."""
    filename = doc.file_name or ""
    if not filename.lower().endswith((".py", ".zip")):
        raise Refusal(
            _(
                "<b>{file}</b> is not a Python file. Send a single .py file, or a bot package as a .zip."
            ).format(file=escape(filename or _("This file"))),
            code=ErrorCode.INVALID_SOURCE,
        )
    if doc.file_size is not None and doc.file_size > settings.max_upload_bytes:
        raise Refusal(
            _("The file is too big ({size} MB): the limit is {limit} MB.").format(
                size=mb(doc.file_size), limit=mb(settings.max_upload_bytes)
            ),
            code=ErrorCode.INVALID_SOURCE,
        )


def check_content(data: bytes, settings: Settings, kind: SourceKind = SourceKind.FILE) -> None:
    if len(data) > settings.max_upload_bytes:
        raise Refusal(
            _("The file is too big ({size} MB): the limit is {limit} MB.").format(
                size=mb(len(data)), limit=mb(settings.max_upload_bytes)
            ),
            code=ErrorCode.INVALID_SOURCE,
        )
    if kind is SourceKind.ZIP:
        # What is inside (paths escaping the folder, symlinks, sizes) is the runner's to judge.
        if not data.startswith(_ZIP_MAGIC):
            raise Refusal(
                _("This file is not a .zip archive. Zip the bot's folder and send it again."),
                code=ErrorCode.INVALID_SOURCE,
            )
        return
    if b"\x00" in data or not _decodes(data):
        raise Refusal(
            _("This file is binary, not Python source text. Send a .py file."), code=ErrorCode.INVALID_SOURCE
        )


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        head = b"\n".join(data.split(b"\n", 2)[:2])
        return _CODING_RE.search(head) is not None  # PEP 263 declares another encoding


async def download(bot: Bot, file_id: str, settings: Settings, kind: SourceKind = SourceKind.FILE) -> bytes:
    buf = await bot.download(file_id)
    if buf is None:  # only when a destination is given; we never give one
        raise Refusal(_("Could not download the file; send it again."), code=ErrorCode.INVALID_SOURCE)
    data = buf.read()
    check_content(data, settings, kind)
    return data


async def delete_quietly(message: Message | None) -> None:
    """Delete a user's message that carried env values. Failure is logged, never shown."""
    if message is None:
        return
    with contextlib.suppress(TelegramAPIError):
        await message.delete()
        return
    log.warning("could not delete message %s in chat %s", message.message_id, message.chat.id)


def check_values(changes: EnvChanges, settings: Settings) -> None:
    for key, value in changes.set.items():
        if value.strip() == settings.bot_token:
            raise Refusal(
                _(
                    "The value of <code>{key}</code> is this control bot's own token. Create a separate bot "
                    "with @BotFather and use its token; nothing was changed."
                ).format(key=escape(key)),
                code=ErrorCode.INVALID_ENV,
            )


async def token_warnings(
    runner: RunnerClient, caller: ops.Caller, target: Target, changes: EnvChanges
) -> str:
    """A warning when a token-shaped value already serves another of the owner's bots."""
    candidates = {k: v for k, v in changes.set.items() if TOKEN_SHAPE.fullmatch(v.strip())}
    shared = await ops.bots_sharing_values(runner, caller, target.owner, candidates, exclude=target.name)
    lines = [
        _(
            "⚠️ The value of <code>{key}</code> is already used by {bots}. Two bots polling one token "
            "get 409 Conflict from Telegram."
        ).format(key=escape(key), bots=", ".join(escape(b) for b in bots))
        for key, bots in shared.items()
    ]
    return "\n".join(lines)
