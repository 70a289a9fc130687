"""Assembly: the Bot, the Dispatcher with its middlewares and routers, and the process lifetime."""

from __future__ import annotations

import asyncio
import logging

from aiogram import Bot, Dispatcher, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.utils.i18n import I18n
from redis.asyncio import Redis

from controlbot import commands, dashboard, errors
from controlbot.alerts import AlertConsumer
from controlbot.api import serve
from controlbot.audit import AuditLog
from controlbot.gateway import Gateway
from controlbot.handlers import (
    admin,
    audit,
    backups,
    cancel,
    deploy,
    env,
    fallback,
    flow,
    listing,
    logs,
    manage,
    releases,
    start,
    stats,
    status,
    token,
)
from controlbot.i18n import create_i18n
from controlbot.metrics import count_api_error, count_update
from controlbot.middlewares.access import AccessMiddleware
from controlbot.middlewares.groups import PrivateEnvMiddleware
from controlbot.middlewares.locale import LocaleMiddleware
from controlbot.ratelimit import RateLimiter
from controlbot.retry import RetryAfterMiddleware
from controlbot.settings import Settings
from controlbot.telegram_check import TokenChecker
from protocol.aio import cancel_and_wait
from protocol.client import RunnerClient, blocking_pool

log = logging.getLogger(__name__)

REDIS_READ_TIMEOUT_S = 15.0


def create_bot(settings: Settings) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    session.middleware(RetryAfterMiddleware())
    session.middleware(count_api_error)  # inside the retries: each failed call counts once
    return Bot(settings.bot_token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


def routers(settings: Settings) -> list[Router]:
    """Feature routers, in the order they get a chance at an update. /cancel first, fallback last."""
    found: list[Router] = [
        errors.router,
        cancel.router,
        start.router,
        deploy.router,
        manage.router,
        status.router,
        logs.router,
        env.router,
        listing.router,
        admin.router,
        backups.router,
        stats.router,
        audit.router,
        releases.router,
    ]
    if settings.api_enabled:
        found.append(token.router)
    # The flow takes stray files and texts while it waits for them, so only after every command.
    found += [flow.router, fallback.router]
    return found


def create_gateway(settings: Settings, runner: RunnerClient) -> Gateway:
    return Gateway(
        runner,
        bot_token=settings.bot_token,
        max_upload_bytes=settings.max_upload_bytes,
        telegram=TokenChecker(settings.telegram_api_url),
        max_backup_bytes=settings.max_backup_bytes,
        limiter=RateLimiter(runner.redis, settings.rate_limit_per_minute),
        audit=AuditLog(runner.redis, settings.audit_max_entries),
    )


def create_dispatcher(settings: Settings, gateway: Gateway, redis: Redis, i18n: I18n) -> Dispatcher:
    dp = Dispatcher(storage=MemoryStorage(), settings=settings, gateway=gateway, redis=redis, i18n=i18n)
    LocaleMiddleware(i18n, redis, remember=settings.is_allowed).setup(dp)
    access = AccessMiddleware(settings)  # after the locale middleware, so the refusal is translated
    dp.update.outer_middleware(count_update)
    dp.message.outer_middleware(access)
    dp.callback_query.outer_middleware(access)
    if settings.webapp_url:
        dp.update.outer_middleware(dashboard.DashboardMiddleware(settings.webapp_url))
    dp.message.outer_middleware(PrivateEnvMiddleware())  # env values never stay in a group chat
    dp.include_routers(*routers(settings))
    return dp


def _report_end(task: asyncio.Task[None]) -> None:
    """A background task must not die silently: say so in the log."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("background task %s died", task.get_name(), exc_info=exc)


async def run(settings: Settings) -> None:
    """Poll Telegram until SIGINT/SIGTERM, with crash alerts and the HTTP API alongside."""
    # redis-py 8 times reads out after 5 s by default: blocking reads (the alerts' XREADGROUP, the
    # replies listener's XREAD) get a margin above the longest block instead. The pool is sized on
    # purpose and waits for a free connection: a burst queues for milliseconds instead of failing.
    redis = blocking_pool(settings.redis_url, socket_timeout=REDIS_READ_TIMEOUT_S, socket_connect_timeout=5)
    runner = RunnerClient(redis)
    gateway = create_gateway(settings, runner)
    i18n = create_i18n()
    bot = create_bot(settings)
    dp = create_dispatcher(settings, gateway, redis, i18n)
    tasks: list[asyncio.Task[None]] = []

    async def on_startup() -> None:
        try:
            await commands.register(bot, i18n, settings.admin_ids)
        except Exception:  # the menu is a nicety; polling must start regardless
            log.exception("setMyCommands failed")
        if settings.webapp_url:
            try:
                await dashboard.set_menu_button(bot, settings.webapp_url)
            except Exception:  # a nicety too
                log.exception("setChatMenuButton failed")
        tasks.append(asyncio.create_task(AlertConsumer(bot, redis, i18n).run(), name="alerts"))
        if settings.api_enabled:
            tasks.append(asyncio.create_task(serve(settings, gateway, redis), name="http-api"))
        for task in tasks:
            task.add_done_callback(_report_end)
        log.info("control bot started; admins=%s", settings.admin_ids)

    async def on_shutdown() -> None:
        await cancel_and_wait(tasks, timeout=5)  # one cancel may be dropped (protocol/aio.py)
        log.info("control bot stopped")

    dp.startup.register(on_startup)
    dp.shutdown.register(on_shutdown)
    try:
        await dp.start_polling(bot, close_bot_session=True)
    finally:
        await runner.close()
        await redis.aclose()
