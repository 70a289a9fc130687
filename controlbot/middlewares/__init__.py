"""Outer middlewares of the control bot: locale first, then access control."""

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram.types import TelegramObject

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]
"""The next handler an aiogram middleware passes the event to."""
