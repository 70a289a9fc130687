"""Env values stay out of group chats: everyone in a group reads every message.

A command that carries `KEY=VALUE` (/start_bot, /update, /env), or the guided flow's env answer,
is refused in a group or supergroup: the message is deleted at once and the sender is told to use
a private chat. Nothing of it reaches the gateway.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from aiogram import BaseMiddleware
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.context import FSMContext
from aiogram.types import Message, TelegramObject
from aiogram.utils.i18n import gettext as _

from controlbot import uploads
from controlbot.middlewares import Handler
from controlbot.states import DeployFlow

log = logging.getLogger(__name__)

GROUP_CHATS = frozenset({ChatType.GROUP, ChatType.SUPERGROUP})
ENV_COMMANDS = frozenset({"start_bot", "update", "env"})
# A KEY=VALUE item anywhere in the arguments (the parsers accept it in any position).
_ENV_ITEM_RE = re.compile(r"(?:^|\s)[\"']?[A-Za-z_][A-Za-z0-9_]*=")


def carries_env(text: str) -> bool:
    """Whether a command's text sets env values: `/env name KEY=...`, `/start_bot name KEY=...`."""
    head, _sep, args = text.strip().partition(" ")
    command = head.removeprefix("/").split("@", 1)[0].lower()
    return head.startswith("/") and command in ENV_COMMANDS and _ENV_ITEM_RE.search(args) is not None


class PrivateEnvMiddleware(BaseMiddleware):
    """Refuses env values sent in a group or supergroup, and deletes the message carrying them."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Message) or event.chat.type not in GROUP_CHATS:
            return await handler(event, data)
        if not await _sends_values(event, data.get("state")):
            return await handler(event, data)
        user = event.from_user.id if event.from_user else None
        log.info("refused env values from user=%s in group chat=%s; message deleted", user, event.chat.id)
        await uploads.delete_quietly(event)
        state: FSMContext | None = data.get("state")
        if state is not None:
            await state.clear()  # a guided deploy started here does not go on
        try:
            await event.answer(
                _(
                    "🔒 Env values are secrets, and everyone in this group can read them. "
                    "I deleted that message and changed nothing: send it to me in a private chat."
                )
            )
        except TelegramAPIError:
            log.warning("could not answer in group chat=%s", event.chat.id, exc_info=True)
        return None


async def _sends_values(message: Message, state: FSMContext | None) -> bool:
    text = message.text or message.caption or ""
    if text.startswith("/"):
        return carries_env(text)
    # The guided flow's env step takes plain KEY=VALUE lines.
    return state is not None and message.text is not None and await state.get_state() == DeployFlow.env.state
