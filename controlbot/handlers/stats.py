"""/chart and the card's 📈 Chart button (a PNG of memory and CPU), and the admins' /top."""

from __future__ import annotations

from html import escape

from aiogram import Bot, F, Router
from aiogram.enums import ChatAction
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from controlbot import charts, formatting
from controlbot.callbacks import BotAction, BotCb
from controlbot.gateway import Caller, Gateway, Target, press_target
from controlbot.handlers.admin import require_admin
from controlbot.parsing import target_choice

router = Router(name="stats")

TOP_LINES = 30


async def send_chart(
    bot: Bot, chat_id: int, caller: Caller, gateway: Gateway, target: Target, span: str
) -> None:
    seconds = charts.RANGES[span]
    stats = await gateway.stats(caller, target, seconds)
    await bot.send_chat_action(chat_id, ChatAction.UPLOAD_PHOTO)
    title = f"{target.ref(caller.id)} · {span}"
    png = await charts.chart(stats, title, seconds)
    caption = _("📈 <b>{name}</b>, last {span}: memory and CPU against their limits.").format(
        name=escape(target.ref(caller.id)), span=span
    )
    if not stats.samples:
        caption += "\n" + _("No samples yet: they are taken while the bot runs.")
    await bot.send_photo(chat_id, BufferedInputFile(png, f"{target.name}-{span}.png"), caption=caption)


@router.message(Command("chart"))
async def cmd_chart(
    message: Message, command: CommandObject, bot: Bot, caller: Caller, gateway: Gateway
) -> None:
    target, span = target_choice(
        command.args, caller.id, caller.admin, _("Usage: /chart name [1h|24h|7d]"), charts.RANGES
    )
    await send_chart(bot, message.chat.id, caller, gateway, target, span or charts.DEFAULT_RANGE)


@router.callback_query(BotCb.filter(F.action == BotAction.CHART))
async def press_chart(
    query: CallbackQuery, callback_data: BotCb, bot: Bot, caller: Caller, gateway: Gateway
) -> None:
    target = press_target(caller, callback_data.owner, callback_data.name)
    await query.answer()
    await send_chart(bot, query.from_user.id, caller, gateway, target, charts.DEFAULT_RANGE)


@router.message(Command("top"))
async def cmd_top(message: Message, command: CommandObject, caller: Caller, gateway: Gateway) -> None:
    require_admin(caller)
    by_cpu = (command.args or "").strip().lower() == "cpu"
    bots = await gateway.top(caller)
    if by_cpu:
        bots.sort(key=lambda b: -(b.cpu_percent or 0))
    if not bots:
        await message.answer(_("No bots are hosted yet."))
        return
    header = _("📊 <b>Top bots by CPU</b>") if by_cpu else _("📊 <b>Top bots by memory</b>")
    lines = [header]
    for b in bots[:TOP_LINES]:
        cpu = "—" if b.cpu_percent is None else f"{b.cpu_percent:.1f}%"
        lines.append(
            f"{formatting.STATE_ICONS.get(b.state, '⚪')} <code>{b.owner}/{escape(b.name)}</code> "
            f"{formatting.size(b.memory_bytes)} · {cpu}"
        )
    if len(bots) > TOP_LINES:
        lines.append(_("… and {n} more").format(n=len(bots) - TOP_LINES))
    await message.answer(formatting.join_fitting(lines))
