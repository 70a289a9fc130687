"""/env name KEY=VALUE -KEY: set and unset a bot's env vars; the bot restarts to apply them."""

from __future__ import annotations

from html import escape

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from controlbot import cards, formatting, notices, uploads
from controlbot.gateway import Caller, Gateway
from controlbot.parsing import EnvChanges, parse_env, target_args

router = Router(name="env")


def summary(changes: EnvChanges) -> str:
    parts = [f"<code>{escape(k)}</code>={escape(formatting.mask(v))}" for k, v in changes.set.items()]
    parts += [f"<s>{escape(k)}</s>" for k in changes.unset]
    return ", ".join(parts)


@router.message(Command("env"))
async def cmd_env(message: Message, command: CommandObject, caller: Caller, gateway: Gateway) -> None:
    carries = "=" in (command.args or "")
    try:
        usage = _("Usage: /env name KEY=VALUE ... -KEY ... (KEY=VALUE sets, -KEY unsets)")
        target, rest = target_args(command.args, caller.id, caller.admin, usage)
        changes = parse_env(rest)
    finally:
        if carries:  # read: the values leave the chat before anything else happens
            await uploads.delete_quietly(message)
    if not changes:
        await cards.answer(message, "", await gateway.status(caller, target), caller.id)
        return
    result = await gateway.set_env(caller, target, changes.set, changes.unset)
    text = _("✅ Env of <b>{name}</b> updated: {changes}. The bot restarted to apply it.").format(
        name=escape(target.ref(caller.id)), changes=summary(changes)
    )
    if warnings := notices.localise(result.notes):
        text += "\n" + warnings
    await cards.answer(message, text, result.bot, caller.id, result.notes)
