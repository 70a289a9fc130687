"""/env name KEY=VALUE -KEY: set and unset a bot's env vars; the bot restarts to apply them."""

from __future__ import annotations

from html import escape

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from controlbot import formatting, keyboards, ops, uploads
from controlbot.ops import Caller
from controlbot.parsing import EnvChanges, parse_env, target_args
from controlbot.settings import Settings
from protocol.client import RunnerClient
from protocol.models import Op

router = Router(name="env")


def summary(changes: EnvChanges) -> str:
    parts = [f"<code>{escape(k)}</code>={escape(formatting.mask(v))}" for k, v in changes.set.items()]
    parts += [f"<s>{escape(k)}</s>" for k in changes.unset]
    return ", ".join(parts)


@router.message(Command("env"))
async def cmd_env(
    message: Message, command: CommandObject, caller: Caller, runner: RunnerClient, settings: Settings
) -> None:
    carries = "=" in (command.args or "")
    try:
        usage = _("Usage: /env name KEY=VALUE ... -KEY ... (KEY=VALUE sets, -KEY unsets)")
        target, rest = target_args(command.args, caller.id, caller.is_admin, usage)
        changes = parse_env(rest)
        uploads.check_values(changes, settings)
    finally:
        if carries:  # read: the values leave the chat before anything else happens
            await uploads.delete_quietly(message)
    if not changes:
        bot = await ops.status(runner, caller, target)
        await message.answer(formatting.card(bot, caller.id), reply_markup=keyboards.card(bot))
        return
    await ops.ensure_runner(runner)
    warning = await uploads.token_warnings(runner, caller, target, changes)
    result = await ops.call(runner, caller, Op.SET_ENV, target, env=changes.set, unset=changes.unset)
    text = _("✅ Env of <b>{name}</b> updated: {changes}. The bot restarted to apply it.").format(
        name=escape(target.ref(caller.id)), changes=summary(changes)
    )
    if warning:
        text += "\n" + warning
    if result.bot is None:
        await message.answer(text)
        return
    await message.answer(
        text + "\n\n" + formatting.card(result.bot, caller.id), reply_markup=keyboards.card(result.bot)
    )
