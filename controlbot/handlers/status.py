"""/status and the status card with its buttons."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from controlbot import formatting, keyboards
from controlbot.callbacks import BotAction, BotCb
from controlbot.gateway import Caller, Gateway, press_target
from controlbot.parsing import target_args

router = Router(name="status")


@router.message(Command("status"))
async def cmd_status(message: Message, command: CommandObject, caller: Caller, gateway: Gateway) -> None:
    target, _rest = target_args(command.args, caller.id, caller.admin, _("Usage: /status name"))
    bot = await gateway.status(caller, target)
    await message.answer(formatting.card(bot, caller.id), reply_markup=keyboards.card(bot))


@router.callback_query(BotCb.filter(F.action == BotAction.CARD))
async def press_card(
    query: CallbackQuery, callback_data: BotCb, bot: Bot, caller: Caller, gateway: Gateway
) -> None:
    target = press_target(caller, callback_data.owner, callback_data.name)
    status = await gateway.status(caller, target)
    await query.answer()
    await bot.send_message(
        query.from_user.id, formatting.card(status, caller.id), reply_markup=keyboards.card(status)
    )
