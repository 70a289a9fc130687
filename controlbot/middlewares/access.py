"""Access control: only admins and allowed users get past; a stranger is refused once."""

from __future__ import annotations

import logging
import time
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, TelegramObject, User
from aiogram.utils.i18n import gettext as _

from controlbot.gateway import Caller
from controlbot.middlewares import Handler
from controlbot.settings import Settings

log = logging.getLogger(__name__)

# A stranger hears the refusal once per this many seconds, however often they write.
REFUSAL_INTERVAL_S = 3600.0


class AccessMiddleware(BaseMiddleware):
    """Sets `caller` in the handler data for known users; refuses everyone else, politely, once."""

    def __init__(self, settings: Settings, refusal_interval: float = REFUSAL_INTERVAL_S) -> None:
        self.settings = settings
        self.refusal_interval = refusal_interval
        self._refused: dict[int, float] = {}

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None or user.is_bot:
            return None
        if self.settings.is_allowed(user.id):
            i18n = data.get("i18n")
            locale = i18n.current_locale if i18n is not None else "en"
            data["caller"] = Caller(id=user.id, admin=self.settings.is_admin(user.id), locale=locale)
            return await handler(event, data)
        await self._refuse(event, user)
        return None

    async def _refuse(self, event: TelegramObject, user: User) -> None:
        now = time.monotonic()
        last = self._refused.get(user.id)
        if last is not None and now - last < self.refusal_interval:
            if isinstance(event, CallbackQuery):
                await event.answer()  # stop the button's spinner, say nothing more
            return
        self._refused[user.id] = now
        log.info("refused user=%s (not in ADMIN_IDS or ALLOWED_USER_IDS)", user.id)
        text = _(
            "Sorry, this bot is private. Your Telegram user id is <code>{id}</code>: "
            "send it to an admin if you should have access."
        ).format(id=user.id)
        if isinstance(event, Message):
            await event.answer(text)
        elif isinstance(event, CallbackQuery):
            await event.answer()
            if event.bot is not None:
                await event.bot.send_message(user.id, text)
