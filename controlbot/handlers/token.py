"""/token issues a personal API token for the CLI and HTTP API; /token revoke invalidates it."""

from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.enums import ChatType, ParseMode
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _
from redis.asyncio import Redis

from controlbot import tokens
from controlbot.gateway import Caller, Gateway
from controlbot.settings import Settings
from protocol.errors import BotrunnerError, ErrorCode

log = logging.getLogger(__name__)
router = Router(name="token")


@router.message(Command("token"), F.from_user)
async def cmd_token(
    message: Message,
    command: CommandObject,
    redis: Redis,
    settings: Settings,
    caller: Caller,
    gateway: Gateway,
) -> None:
    assert message.from_user is not None  # guaranteed by the F.from_user filter
    user_id = message.from_user.id
    if not settings.is_allowed(user_id):
        raise BotrunnerError("not allowed", code=ErrorCode.FORBIDDEN)
    arg = (command.args or "").strip().lower()
    if arg == "revoke":
        revoked = await tokens.revoke(redis, user_id)
        log.info("api token revoked owner=%s had_token=%s", user_id, revoked)
        await gateway.record(caller, "token_revoke", "ok" if revoked else "NOT_FOUND")
        text = _("🔒 Your API token is revoked.") if revoked else _("You have no API token to revoke.")
        await message.answer(text)
        return
    if arg:
        await message.answer(_("Usage: /token issues an API token, /token revoke invalidates it."))
        return
    if message.chat.type != ChatType.PRIVATE:
        # Anyone in a group would read the token.
        await message.answer(_("Send /token to me in a private chat: a token must not be shown in a group."))
        return
    token = await tokens.issue(redis, user_id)
    log.info("api token issued owner=%s", user_id)
    await gateway.record(caller, "token_issue")
    text = "\n".join(
        [
            _("🔑 Your API token. It is shown only this once, so store it now:"),
            f"<code>{token}</code>",
            "",
            _(
                "Use it with the CLI: <code>export BOTRUNNER_TOKEN=…</code>, "
                "or send it as <code>Authorization: Bearer …</code> to the HTTP API."
            ),
            _("A new /token replaces this one; /token revoke invalidates it."),
        ]
    )
    await message.answer(text, parse_mode=ParseMode.HTML)
