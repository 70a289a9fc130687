"""Last in line: unknown commands and stray text get a pointer to /help."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

router = Router(name="fallback")


@router.message(F.text.startswith("/") | F.caption.startswith("/"))
async def unknown_command(message: Message) -> None:
    await message.answer(_("Unknown command. /help lists what I can do."))


@router.message()
async def unknown_text(message: Message) -> None:
    await message.answer(_("I did not understand that. Send a .py file to deploy a bot, or see /help."))


@router.callback_query()
async def unknown_button(query: CallbackQuery) -> None:
    await query.answer(_("This button is no longer valid."), show_alert=True)
