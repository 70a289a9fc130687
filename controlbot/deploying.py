"""A deploy or an update with progress: one message edited from the first stage to the card or the error.

Files (.py, .zip) are downloaded first ("⏳ downloading"); repositories start at "⏳ cloning". Then
the runner's stages follow (installing dependencies, building, stopping, starting), and the last
edit is the card, or the error: a failed build with the tail of its log, sent as a .txt as well.
"""

from __future__ import annotations

import logging
from html import escape

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BufferedInputFile, Message
from aiogram.utils.i18n import gettext as _

from controlbot import formatting, keyboards, notices, ops, uploads
from controlbot.errors import describe
from controlbot.formatting import clean_log
from controlbot.parsing import EnvChanges, Target
from controlbot.progress import ProgressMessage, stage_label
from controlbot.settings import Settings
from protocol.client import BUILD_TIMEOUT_S, RunnerClient
from protocol.errors import BotrunnerError, ErrorCode
from protocol.models import Op, SourceSpec, Stage

log = logging.getLogger(__name__)


async def precheck(
    runner: RunnerClient,
    settings: Settings,
    caller: ops.Caller,
    target: Target,
    changes: EnvChanges,
    env_message: Message | None,
) -> str:
    """Checks before any slow work; returns a warning to show with the result (a shared token)."""
    try:
        uploads.check_values(changes, settings)
        await ops.ensure_runner(runner)
        return await uploads.token_warnings(runner, caller, target, changes)
    except BotrunnerError:
        await uploads.delete_quietly(env_message)
        raise


async def deploy_file(
    *,
    bot: Bot,
    reply_to: Message,
    runner: RunnerClient,
    settings: Settings,
    caller: ops.Caller,
    target: Target,
    file_id: str,
    filename: str,
    changes: EnvChanges,
    op: Op = Op.START,
    entrypoint: str | None = None,
    env_message: Message | None = None,
    take_over: Message | None = None,
) -> None:
    """Download a .py or a .zip, then start (or update) the bot with it."""
    warning = await precheck(runner, settings, caller, target, changes, env_message)
    first = _("⏳ downloading")
    if take_over is not None:
        progress = await ProgressMessage.take_over(take_over, first)
    else:
        progress = await ProgressMessage.send(reply_to, first)
    kind = uploads.source_kind(filename)
    try:
        try:
            data = await uploads.download(bot, file_id, settings, kind)
        finally:
            await uploads.delete_quietly(env_message)
    except BotrunnerError as e:
        await progress.finish(describe(e))
        return
    source = SourceSpec(kind=kind, filename=filename, entrypoint=entrypoint)
    await execute(
        progress, runner, caller, target, op, source=source, payload=data, changes=changes, warning=warning
    )


async def deploy_git(
    *,
    reply_to: Message,
    runner: RunnerClient,
    settings: Settings,
    caller: ops.Caller,
    target: Target,
    changes: EnvChanges,
    source: SourceSpec | None,
    op: Op = Op.START,
    pull: bool = False,
    env_message: Message | None = None,
) -> None:
    """Start a bot from a repository, or (pull) update a git bot to the head of its branch."""
    warning = await precheck(runner, settings, caller, target, changes, env_message)
    # Nothing to download: the message with the URL (and maybe credentials or env) goes at once.
    await uploads.delete_quietly(env_message)
    progress = await ProgressMessage.send(reply_to, stage_label(Stage.CLONING) or "")
    await execute(
        progress, runner, caller, target, op, source=source, pull=pull, changes=changes, warning=warning
    )


async def execute(
    progress: ProgressMessage,
    runner: RunnerClient,
    caller: ops.Caller,
    target: Target,
    op: Op,
    *,
    source: SourceSpec | None,
    changes: EnvChanges,
    payload: bytes | None = None,
    pull: bool = False,
    warning: str = "",
) -> None:
    """Send the command, follow its stages, and end the progress message with the card or the error."""
    try:
        result = await ops.call(
            runner,
            caller,
            op,
            target,
            payload=payload,
            timeout=BUILD_TIMEOUT_S,
            on_progress=progress.on_runner,
            source=source,
            pull=pull,
            env=changes.set or None,
        )
    except BotrunnerError as e:
        await progress.finish(describe(e))
        if e.code == ErrorCode.BUILD_FAILED and e.detail:
            await send_build_log(progress.message, target, caller, e.detail)
        return
    final = _("✅ updated") if op == Op.UPDATE else "🟢 " + _("running")
    parts = [progress.trail(final), notices.localise(result.notice), warning]
    text = "\n".join(p for p in parts if p)
    if result.bot is None:
        await progress.finish(text)
        return
    text += "\n\n" + formatting.card(result.bot, caller.id)
    await progress.finish(text, keyboards.card(result.bot))


async def send_build_log(message: Message, target: Target, caller: ops.Caller, detail: str) -> None:
    """The build log the runner returned, as a .txt document under the failure message."""
    name = target.ref(caller.id)
    document = BufferedInputFile(clean_log(detail).encode(), filename=f"{target.name}-build.txt")
    caption = _("📄 Build log of <b>{name}</b>").format(name=escape(name))
    try:
        await message.answer_document(document, caption=caption)
    except TelegramAPIError:
        log.warning("could not send the build log: owner=%s bot=%s", target.owner, target.name, exc_info=True)
