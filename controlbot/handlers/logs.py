"""/logs: the last lines in a monospace block, with Refresh (edit in place) and Full log (.txt)."""

from __future__ import annotations

import time
from html import escape

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from controlbot import formatting, keyboards
from controlbot.callbacks import BotAction, BotCb, LogsAction, LogsCb
from controlbot.errors import Refusal
from controlbot.gateway import Caller, Gateway, press_target
from controlbot.parsing import Target, target_args

router = Router(name="logs")

DEFAULT_LINES = 30
MAX_LINES = 2000
FULL_LOG_LINES = 1_000_000
MAX_DOCUMENT_BYTES = 45 * 1024 * 1024  # sendDocument takes up to 50 MB


async def render(
    gateway: Gateway, caller: Caller, target: Target, lines: int
) -> tuple[str, InlineKeyboardMarkup]:
    logs = await gateway.logs(caller, target, tail=lines)
    header = _("📜 <b>{name}</b> — last {n} lines").format(name=escape(target.ref(caller.id)), n=lines)
    text = formatting.log_block(header, logs)
    return text, keyboards.logs(target.owner, target.name, lines)


def parse_lines(rest: list[str]) -> int:
    if not rest:
        return DEFAULT_LINES
    if len(rest) == 1 and rest[0].isdigit() and 1 <= int(rest[0]) <= MAX_LINES:
        return int(rest[0])
    raise Refusal(_("Usage: /logs name [lines], with lines from 1 to {max}.").format(max=MAX_LINES))


@router.message(Command("logs"))
async def cmd_logs(message: Message, command: CommandObject, caller: Caller, gateway: Gateway) -> None:
    target, rest = target_args(command.args, caller.id, caller.admin, _("Usage: /logs name [lines]"))
    lines = parse_lines(rest)
    text, markup = await render(gateway, caller, target, lines)
    await message.answer(text, reply_markup=markup)


@router.callback_query(BotCb.filter(F.action == BotAction.LOGS))
async def press_logs(
    query: CallbackQuery, callback_data: BotCb, bot: Bot, caller: Caller, gateway: Gateway
) -> None:
    target = press_target(caller, callback_data.owner, callback_data.name)
    text, markup = await render(gateway, caller, target, DEFAULT_LINES)
    await query.answer()
    await bot.send_message(query.from_user.id, text, reply_markup=markup)


@router.callback_query(LogsCb.filter(F.action == LogsAction.REFRESH))
async def press_refresh(
    query: CallbackQuery, callback_data: LogsCb, caller: Caller, gateway: Gateway
) -> None:
    target = press_target(caller, callback_data.owner, callback_data.name)
    lines = min(max(callback_data.lines, 1), MAX_LINES)
    text, markup = await render(gateway, caller, target, lines)
    if isinstance(query.message, Message):
        try:
            await query.message.edit_text(text, reply_markup=markup)
        except TelegramBadRequest as e:
            if "not modified" not in str(e).lower():
                raise
            await query.answer(_("No new lines."))
            return
    await query.answer(_("Refreshed."))


@router.callback_query(LogsCb.filter(F.action == LogsAction.FULL))
async def press_full(
    query: CallbackQuery, callback_data: LogsCb, bot: Bot, caller: Caller, gateway: Gateway
) -> None:
    target = press_target(caller, callback_data.owner, callback_data.name)
    data = (await gateway.logs(caller, target, tail=FULL_LOG_LINES)).encode()
    if len(data) > MAX_DOCUMENT_BYTES:
        data = data[-MAX_DOCUMENT_BYTES:]
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    filename = f"{target.name}-{stamp}.txt"
    await query.answer()
    caption = _("📄 Full log of <b>{name}</b>").format(name=escape(target.ref(caller.id)))
    await bot.send_document(
        query.from_user.id, BufferedInputFile(data or b"(empty)\n", filename=filename), caption=caption
    )
