"""Respect Telegram's flood control: on 429, wait `retry_after` and send again."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import GetUpdates, Response, TelegramMethod
from aiogram.methods.base import TelegramType

if TYPE_CHECKING:
    from aiogram import Bot

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# A wait longer than this is not worth holding a handler for; the error surfaces instead.
MAX_WAIT_S = 120


class RetryAfterMiddleware(BaseRequestMiddleware):
    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        polling = isinstance(method, GetUpdates)  # the polling loop has its own backoff
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as e:
                if polling or attempt == MAX_ATTEMPTS or e.retry_after > MAX_WAIT_S:
                    raise
                log.warning(
                    "429 on %s: waiting %s s (attempt %d)", type(method).__name__, e.retry_after, attempt
                )
                await asyncio.sleep(e.retry_after)
        raise AssertionError("unreachable")
