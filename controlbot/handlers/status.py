"""/status and the status card with its buttons."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from controlbot import formatting, keyboards, ops
from controlbot.callbacks import BotAction, BotCb
from controlbot.ops import Caller
from controlbot.parsing import target_args
from protocol.client import RunnerClient

router = Router(name="status")


@router.message(Command("status"))
async def cmd_status(message: Message, command: CommandObject, caller: Caller, runner: RunnerClient) -> None:
    target, _rest = target_args(command.args, caller.id, caller.is_admin, _("Usage: /status name"))
    bot = await ops.status(runner, caller, target)
    await message.answer(formatting.card(bot, caller.id), reply_markup=keyboards.card(bot))


@router.callback_query(BotCb.filter(F.action == BotAction.CARD))
async def press_card(
    query: CallbackQuery, callback_data: BotCb, bot: Bot, caller: Caller, runner: RunnerClient
) -> None:
    target = ops.press_target(caller, callback_data.owner, callback_data.name)
    status = await ops.status(runner, caller, target)
    await query.answer()
    await bot.send_message(
        query.from_user.id, formatting.card(status, caller.id), reply_markup=keyboards.card(status)
    )
