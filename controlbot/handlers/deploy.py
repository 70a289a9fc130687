"""/start_bot (a new bot from a .py, a .zip or a git repository, or a stopped bot started again)
and /update (new code, or a pull of a git bot's branch): one handler, one DeployRequest."""

from __future__ import annotations

from html import escape

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Document, Message
from aiogram.utils.i18n import gettext as _

from controlbot import cards, deploying, uploads
from controlbot.deployargs import DeployArgs, check_with_file, parse_deploy_args
from controlbot.deploying import ChatDeploy
from controlbot.errors import Refusal
from controlbot.formatting import has_credentials
from controlbot.gateway import Caller, DeployRequest, Gateway, Target
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


@router.message(Command("start_bot", "update"))
async def cmd_deploy(
    message: Message, command: CommandObject, bot: Bot, caller: Caller, gateway: Gateway
) -> None:
    """/start_bot (new code, or a stopped bot started again) and /update (new code, or a git pull)."""
    op = Op.START if command.command == "start_bot" else Op.UPDATE
    env_message = message if carries_secrets(command) else None
    try:
        args = parse_deploy_args(
            command.args, caller.id, caller.admin, start_usage() if op is Op.START else update_usage()
        )
        document = attached_document(message)
        if document is not None:
            gateway.check_upload_meta(document.file_name or "", document.file_size)
            check_with_file(args.git, document.file_name or "")
        elif not args.git.url and op is Op.START:
            check_start_without_file(args, caller)
        elif not args.git.url:
            await check_pullable(gateway, caller, args)
    except BotrunnerError:
        await uploads.delete_quietly(env_message)
        raise
    if op is Op.START and document is None and not args.git.url:
        await start_existing(message, gateway, caller, args.target)
        return
    request = DeployRequest(
        op=op,
        target=args.target,
        env=args.changes.set or None,
        source=args.git.spec() if args.git else None,
        # An update without a file or URL pulls the recorded repository's branch.
        pull=op is Op.UPDATE and document is None and not args.git.url,
    )
    job = ChatDeploy(
        request,
        file_id=document.file_id if document else None,
        filename=(document.file_name if document else None) or f"{args.target.name}.py",
        env_message=env_message,
    )
    await deploying.deploy(bot, message, gateway, caller, job)


async def start_existing(message: Message, gateway: Gateway, caller: Caller, target: Target) -> None:
    try:
        status = await gateway.act(caller, Op.START, target)
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
    await cards.answer(message, text, status, caller.id)


async def check_pullable(gateway: Gateway, caller: Caller, args: DeployArgs) -> None:
    """An update without a file pulls, which only a bot deployed from git can do."""
    status = await gateway.status(caller, args.target)
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
