"""/backup name [daily|off|list] (/data as a .tar.gz, or the daily backups) and /restore name
(the caption of an uploaded .tar.gz; `/restore name undo` puts back what the last restore replaced)."""

from __future__ import annotations

import time
from html import escape

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, Message
from aiogram.utils.i18n import gettext as _

from controlbot import cards, formatting
from controlbot.errors import Refusal, mb
from controlbot.gateway import Caller, Gateway, Target
from controlbot.handlers.deploy import attached_document
from controlbot.parsing import target_args, target_choice
from protocol.errors import ErrorCode
from protocol.models import BackupMode

router = Router(name="backups")

# sendDocument takes files of up to 50 MB on the cloud Bot API.
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
_MODES = {"daily": BackupMode.DAILY, "off": BackupMode.OFF, "list": BackupMode.LIST}


@router.message(Command("backup"))
async def cmd_backup(message: Message, command: CommandObject, caller: Caller, gateway: Gateway) -> None:
    usage = _("Usage: /backup name [daily|off|list]")
    target, mode = target_choice(command.args, caller.id, caller.admin, usage, _MODES)
    if mode is not None:
        await _schedule(message, caller, gateway, target, _MODES[mode])
        return
    name = escape(target.ref(caller.id))
    info, data = await gateway.backup(caller, target)
    if info.size_bytes > MAX_DOCUMENT_BYTES:
        raise Refusal(
            _(
                "The archive of <b>{name}</b> is {size} MB, over the 50 MB Telegram lets a bot send. "
                "Download it with <code>botrunner backup {name} -o FILE</code> (GET /api/bots/{name}/data)."
            ).format(name=name, size=mb(info.size_bytes)),
            code=ErrorCode.INVALID_INPUT,
        )
    caption = _("🗄 /data of <b>{name}</b>, {size} MB").format(name=name, size=mb(info.size_bytes))
    await message.answer_document(BufferedInputFile(data, filename=info.filename), caption=caption)


async def _schedule(
    message: Message, caller: Caller, gateway: Gateway, target: Target, mode: BackupMode
) -> None:
    """/backup name daily|off|list: turn the daily backups on or off, or list the kept ones."""
    name = escape(target.ref(caller.id))
    result = await gateway.backup_schedule(caller, target, mode)
    if mode is BackupMode.LIST:
        lines = [
            f"• <code>{escape(b.filename)}</code> · {formatting.size(b.size_bytes)} · "
            + formatting.duration(time.time() - b.created_at)
            for b in result.backups or []
        ]
        head = _("🗄 Daily backups of <b>{name}</b>:").format(name=name)
        await message.answer(
            "\n".join([head, *lines])
            if lines
            else _("No daily backups of <b>{name}</b> yet.").format(name=name)
        )
        return
    text = (
        _("🗄 <b>{name}</b> is backed up daily; /backup {name} list shows the kept archives.")
        if mode is BackupMode.DAILY
        else _("🗄 Daily backups of <b>{name}</b> are off.")
    ).format(name=name)
    await cards.answer(message, text, result.bot, caller.id)


@router.message(Command("restore"))
async def cmd_restore(
    message: Message, command: CommandObject, bot: Bot, caller: Caller, gateway: Gateway
) -> None:
    usage = _("Usage: send a .tar.gz with the caption /restore name, or /restore name undo")
    target, rest = target_args(command.args, caller.id, caller.admin, usage)
    name = escape(target.ref(caller.id))
    if rest == ["undo"]:
        status = await gateway.restore(caller, target, None)
        await cards.answer(
            message,
            _("↩️ /data of <b>{name}</b> is back as it was before the restore.").format(name=name),
            status,
            caller.id,
        )
        return
    document = attached_document(message)
    if rest or document is None or not (document.file_name or "").lower().endswith((".tar.gz", ".tgz")):
        raise Refusal(usage, code=ErrorCode.INVALID_INPUT)
    buf = await bot.download(document.file_id)
    if buf is None:
        raise Refusal(_("Could not download the file; send it again."), code=ErrorCode.INVALID_SOURCE)
    status = await gateway.restore(caller, target, buf.read())
    text = _(
        "📥 /data of <b>{name}</b> is restored and the bot restarted. /restore {name} undo puts the old "
        "data back (once)."
    ).format(name=name)
    await cards.answer(message, text, status, caller.id)
