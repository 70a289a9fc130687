"""/releases and /rollback, the card's "⏪ Rollback" button, and the kept logs of earlier releases."""

from __future__ import annotations

import time
from html import escape

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from babel.support import LazyProxy

from controlbot import cards, formatting, gatewatch, keyboards
from controlbot.callbacks import BotAction, BotCb, ReleaseLogsCb
from controlbot.errors import Refusal
from controlbot.gateway import Caller, Gateway, Target, press_target
from controlbot.parsing import target_args
from protocol.models import Op, ReleaseInfo, Result, SourceKind

router = Router(name="releases")


# What a release's line calls the operation that made it.
OP_NAMES: dict[Op, LazyProxy] = {
    Op.START: __("deploy"),
    Op.UPDATE: __("update"),
    Op.ROLLBACK: __("rollback"),
    Op.SET_ENV: __("env change"),
}


def release_line(rel: ReleaseInfo, viewer: int) -> str:
    """#N · age · what made it · source · commit or sha · who · current / failed."""
    src = rel.source
    if src.kind is SourceKind.GIT:
        code = f"git <code>{escape((src.commit or '?')[:7])}</code>"
    else:
        sha = f" <code>{escape(src.sha256[:8])}</code>" if src.sha256 else ""
        code = f"{escape(src.filename or src.kind.value)}{sha}"
    who = _("you") if rel.actor == viewer else (str(rel.actor) if rel.actor is not None else _("the runner"))
    what = formatting.enum_name(OP_NAMES, rel.op)
    if rel.restored is not None:
        what += " " + _("to {n}").format(n=rel.restored)
    age = _("{age} ago").format(age=formatting.duration(time.time() - rel.created_at))
    line = f"<b>#{rel.number}</b> · {age} · {escape(what)} · {code} · {escape(who)}"
    if rel.current:
        line += " · " + _("✅ current")
    if rel.failed:
        line += " · " + _("💥 failed")
    return line


def releases_text(target: Target, caller: Caller, releases: list[ReleaseInfo]) -> str:
    header = _("📦 Releases of <b>{name}</b>:").format(name=escape(target.ref(caller.id)))
    if not releases:
        return header + "\n" + _("none yet")
    lines = [release_line(r, caller.id) for r in releases]
    return formatting.join_fitting([header, *lines])


def parse_release(rest: list[str]) -> int | None:
    if not rest:
        return None
    if len(rest) == 1 and rest[0].lstrip("#").isdigit():
        return int(rest[0].lstrip("#"))
    raise Refusal(_("Usage: /rollback name [N], N being a release number from /releases."))


@router.message(Command("releases"))
async def cmd_releases(message: Message, command: CommandObject, caller: Caller, gateway: Gateway) -> None:
    target, _rest = target_args(command.args, caller.id, caller.admin, _("Usage: /releases name"))
    result = await gateway.releases(caller, target)
    markup = None
    if result.bot is not None and result.bot.previous_release is not None:
        markup = keyboards.card(result.bot)
    await message.answer(releases_text(target, caller, result.releases or []), reply_markup=markup)


def rolled_back_text(result: Result, target: Target, caller: Caller, restored: int | None) -> str:
    bot = result.bot
    head = _("⏪ <b>{name}</b>: release {m} runs again, as release {n}.").format(
        name=escape(target.ref(caller.id)),
        m=restored if restored is not None else "?",
        n=bot.release if bot else "?",
    )
    if bot is not None and bot.checking:
        head += "\n" + gatewatch.checking_line()
    return head


async def rollback(
    message: Message, gateway: Gateway, caller: Caller, target: Target, number: int | None
) -> None:
    """Roll back and answer with the card; the health gate's verdict edits that answer later."""
    result = await gateway.rollback(caller, target, number)
    restored = result.releases[0].restored if result.releases else number
    text, markup = cards.with_card(rolled_back_text(result, target, caller, restored), result.bot, caller.id)
    sent = await message.answer(text, reply_markup=markup)
    if result.bot is not None and result.bot.checking:
        await gatewatch.remember(gateway.runner.redis, result.request_id, sent, caller.locale, text, markup)


@router.message(Command("rollback"))
async def cmd_rollback(message: Message, command: CommandObject, caller: Caller, gateway: Gateway) -> None:
    target, rest = target_args(command.args, caller.id, caller.admin, _("Usage: /rollback name [N]"))
    await rollback(message, gateway, caller, target, parse_release(rest))


@router.callback_query(BotCb.filter(F.action == BotAction.ROLLBACK))
async def press_rollback(
    query: CallbackQuery, callback_data: BotCb, caller: Caller, gateway: Gateway
) -> None:
    target = press_target(caller, callback_data.owner, callback_data.name)
    await query.answer(_("Rolling back…"))
    if isinstance(query.message, Message):
        await rollback(query.message, gateway, caller, target, None)


@router.callback_query(ReleaseLogsCb.filter())
async def press_release_logs(
    query: CallbackQuery, callback_data: ReleaseLogsCb, bot: Bot, caller: Caller, gateway: Gateway
) -> None:
    """The kept output of an earlier release (0: the one before the current release)."""
    target = press_target(caller, callback_data.owner, callback_data.name)
    releases = (await gateway.releases(caller, target)).releases or []
    current = next((r.number for r in releases if r.current), 0)
    wanted = callback_data.release or current
    older = [r for r in releases if r.number < wanted and r.has_logs]  # newest first
    shown = older[0] if callback_data.release == 0 and older else None
    if callback_data.release:
        shown = next((r for r in releases if r.number == callback_data.release), None)
    if shown is None:
        await query.answer(_("No earlier release has kept logs."), show_alert=True)
        return
    logs = await gateway.logs(caller, target, tail=100_000, release=shown.number)
    header = _("📜 <b>{name}</b> — release {n}, its last lines before it was replaced").format(
        name=escape(target.ref(caller.id)), n=shown.number
    )
    before = next((r.number for r in releases if r.number < shown.number and r.has_logs), None)
    await query.answer()
    await bot.send_message(
        query.from_user.id,
        formatting.log_block(header, logs),
        reply_markup=keyboards.release_logs(target.owner, target.name, before),
    )
