"""Files users send in chat: download them, and remove messages that carried secrets.

What is accepted (kind, size, content) is the gateway's to decide, the same for chat and API.
"""

from __future__ import annotations

import contextlib
import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Message

from controlbot.gateway import Upload
from protocol.errors import ErrorParams, InvalidSource

log = logging.getLogger(__name__)


async def download(bot: Bot, file_id: str, filename: str) -> Upload:
    buf = await bot.download(file_id)
    if buf is None:  # only when a destination is given; we never give one
        raise InvalidSource(
            "could not download the file; send it again", params=ErrorParams(reason="download")
        )
    return Upload(filename=filename, data=buf.read())


async def delete_quietly(message: Message | None) -> None:
    """Delete a user's message that carried env values. Failure is logged, never shown."""
    if message is None:
        return
    with contextlib.suppress(TelegramAPIError):
        await message.delete()
        return
    log.warning("could not delete message %s in chat %s", message.message_id, message.chat.id)
