"""/start_bot (a new bot from a .py, or a stopped bot started again) and /update (new code)."""

from __future__ import annotations

from html import escape

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Document, Message
from aiogram.utils.i18n import gettext as _

from controlbot import formatting, keyboards, ops, uploads
from controlbot.errors import Refusal
from controlbot.ops import Caller
from controlbot.parsing import EnvChanges, Target, parse_env, parse_target, split_args
from controlbot.settings import Settings
from protocol.client import RunnerClient
from protocol.errors import BotrunnerError, ErrorCode
from protocol.models import Op

router = Router(name="deploy")


def attached_document(message: Message) -> Document | None:
    """The .py this command is about: its own attachment, or the one it replies to."""
    if message.document is not None:
        return message.document
    if message.reply_to_message is not None:
        return message.reply_to_message.document
    return None


def parse_deploy_args(command: CommandObject, caller: Caller, usage: str) -> tuple[Target, EnvChanges]:
    args = split_args(command.args)
    if not args:
        raise Refusal(usage)
    target = parse_target(args[0], caller.id, caller.is_admin)
    changes = parse_env(args[1:])
    if changes.unset:
        raise Refusal(
            _("-KEY unsets a variable of an existing bot: use <code>/env {name} -KEY</code>.").format(
                name=escape(target.ref(caller.id))
            ),
            code=ErrorCode.INVALID_ENV,
        )
    return target, changes


def carries_values(command: CommandObject) -> bool:
    return "=" in (command.args or "")


@router.message(Command("start_bot"))
async def cmd_start_bot(
    message: Message,
    command: CommandObject,
    bot: Bot,
    caller: Caller,
    runner: RunnerClient,
    settings: Settings,
) -> None:
    env_message = message if carries_values(command) else None
    usage = _(
        "Usage: send a .py file with the caption <code>/start_bot name [KEY=VALUE ...]</code>, "
        "or <code>/start_bot name</code> to start a stopped bot."
    )
    try:
        target, changes = parse_deploy_args(command, caller, usage)
        document = attached_document(message)
        if document is None:
            if changes:
                raise Refusal(
                    _("To change env of an existing bot use <code>/env {name} KEY=VALUE</code>.").format(
                        name=escape(target.ref(caller.id))
                    ),
                    code=ErrorCode.INVALID_ENV,
                )
            await start_existing(message, runner, caller, target)
            return
        uploads.check_document(document, settings)
    except BotrunnerError:
        await uploads.delete_quietly(env_message)
        raise
    await uploads.deploy_file(
        bot=bot,
        reply_to=message,
        runner=runner,
        settings=settings,
        caller=caller,
        target=target,
        file_id=document.file_id,
        filename=document.file_name or f"{target.name}.py",
        changes=changes,
        op=Op.START,
        env_message=env_message,
    )


async def start_existing(message: Message, runner: RunnerClient, caller: Caller, target: Target) -> None:
    try:
        result = await ops.call(runner, caller, Op.START, target)
    except BotrunnerError as e:
        if e.code != ErrorCode.NOT_FOUND:
            raise
        raise Refusal(
            _(
                "No bot named <b>{name}</b>. To deploy one, send a .py file with the caption "
                "<code>/start_bot {name}</code>."
            ).format(name=escape(target.ref(caller.id))),
            code=ErrorCode.NOT_FOUND,
        ) from e
    text = _("▶️ <b>{name}</b> started.").format(name=escape(target.ref(caller.id)))
    if result.bot is None:
        await message.answer(text)
        return
    await message.answer(
        text + "\n\n" + formatting.card(result.bot, caller.id), reply_markup=keyboards.card(result.bot)
    )


@router.message(Command("update"))
async def cmd_update(
    message: Message,
    command: CommandObject,
    bot: Bot,
    caller: Caller,
    runner: RunnerClient,
    settings: Settings,
) -> None:
    env_message = message if carries_values(command) else None
    usage = _(
        "Usage: send the new .py file with the caption <code>/update name [KEY=VALUE ...]</code>, "
        "or reply <code>/update name</code> to it."
    )
    try:
        target, changes = parse_deploy_args(command, caller, usage)
        document = attached_document(message)
        if document is None:
            raise Refusal(usage)
        uploads.check_document(document, settings)
    except BotrunnerError:
        await uploads.delete_quietly(env_message)
        raise
    await uploads.deploy_file(
        bot=bot,
        reply_to=message,
        runner=runner,
        settings=settings,
        caller=caller,
        target=target,
        file_id=document.file_id,
        filename=document.file_name or f"{target.name}.py",
        changes=changes,
        op=Op.UPDATE,
        env_message=env_message,
    )
