"""/list: the caller's bots with state icons and uptime; `/list all` for admins."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from controlbot import formatting, keyboards
from controlbot.callbacks import MenuAction, MenuCb
from controlbot.errors import Refusal
from controlbot.gateway import Caller, Gateway

router = Router(name="listing")


async def render_list(
    gateway: Gateway, caller: Caller, all_owners: bool
) -> tuple[str, InlineKeyboardMarkup | None]:
    result = await gateway.bots(caller, all_owners=all_owners)
    bots = sorted(result.bots or [], key=lambda b: (b.owner != caller.id, b.owner, b.name))
    if not bots:
        text = _("No bots yet. Send a .py file with the caption <code>/start_bot name</code> to deploy one.")
        return (text if not all_owners else _("No bots on this runner yet.")), keyboards.bot_list(
            [], caller.id
        )
    title = _("<b>All bots</b>") if all_owners else _("<b>Your bots</b>")
    if result.quota is not None and not all_owners:
        title += " " + _("({used}/{limit})").format(used=result.quota.used, limit=result.quota.limit)
    lines = [title, *(formatting.list_line(b, caller.id) for b in bots)]
    text = formatting.join_fitting(lines)
    return text, keyboards.bot_list(bots, caller.id)


@router.message(Command("list"))
async def cmd_list(message: Message, command: CommandObject, caller: Caller, gateway: Gateway) -> None:
    arg = (command.args or "").strip().lower()
    if arg and arg != "all":
        raise Refusal(_("Usage: /list, or /list all for admins."))
    if arg == "all" and not caller.admin:
        raise Refusal(_("Only admins can list every user's bots. /list shows yours."))
    text, markup = await render_list(gateway, caller, all_owners=arg == "all")
    await message.answer(text, reply_markup=markup)


@router.callback_query(MenuCb.filter(F.action == MenuAction.LIST))
async def press_list(query: CallbackQuery, bot: Bot, caller: Caller, gateway: Gateway) -> None:
    text, markup = await render_list(gateway, caller, all_owners=False)
    await query.answer()
    await bot.send_message(query.from_user.id, text, reply_markup=markup)
