"""/start and /help: what this is, how to use it, and a menu keyboard."""

from __future__ import annotations

from html import escape

from aiogram import F, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from controlbot import keyboards
from controlbot.callbacks import MenuAction, MenuCb
from controlbot.commands import admin_commands, user_commands
from controlbot.gateway import Caller

router = Router(name="start")


def welcome(first_name: str) -> str:
    return _(
        "👋 Hi, {name}! I host your Telegram bots: send me a .py file and I run it 24/7 in its own "
        "sandboxed container, with logs, restarts and crash alerts.\n\n"
        "Send a .py with the caption <code>/start_bot mybot BOT_TOKEN=...</code>, or just send the file "
        "and I will ask for the rest."
    ).format(name=escape(first_name))


def help_text(caller: Caller) -> str:
    lines = [_("<b>Commands</b>")]
    lines += [f"/{cmd} — {escape(desc)}" for cmd, desc in user_commands()]
    if caller.admin:
        lines.append("")
        lines.append(_("<b>Admin</b>"))
        lines += [f"/{cmd} — {escape(desc)}" for cmd, desc in admin_commands()]
        lines.append("/list all — " + _("every user's bots"))
        lines.append(
            _(
                "Address another user's bot as <code>owner_id/name</code>, "
                "e.g. <code>/logs 123456/echo</code>."
            )
        )
    lines.append("")
    lines.append(deploy_howto())
    return "\n".join(lines)


def deploy_howto() -> str:
    files = _(
        "<b>Deploying</b>: send a .py file with the caption <code>/start_bot name KEY=VALUE ...</code> "
        "(or reply <code>/start_bot name</code> to a file, or send the file alone for a guided setup). "
        'Quote values with spaces: <code>GREETING="hello world"</code>. Messages carrying env values '
        "are deleted once read."
    )
    git = _(
        "<b>From git</b>: <code>/start_bot name --git https://github.com/you/bot.git "
        "[--branch B] [--entrypoint PATH] KEY=VALUE ...</code>. The entry point is "
        "<code>__main__.py</code>, <code>main.py</code> or <code>bot.py</code> unless you name one; "
        "<code>requirements.txt</code> or <code>pyproject.toml</code> dependencies are installed, "
        "and a <code>Dockerfile</code> is built. <code>/update name</code> pulls the latest commit "
        "(<code>--branch B</code>, <code>--commit SHA</code>)."
    )
    package = _(
        "<b>A .zip package</b> (the bot's folder with its requirements.txt) deploys like a "
        "repository: send it with the caption <code>/start_bot name</code>."
    )
    return "\n\n".join([files, git, package])


@router.message(CommandStart())
async def cmd_start(message: Message) -> None:
    name = message.from_user.first_name if message.from_user else ""
    await message.answer(welcome(name), reply_markup=keyboards.menu())


@router.message(Command("help"))
async def cmd_help(message: Message, caller: Caller) -> None:
    await message.answer(help_text(caller), reply_markup=keyboards.menu())


@router.callback_query(MenuCb.filter(F.action == MenuAction.HELP))
async def press_help(query: CallbackQuery, caller: Caller) -> None:
    await query.answer()
    if query.message is not None:
        await query.message.answer(help_text(caller))


@router.callback_query(MenuCb.filter(F.action == MenuAction.DEPLOY))
async def press_deploy(query: CallbackQuery) -> None:
    await query.answer()
    if query.message is not None:
        await query.message.answer(deploy_howto())
