"""/start_bot (a new bot from a .py, a .zip or a git repository, or a stopped bot started again)
and /update (new code, or a pull of a git bot's branch)."""

from __future__ import annotations

from html import escape

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Document, Message
from aiogram.utils.i18n import gettext as _

from controlbot import deploying, formatting, keyboards, ops, uploads
from controlbot.deployargs import DeployArgs, check_with_file, parse_deploy_args
from controlbot.errors import Refusal
from controlbot.formatting import has_credentials
from controlbot.ops import Caller
from controlbot.parsing import Target
from controlbot.settings import Settings
from protocol.client import RunnerClient
from protocol.errors import BotrunnerError, ErrorCode
from protocol.models import Op, SourceKind

router = Router(name="deploy")


def attached_document(message: Message) -> Document | None:
    """The file this command is about: its own attachment, or the one it replies to."""
    if message.document is not None:
        return message.document
    if message.reply_to_message is not None:
        return message.reply_to_message.document
    return None


def carries_secrets(command: CommandObject) -> bool:
    """Env values, or a URL with credentials: the user's message is deleted once read."""
    args = command.args or ""
    return "=" in args or has_credentials(args)


def check_document_args(document: Document, args: DeployArgs, settings: Settings) -> None:
    uploads.check_document(document, settings)
    check_with_file(args.git, document.file_name or "")


def start_usage() -> str:
    return _(
        "Usage: send a .py or .zip with the caption <code>/start_bot name [KEY=VALUE ...]</code>, "
        "deploy a repository with <code>/start_bot name --git URL [--branch B] [--entrypoint PATH] "
        "[KEY=VALUE ...]</code>, or send <code>/start_bot name</code> to start a stopped bot."
    )


def update_usage() -> str:
    return _(
        "Usage: send the new .py or .zip with the caption <code>/update name [KEY=VALUE ...]</code>, "
        "or reply <code>/update name</code> to it. A bot deployed from git pulls its branch with "
        "<code>/update name [--branch B] [--commit SHA]</code>."
    )


def check_start_without_file(args: DeployArgs, caller: Caller) -> None:
    """`/start_bot name` alone starts a stopped bot; anything more needs a file or --git URL."""
    if args.git:
        raise Refusal(
            _(
                "<code>--branch</code>, <code>--commit</code> and <code>--entrypoint</code> go with "
                "<code>--git URL</code> or a .zip."
            ),
            code=ErrorCode.INVALID_INPUT,
        )
    if args.changes:
        raise Refusal(
            _("To change env of an existing bot use <code>/env {name} KEY=VALUE</code>.").format(
                name=escape(args.target.ref(caller.id))
            ),
            code=ErrorCode.INVALID_ENV,
        )


@router.message(Command("start_bot"))
async def cmd_start_bot(
    message: Message,
    command: CommandObject,
    bot: Bot,
    caller: Caller,
    runner: RunnerClient,
    settings: Settings,
) -> None:
    env_message = message if carries_secrets(command) else None
    try:
        args = parse_deploy_args(command.args, caller.id, caller.is_admin, start_usage())
        document = attached_document(message)
        if document is not None:
            check_document_args(document, args, settings)
        elif not args.git.url:
            check_start_without_file(args, caller)
    except BotrunnerError:
        await uploads.delete_quietly(env_message)
        raise
    target = args.target
    if document is not None:
        await deploying.deploy_file(
            bot=bot,
            reply_to=message,
            runner=runner,
            settings=settings,
            caller=caller,
            target=target,
            file_id=document.file_id,
            filename=document.file_name or f"{target.name}.py",
            changes=args.changes,
            op=Op.START,
            entrypoint=args.git.entrypoint,
            env_message=env_message,
        )
    elif args.git.url:
        await deploying.deploy_git(
            reply_to=message,
            runner=runner,
            settings=settings,
            caller=caller,
            target=target,
            changes=args.changes,
            source=args.git.spec(),
            env_message=env_message,
        )
    else:
        await start_existing(message, runner, caller, target)


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
    env_message = message if carries_secrets(command) else None
    try:
        args = parse_deploy_args(command.args, caller.id, caller.is_admin, update_usage())
        document = attached_document(message)
        if document is not None:
            check_document_args(document, args, settings)
        elif not args.git.url:
            await check_pullable(runner, caller, args)
    except BotrunnerError:
        await uploads.delete_quietly(env_message)
        raise
    if document is not None:
        await deploying.deploy_file(
            bot=bot,
            reply_to=message,
            runner=runner,
            settings=settings,
            caller=caller,
            target=args.target,
            file_id=document.file_id,
            filename=document.file_name or f"{args.target.name}.py",
            changes=args.changes,
            op=Op.UPDATE,
            entrypoint=args.git.entrypoint,
            env_message=env_message,
        )
        return
    # A URL points the bot at a (new) repository; without one, a git bot pulls its branch.
    await deploying.deploy_git(
        reply_to=message,
        runner=runner,
        settings=settings,
        caller=caller,
        target=args.target,
        changes=args.changes,
        source=args.git.spec() if args.git else None,
        op=Op.UPDATE,
        pull=not args.git.url,
        env_message=env_message,
    )


async def check_pullable(runner: RunnerClient, caller: Caller, args: DeployArgs) -> None:
    """An update without a file pulls, which only a bot deployed from git can do."""
    status = await ops.status(runner, caller, args.target)
    if status.source.kind is SourceKind.GIT:
        return
    if not args.git:
        raise Refusal(update_usage())
    raise Refusal(
        _(
            "<b>{name}</b> was not deployed from git, so there is nothing to pull. Send its new code "
            "as a .py or .zip with the caption <code>/update {name}</code>."
        ).format(name=escape(args.target.ref(caller.id))),
        code=ErrorCode.INVALID_SOURCE,
    )
