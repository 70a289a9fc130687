"""The chat's ways into the Mini App dashboard, when WEBAPP_URL is set.

A "🖥 Dashboard" `web_app` button goes under /start, /list and each card, and the chat's menu
button opens the dashboard. `web_app` buttons cannot carry callback data, so they are plain
InlineKeyboardButtons. The URL reaches the keyboard builders the way aiogram's i18n reaches
gettext: a context variable set per update by DashboardMiddleware; unset, nothing changes.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.types import InlineKeyboardButton, MenuButtonWebApp, TelegramObject, WebAppInfo
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from controlbot.middlewares import Handler

log = logging.getLogger(__name__)

MENU_TEXT = "Dashboard"
_url: ContextVar[str | None] = ContextVar("webapp_url", default=None)


class DashboardMiddleware(BaseMiddleware):
    """Makes WEBAPP_URL known to the keyboards built while an update is handled."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        token = _url.set(self.url)
        try:
            return await handler(event, data)
        finally:
            _url.reset(token)


def button() -> InlineKeyboardButton | None:
    url = _url.get()
    if url is None:
        return None
    return InlineKeyboardButton(text=_("🖥 Dashboard"), web_app=WebAppInfo(url=url))


def add_row(kb: InlineKeyboardBuilder) -> None:
    """The Dashboard button on a row of its own, when there is a dashboard."""
    if (dashboard := button()) is not None:
        kb.row(dashboard)


async def set_menu_button(bot: Bot, url: str) -> None:
    """Every chat's menu button opens the dashboard."""
    await bot.set_chat_menu_button(menu_button=MenuButtonWebApp(text=MENU_TEXT, web_app=WebAppInfo(url=url)))
    log.info("menu button opens the dashboard at %s", url)
