"""The control bot's Prometheus metrics: commands sent, Telegram updates taken, Bot API errors met.

Labels are bounded: an op, a result (ok or an error code), an update type, an HTTP status. None ever
carries env or user text. Served at `/metrics` on the API's port (see controlbot/api/app.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiogram.client.session.middlewares.base import NextRequestMiddlewareType
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import TelegramObject, Update
from prometheus_client import Counter, Histogram

from controlbot.middlewares import Handler
from protocol import prometheus

if TYPE_CHECKING:
    from aiogram import Bot

REGISTRY = prometheus.registry()

COMMANDS = Counter(
    "botrunner_commands_total",
    "Commands sent to the runner, by op and result (ok or the error code).",
    ["op", "result"],
    registry=REGISTRY,
)
COMMAND_DURATION = Histogram(
    "botrunner_command_duration_seconds",
    "Time from sending a command to its result, by op.",
    ["op"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
    registry=REGISTRY,
)
UPDATES = Counter(
    "botrunner_telegram_updates_total",
    "Telegram updates the control bot received, by type.",
    ["type"],
    registry=REGISTRY,
)
API_ERRORS = Counter(
    "botrunner_telegram_api_errors_total",
    "Bot API calls that failed, by HTTP status ('network' when none came back).",
    ["code"],
    registry=REGISTRY,
)

# aiogram raises by class, not with the status: map each back to it.
_CODES: list[tuple[type[TelegramAPIError], str]] = [
    (TelegramRetryAfter, "429"),
    (TelegramEntityTooLarge, "413"),
    (TelegramBadRequest, "400"),
    (TelegramUnauthorizedError, "401"),
    (TelegramForbiddenError, "403"),
    (TelegramNotFound, "404"),
    (TelegramConflictError, "409"),
    (TelegramServerError, "5xx"),
    (TelegramNetworkError, "network"),
]
_UPDATE_TYPES = frozenset(Update.model_fields) - {"update_id"}


def error_code(exc: TelegramAPIError) -> str:
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return "other"


async def count_api_error(
    make_request: NextRequestMiddlewareType[TelegramType], bot: Bot, method: TelegramMethod[TelegramType]
) -> Response[TelegramType]:
    """A request middleware on the bot's session: one count per failed Bot API call, by status."""
    try:
        return await make_request(bot, method)
    except TelegramAPIError as e:
        API_ERRORS.labels(error_code(e)).inc()
        raise


async def count_update(handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
    """An outer middleware on dp.update: one count per update, by its type."""
    if isinstance(event, Update):
        kind = event.event_type
        UPDATES.labels(kind if kind in _UPDATE_TYPES else "other").inc()
    return await handler(event, data)
