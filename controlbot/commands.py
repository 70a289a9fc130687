"""The command menu: registered with setMyCommands in every language, and listed by /help."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommand, BotCommandScopeChat
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from controlbot.i18n import DEFAULT_LOCALE, LOCALES

log = logging.getLogger(__name__)


def user_commands() -> list[tuple[str, str]]:
    return [
        ("start", _("what this bot is")),
        ("help", _("how to use it")),
        ("start_bot", _("deploy a .py/.zip (caption) or a repo (--git URL), or start a stopped bot")),
        ("update", _("new code: /update name with a .py/.zip, or pull a git bot's branch")),
        ("list", _("your bots")),
        ("status", _("a bot's card: /status name")),
        ("logs", _("a bot's last log lines: /logs name [lines]")),
        ("stop", _("stop a bot: /stop name")),
        ("restart", _("restart a bot: /restart name")),
        ("delete", _("delete a bot: /delete name")),
        ("env", _("set or unset env vars: /env name KEY=VALUE -KEY")),
        ("quota", _("your bots against your limit (admins: /quota user_id n sets one)")),
        ("backup", _("a bot's /data as a .tar.gz: /backup name [daily|off|list]")),
        ("restore", _("replace a bot's /data: a .tar.gz with the caption /restore name")),
        ("chart", _("a bot's memory and CPU as a chart: /chart name [1h|24h|7d]")),
        ("history", _("what was done to a bot, by whom: /history name")),
        ("releases", _("a bot's releases: /releases name")),
        ("rollback", _("run an earlier release again: /rollback name [N]")),
        ("cancel", _("cancel the current step")),
    ]


def admin_commands() -> list[tuple[str, str]]:
    return [
        ("system", _("admin: runner and Docker health")),
        ("top", _("admin: every bot by memory (/top cpu: by CPU)")),
        ("audit", _("admin: the audit trail: /audit [user ID | bot OWNER/NAME]")),
    ]


def _as_bot_commands(pairs: list[tuple[str, str]]) -> list[BotCommand]:
    return [BotCommand(command=c, description=d) for c, d in pairs]


async def register(bot: Bot, i18n: I18n, admin_ids: list[int]) -> None:
    """Set the menu for everyone, per language, and the admin menu in each admin's chat."""
    for locale in LOCALES:
        language = None if locale == DEFAULT_LOCALE else locale
        with i18n.context(), i18n.use_locale(locale):
            users = user_commands()
            admins = users + admin_commands()
        await bot.set_my_commands(_as_bot_commands(users), language_code=language)
        for admin in admin_ids:
            try:
                await bot.set_my_commands(
                    _as_bot_commands(admins), scope=BotCommandScopeChat(chat_id=admin), language_code=language
                )
            except TelegramAPIError as e:  # the admin has not opened a chat with the bot yet
                log.info("admin menu not set for %s: %s", admin, e)
