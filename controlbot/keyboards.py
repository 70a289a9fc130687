"""Inline keyboards, built only from the CallbackData factories in `callbacks`."""

from __future__ import annotations

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from controlbot import dashboard
from controlbot.callbacks import (
    BotAction,
    BotCb,
    FlowAction,
    FlowCb,
    LogsAction,
    LogsCb,
    MenuAction,
    MenuCb,
    ReleaseLogsCb,
)
from controlbot.formatting import STATE_ICONS
from protocol.models import BotState, BotStatus


def menu() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("📋 My bots"), callback_data=MenuCb(action=MenuAction.LIST))
    kb.button(text=_("🚀 Deploy a bot"), callback_data=MenuCb(action=MenuAction.DEPLOY))
    kb.button(text=_("❓ Help"), callback_data=MenuCb(action=MenuAction.HELP))
    kb.adjust(2, 1)
    dashboard.add_row(kb)
    return kb.as_markup()


def card(bot: BotStatus, *, webhook: bool = False) -> InlineKeyboardMarkup:
    """Logs, Restart, Stop/Start, Update, Delete: the buttons under a status card; Remove webhook
    first when a webhook keeps the bot from polling."""
    kb = InlineKeyboardBuilder()

    def add(text: str, action: BotAction) -> None:
        kb.button(text=text, callback_data=BotCb(action=action, owner=bot.owner, name=bot.name))

    add(_("📜 Logs"), BotAction.LOGS)
    add(_("🔄 Restart"), BotAction.RESTART)
    if bot.state in (BotState.STOPPED, BotState.CRASHED, BotState.MISSING):
        add(_("▶️ Start"), BotAction.START)
    else:
        add(_("⏹ Stop"), BotAction.STOP)
    add(_("⬆️ Update"), BotAction.UPDATE)
    add(_("🗑 Delete"), BotAction.DELETE)
    add(_("📈 Chart"), BotAction.CHART)
    extra = 0
    if bot.previous_release is not None:
        add(_("⏪ Rollback"), BotAction.ROLLBACK)
        extra += 1
    if webhook:
        add(_("🧹 Remove webhook"), BotAction.DELETE_WEBHOOK)
        extra += 1
    kb.adjust(3, 3, *([extra] if extra else []))
    dashboard.add_row(kb)
    return kb.as_markup()


def alert(owner: int, name: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("📜 Logs"), callback_data=BotCb(action=BotAction.LOGS, owner=owner, name=name))
    kb.button(text=_("🔄 Restart"), callback_data=BotCb(action=BotAction.RESTART, owner=owner, name=name))
    kb.button(text=_("⏹ Stop"), callback_data=BotCb(action=BotAction.STOP, owner=owner, name=name))
    kb.adjust(3)
    return kb.as_markup()


def delete_confirm(owner: int, name: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("🗑 Yes, delete"), callback_data=BotCb(action=BotAction.DELETE_CONFIRM, owner=owner, name=name)
    )
    kb.button(
        text=_("✖️ Keep it"), callback_data=BotCb(action=BotAction.DELETE_CANCEL, owner=owner, name=name)
    )
    kb.adjust(2)
    return kb.as_markup()


def logs(owner: int, name: str, lines: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("🔄 Refresh"),
        callback_data=LogsCb(action=LogsAction.REFRESH, owner=owner, name=name, lines=lines),
    )
    kb.button(
        text=_("📄 Full log"),
        callback_data=LogsCb(action=LogsAction.FULL, owner=owner, name=name, lines=lines),
    )
    kb.button(text=_("⏮ Previous release"), callback_data=ReleaseLogsCb(owner=owner, name=name, release=0))
    kb.adjust(2, 1)
    return kb.as_markup()


def release_logs(owner: int, name: str, older: int | None) -> InlineKeyboardMarkup | None:
    """Under a kept release's output: the one before it, when it has kept output too."""
    if older is None:
        return None
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("⏮ Release {n}").format(n=older),
        callback_data=ReleaseLogsCb(owner=owner, name=name, release=older),
    )
    return kb.as_markup()


def bot_list(bots: list[BotStatus], viewer: int) -> InlineKeyboardMarkup | None:
    kb = InlineKeyboardBuilder()
    for bot in bots[:90]:  # Telegram caps a keyboard at 100 buttons
        label = bot.name if bot.owner == viewer else f"{bot.owner}/{bot.name}"
        kb.button(
            text=f"{STATE_ICONS.get(bot.state, '⚪')} {label}",
            callback_data=BotCb(action=BotAction.CARD, owner=bot.owner, name=bot.name),
        )
    kb.adjust(2)
    dashboard.add_row(kb)
    return kb.as_markup() if list(kb.buttons) else None


def _flow(*buttons: tuple[str, FlowAction]) -> InlineKeyboardMarkup:
    """A step of the guided deploy: its own buttons, then Cancel, side by side."""
    kb = InlineKeyboardBuilder()
    for text, action in (*buttons, (_("✖️ Cancel"), FlowAction.CANCEL)):
        kb.button(text=text, callback_data=FlowCb(action=action))
    kb.adjust(2)
    return kb.as_markup()


def flow_env() -> InlineKeyboardMarkup:
    return _flow((_("⏭ No variables"), FlowAction.SKIP_ENV))


def flow_cancel() -> InlineKeyboardMarkup:
    return _flow()


def flow_confirm() -> InlineKeyboardMarkup:
    return _flow((_("🚀 Deploy"), FlowAction.CONFIRM))
