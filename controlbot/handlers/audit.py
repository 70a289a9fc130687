"""/audit (admins: who changed what, with paging and filters) and /history name (a user's own bot)."""

from __future__ import annotations

import time
from html import escape

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from controlbot import formatting
from controlbot.audit import AuditEntry, AuditQuery
from controlbot.callbacks import AuditCb
from controlbot.errors import Refusal
from controlbot.gateway import Caller, Gateway
from controlbot.handlers.admin import require_admin
from controlbot.parsing import check_name, parse_target, split_args, target_args

router = Router(name="audit")

PAGE = 20


def entry_line(e: AuditEntry) -> str:
    when = time.strftime("%m-%d %H:%M", time.gmtime(e.ts))
    icon = "✅" if e.result == "ok" else "❌"
    bot = f" <code>{e.owner}/{escape(e.bot)}</code>" if e.bot else ""
    detail = f" ({escape(e.detail)})" if e.detail else ""
    result = "" if e.result == "ok" else f" {escape(e.result)}"
    return (
        f"{icon} {when} <code>{e.actor}</code> {escape(e.action)}{bot}{detail} · {escape(e.channel)}{result}"
    )


def page_text(header: str, entries: list[AuditEntry]) -> str:
    if not entries:
        return header + "\n" + _("Nothing recorded yet.")
    return formatting.join_fitting([header, *map(entry_line, entries)])


def pager(cb: AuditCb, more: bool) -> InlineKeyboardMarkup | None:
    kb = InlineKeyboardBuilder()
    if cb.page > 0:
        kb.button(text=_("⬅️ Newer"), callback_data=cb.model_copy(update={"page": cb.page - 1}))
    if more:
        kb.button(text=_("Older ➡️"), callback_data=cb.model_copy(update={"page": cb.page + 1}))
    return kb.as_markup() if cb.page > 0 or more else None


async def audit_page(
    caller: Caller, gateway: Gateway, cb: AuditCb
) -> tuple[str, InlineKeyboardMarkup | None]:
    query = AuditQuery(actor=cb.actor or None, owner=cb.owner or None, bot=cb.bot or None)
    entries = await gateway.audit_log(caller, query, limit=PAGE + 1, offset=cb.page * PAGE)
    header = _("📒 <b>Audit trail</b>, page {page}").format(page=cb.page + 1)
    if cb.bot:
        header = _("📒 <b>History of {name}</b>, page {page}").format(
            name=escape(f"{cb.owner}/{cb.bot}" if cb.owner != caller.id else cb.bot), page=cb.page + 1
        )
    return page_text(header, entries[:PAGE]), pager(cb, len(entries) > PAGE)


def parse_audit(args: list[str], caller: Caller) -> AuditCb:
    usage = _("Usage: /audit, /audit user ID, or /audit bot OWNER/NAME")
    if not args:
        return AuditCb(page=0)
    if len(args) == 2 and args[0] == "user" and args[1].isdigit():
        return AuditCb(page=0, actor=int(args[1]))
    if len(args) == 2 and args[0] == "bot" and "/" in args[1]:
        target = parse_target(args[1], caller.id, caller.admin)
        return AuditCb(page=0, owner=target.owner, bot=target.name)
    raise Refusal(usage)


@router.message(Command("audit"))
async def cmd_audit(message: Message, command: CommandObject, caller: Caller, gateway: Gateway) -> None:
    require_admin(caller)
    text, markup = await audit_page(caller, gateway, parse_audit(split_args(command.args), caller))
    await message.answer(text, reply_markup=markup)


@router.message(Command("history"))
async def cmd_history(message: Message, command: CommandObject, caller: Caller, gateway: Gateway) -> None:
    target, _rest = target_args(command.args, caller.id, caller.admin, _("Usage: /history name"))
    cb = AuditCb(page=0, owner=target.owner, bot=check_name(target.name))
    text, markup = await audit_page(caller, gateway, cb)
    await message.answer(text, reply_markup=markup)


@router.callback_query(AuditCb.filter())
async def press_page(query: CallbackQuery, callback_data: AuditCb, caller: Caller, gateway: Gateway) -> None:
    # A forged page is harmless: the gateway narrows a non-admin's query to their own bots.
    if not caller.admin and not callback_data.bot:
        require_admin(caller)
    text, markup = await audit_page(caller, gateway, callback_data)
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.edit_text(text, reply_markup=markup)
