"""aiogram's SimpleI18nMiddleware that also remembers each user's language in Redis,
so messages sent unasked (crash alerts) speak it too."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiogram.types import TelegramObject
from aiogram.utils.i18n import I18n, SimpleI18nMiddleware
from redis.asyncio import Redis
from redis.exceptions import RedisError

from protocol import keys

log = logging.getLogger(__name__)


class LocaleMiddleware(SimpleI18nMiddleware):
    def __init__(self, i18n: I18n, redis: Redis, remember: Callable[[int], bool]) -> None:
        super().__init__(i18n)
        self.redis = redis
        self.remember = remember  # only users who may use the bot get a key
        self._known: dict[int, str] = {}

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        locale = await super().get_locale(event, data)
        user = data.get("event_from_user")
        if user is not None and self.remember(user.id) and self._known.get(user.id) != locale:
            try:
                await self.redis.set(keys.user_locale(user.id), locale)
                self._known[user.id] = locale
            except RedisError:
                log.warning("could not record the language of user=%s", user.id)
        return locale
