"""/stop, /restart, /delete, and the card buttons doing the same (Start, Delete with confirmation)."""

from __future__ import annotations

from html import escape

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from controlbot import cards, formatting, keyboards
from controlbot.callbacks import BotAction, BotCb
from controlbot.gateway import Caller, Gateway, press_target
from controlbot.parsing import Target, target_args
from protocol.models import Op

router = Router(name="manage")

_OPS = {BotAction.STOP: Op.STOP, BotAction.RESTART: Op.RESTART, BotAction.START: Op.START}


def done_text(op: Op, target: Target, caller: Caller) -> str:
    name = escape(target.ref(caller.id))
    texts = {
        Op.STOP: _("⏹ <b>{name}</b> stopped."),
        Op.RESTART: _("🔄 <b>{name}</b> restarted."),
        Op.START: _("▶️ <b>{name}</b> started."),
    }
    return texts[op].format(name=name)


@router.message(Command("stop", "restart"))
async def cmd_stop_restart(
    message: Message, command: CommandObject, caller: Caller, gateway: Gateway
) -> None:
    op = Op.STOP if command.command == "stop" else Op.RESTART
    target, _rest = target_args(
        command.args, caller.id, caller.admin, _("Usage: /{cmd} name").format(cmd=command.command)
    )
    bot = await gateway.act(caller, op, target)
    await cards.answer(message, done_text(op, target, caller), bot, caller.id)


@router.message(Command("delete"))
async def cmd_delete(message: Message, command: CommandObject, caller: Caller, gateway: Gateway) -> None:
    target, _rest = target_args(command.args, caller.id, caller.admin, _("Usage: /delete name"))
    await gateway.status(caller, target)  # an unknown bot is "not found" before any question
    await message.answer(
        confirm_text(target, caller), reply_markup=keyboards.delete_confirm(target.owner, target.name)
    )


def confirm_text(target: Target, caller: Caller) -> str:
    return _(
        "🗑 Delete <b>{name}</b>? Its container, data and logs are removed, and the name is freed."
    ).format(name=escape(target.ref(caller.id)))


def _is_card(message: Message) -> bool:
    """Cards carry a Delete button; alerts and other messages with bot buttons do not."""
    markup = message.reply_markup
    if markup is None:
        return False
    for row in markup.inline_keyboard:
        for button in row:
            data = button.callback_data or ""
            if data.startswith(f"{BotCb.__prefix__}:{BotAction.DELETE.value}:"):
                return True
    return False


@router.callback_query(BotCb.filter(F.action.in_({BotAction.STOP, BotAction.RESTART, BotAction.START})))
async def press_action(
    query: CallbackQuery, callback_data: BotCb, bot: Bot, caller: Caller, gateway: Gateway
) -> None:
    target = press_target(caller, callback_data.owner, callback_data.name)
    op = _OPS[callback_data.action]
    status = await gateway.act(caller, op, target)
    text = done_text(op, target, caller)
    await query.answer(formatting.strip_tags(text))
    card_text, markup = cards.with_card(text, status, caller.id)
    if isinstance(query.message, Message) and _is_card(query.message):
        try:
            await query.message.edit_text(card_text, reply_markup=markup)
            return
        except TelegramBadRequest:
            pass
    await bot.send_message(query.from_user.id, card_text, reply_markup=markup)


@router.callback_query(BotCb.filter(F.action == BotAction.DELETE))
async def press_delete(query: CallbackQuery, callback_data: BotCb, bot: Bot, caller: Caller) -> None:
    target = press_target(caller, callback_data.owner, callback_data.name)
    await query.answer()
    await bot.send_message(
        query.from_user.id,
        confirm_text(target, caller),
        reply_markup=keyboards.delete_confirm(target.owner, target.name),
    )


@router.callback_query(BotCb.filter(F.action == BotAction.DELETE_CONFIRM))
async def press_delete_confirm(
    query: CallbackQuery, callback_data: BotCb, caller: Caller, gateway: Gateway
) -> None:
    target = press_target(caller, callback_data.owner, callback_data.name)
    await gateway.delete(caller, target)
    text = _("🗑 <b>{name}</b> deleted.").format(name=escape(target.ref(caller.id)))
    await query.answer(formatting.strip_tags(text))
    if isinstance(query.message, Message):
        await query.message.edit_text(text)


@router.callback_query(BotCb.filter(F.action == BotAction.DELETE_CANCEL))
async def press_delete_cancel(query: CallbackQuery, callback_data: BotCb, caller: Caller) -> None:
    target = press_target(caller, callback_data.owner, callback_data.name)
    text = _("Kept <b>{name}</b>; nothing was deleted.").format(name=escape(target.ref(caller.id)))
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.edit_text(text)


@router.callback_query(BotCb.filter(F.action == BotAction.DELETE_WEBHOOK))
async def press_delete_webhook(
    query: CallbackQuery, callback_data: BotCb, bot: Bot, caller: Caller, gateway: Gateway
) -> None:
    """Remove the webhook that keeps the bot from polling; the runner alone reads the token."""
    target = press_target(caller, callback_data.owner, callback_data.name)
    status = await gateway.delete_webhook(caller, target)
    text = _("🧹 Webhook removed: <b>{name}</b> can poll now.").format(name=escape(target.ref(caller.id)))
    await query.answer(formatting.strip_tags(text))
    body, markup = cards.with_card(text, status, caller.id)
    await bot.send_message(query.from_user.id, body, reply_markup=markup)
