"""A deploy or an update from chat: one message edited from the first stage to the card or the error.

Files (.py, .zip) are downloaded first ("⏳ downloading"); repositories start at "⏳ cloning". Then
the runner's stages follow (installing dependencies, building, stopping, starting), and the last
edit is the card, or the error: a failed build with the tail of its log, sent as a .txt as well.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from html import escape

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BufferedInputFile, Message
from aiogram.utils.i18n import gettext as _

from controlbot import cards, gatewatch, notices, uploads
from controlbot.errors import describe
from controlbot.formatting import clean_log
from controlbot.gateway import Caller, DeployRequest, Gateway, Target, Upload
from controlbot.progress import ProgressMessage, stage_label
from controlbot.telegram_check import TokenCheck
from protocol.errors import BotrunnerError, ErrorCode
from protocol.models import Op, Stage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChatDeploy:
    """A deploy as the chat asks for it: the request, the document to download for it (if any),
    and the user's message that carried secrets, deleted once read."""

    request: DeployRequest
    file_id: str | None = None
    filename: str = ""
    env_message: Message | None = None


async def _progress(reply_to: Message, first: str, take_over: Message | None) -> ProgressMessage:
    if take_over is not None:
        return await ProgressMessage.take_over(take_over, first)
    return await ProgressMessage.send(reply_to, first)


async def deploy(
    bot: Bot,
    reply_to: Message,
    gateway: Gateway,
    caller: Caller,
    job: ChatDeploy,
    *,
    take_over: Message | None = None,
) -> None:
    """Check, download (a file), then start or update the bot, showing each stage in one message."""
    try:
        await gateway.precheck(job.request)
    except BotrunnerError:
        await uploads.delete_quietly(job.env_message)
        raise
    # Telegram is asked about the tokens while the file downloads, not after.
    tokens = asyncio.create_task(gateway.check_tokens(job.request.env))
    try:
        await _run(bot, reply_to, gateway, caller, job, tokens, take_over)
    finally:
        tokens.cancel()  # a no-op once it is done


async def _run(
    bot: Bot,
    reply_to: Message,
    gateway: Gateway,
    caller: Caller,
    job: ChatDeploy,
    tokens: asyncio.Task[TokenCheck],
    take_over: Message | None,
) -> None:
    req = job.request
    if job.file_id is None:
        # Nothing to download: the message with the env or a URL's credentials goes at once.
        await uploads.delete_quietly(job.env_message)
        progress = await _progress(reply_to, stage_label(Stage.CLONING) or "", take_over)
    else:
        progress = await _progress(reply_to, _("⏳ downloading"), take_over)
    try:
        if job.file_id is not None:
            req = replace(req, upload=await _download(bot, gateway, job, job.file_id))
        req = replace(req, tokens=await tokens)
        result = await gateway.deploy(caller, req, on_progress=progress.on_runner)
    except BotrunnerError as e:
        await progress.finish(describe(e))
        if e.code == ErrorCode.BUILD_FAILED and e.detail:
            await send_build_log(progress.message, req.target, caller, e.detail)
        return
    final = _("✅ updated") if req.op == Op.UPDATE else "🟢 " + _("running")
    checking = result.bot is not None and result.bot.checking
    if checking:  # the health gate watches it: the verdict edits this message (controlbot.gatewatch)
        final = f"{final} → {gatewatch.checking_line()}" if req.op == Op.UPDATE else gatewatch.checking_line()
    head = "\n".join(p for p in (progress.trail(final), notices.localise(result.notes)) if p)
    text, markup = cards.with_card(head, result.bot, caller.id, result.notes)
    if checking:
        await gatewatch.remember(
            gateway.runner.redis, result.request_id, progress.message, caller.locale, text, markup
        )
    await progress.finish(text, markup)


async def _download(bot: Bot, gateway: Gateway, job: ChatDeploy, file_id: str) -> Upload:
    try:
        upload = await uploads.download(bot, file_id, job.filename)
    finally:
        await uploads.delete_quietly(job.env_message)  # read: the values leave the chat
    gateway.check_upload(upload)
    return upload


async def send_build_log(message: Message, target: Target, caller: Caller, detail: str) -> None:
    """The build log the runner returned, as a .txt document under the failure message."""
    name = target.ref(caller.id)
    document = BufferedInputFile(clean_log(detail).encode(), filename=f"{target.name}-build.txt")
    caption = _("📄 Build log of <b>{name}</b>").format(name=escape(name))
    try:
        await message.answer_document(document, caption=caption)
    except TelegramAPIError:
        log.warning("could not send the build log: owner=%s bot=%s", target.owner, target.name, exc_info=True)
