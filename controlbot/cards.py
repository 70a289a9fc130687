"""A short answer followed by the bot's status card and its buttons: how every action is answered."""

from __future__ import annotations

from aiogram.types import InlineKeyboardMarkup, Message

from controlbot import formatting, keyboards
from protocol.models import BotStatus, Note, NoteKind


def with_card(
    text: str, bot: BotStatus | None, viewer: int, notes: list[Note] | None = None
) -> tuple[str, InlineKeyboardMarkup | None]:
    """text, then the card of bot when there is one; and the card's buttons (a deploy's notes may
    add one, e.g. Remove webhook)."""
    if bot is None:
        return text, None
    body = formatting.card(bot, viewer)
    webhook = any(n.kind is NoteKind.WEBHOOK_SET for n in notes or [])
    return (f"{text}\n\n{body}" if text else body), keyboards.card(bot, webhook=webhook)


async def answer(
    message: Message, text: str, bot: BotStatus | None, viewer: int, notes: list[Note] | None = None
) -> None:
    body, markup = with_card(text, bot, viewer, notes)
    await message.answer(body, reply_markup=markup)
