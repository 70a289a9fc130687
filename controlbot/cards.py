"""A short answer followed by the bot's status card and its buttons: how every action is answered."""

from __future__ import annotations

from aiogram.types import InlineKeyboardMarkup, Message

from controlbot import formatting, keyboards
from protocol.models import BotStatus


def with_card(text: str, bot: BotStatus | None, viewer: int) -> tuple[str, InlineKeyboardMarkup | None]:
    """text, then the card of bot when there is one; and the card's buttons."""
    if bot is None:
        return text, None
    body = formatting.card(bot, viewer)
    return (f"{text}\n\n{body}" if text else body), keyboards.card(bot)


async def answer(message: Message, text: str, bot: BotStatus | None, viewer: int) -> None:
    body, markup = with_card(text, bot, viewer)
    await message.answer(body, reply_markup=markup)
