"""/status, and the status card's buttons that only show something: the card itself, and how to update."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from controlbot import formatting, keyboards
from controlbot.callbacks import BotAction, BotCb
from controlbot.gateway import Caller, Gateway, press_target
from controlbot.parsing import target_args
from protocol.models import BotStatus, SourceKind

router = Router(name="status")

# A view of a bot as it is now, for a viewer: its text and buttons.
View = Callable[[BotStatus, int], tuple[str, InlineKeyboardMarkup | None]]


@router.message(Command("status"))
async def cmd_status(message: Message, command: CommandObject, caller: Caller, gateway: Gateway) -> None:
    target, _rest = target_args(command.args, caller.id, caller.admin, _("Usage: /status name"))
    bot = await gateway.status(caller, target)
    await message.answer(formatting.card(bot, caller.id), reply_markup=keyboards.card(bot))


def card_view(status: BotStatus, viewer: int) -> tuple[str, InlineKeyboardMarkup | None]:
    return formatting.card(status, viewer), keyboards.card(status)


def update_view(status: BotStatus, viewer: int) -> tuple[str, InlineKeyboardMarkup | None]:
    return update_hint(status, viewer), None


def update_hint(status: BotStatus, viewer: int) -> str:
    """How to update the bot: the git command for a git bot, the caption to send for an upload."""
    name = escape(formatting.bot_ref(status, viewer))
    if status.source.kind is SourceKind.GIT:
        return _(
            "Send <code>/update {name}</code> to pull the latest commit of <b>{branch}</b> "
            "(or <code>--branch B</code>, <code>--commit SHA</code>). A .py or .zip with that caption "
            "replaces the code instead."
        ).format(name=name, branch=escape(status.source.branch or "main"))
    return _(
        "Send the new .py file with the caption <code>/update {name}</code> (add KEY=VALUE to change env)."
    ).format(name=name)


_VIEWS: dict[BotAction, View] = {BotAction.CARD: card_view, BotAction.UPDATE: update_view}


@router.callback_query(BotCb.filter(F.action.in_(_VIEWS)))
async def press_view(
    query: CallbackQuery, callback_data: BotCb, bot: Bot, caller: Caller, gateway: Gateway
) -> None:
    """Send whoever pressed the view the button asks for, of the bot as it is now."""
    target = press_target(caller, callback_data.owner, callback_data.name)
    status = await gateway.status(caller, target)
    text, markup = _VIEWS[callback_data.action](status, caller.id)
    await query.answer()
    await bot.send_message(query.from_user.id, text, reply_markup=markup)
