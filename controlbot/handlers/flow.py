"""The guided deploy: a .py or .zip sent with no command asks for a name, then env vars, then confirmation."""

from __future__ import annotations

from html import escape

from aiogram import Bot, F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from controlbot import deploying, formatting, keyboards, uploads
from controlbot.callbacks import FlowAction, FlowCb
from controlbot.deploying import ChatDeploy
from controlbot.errors import Refusal
from controlbot.gateway import Caller, DeployRequest, Gateway, Target
from controlbot.parsing import check_name, name_rule, parse_env, split_args
from controlbot.states import DeployFlow
from protocol.errors import BotrunnerError, ErrorCode
from protocol.models import Op

router = Router(name="flow")

NOT_A_COMMAND = F.text & ~F.text.startswith("/")


@router.message(F.document & ~F.caption.startswith("/"))
async def got_file(message: Message, state: FSMContext, gateway: Gateway) -> None:
    """Any .py or .zip without a command starts (or restarts) the flow; other files are refused."""
    assert message.document is not None
    gateway.check_upload_meta(message.document.file_name or "", message.document.file_size)
    await state.clear()
    await state.set_state(DeployFlow.name)
    await state.update_data(file_id=message.document.file_id, filename=message.document.file_name)
    await message.answer(
        _("📄 Got <b>{file}</b>. What should the bot be called?").format(
            file=escape(message.document.file_name or "")
        )
        + "\n"
        + name_rule(),
        reply_markup=keyboards.flow_cancel(),
    )


@router.message(DeployFlow.name, NOT_A_COMMAND)
async def got_name(message: Message, state: FSMContext, caller: Caller, gateway: Gateway) -> None:
    name = check_name((message.text or "").strip())
    target = Target(owner=caller.id, name=name)
    try:
        await gateway.status(caller, target)
    except BotrunnerError as e:
        if e.code != ErrorCode.NOT_FOUND:
            raise
    else:
        raise Refusal(
            _(
                "You already have a bot named <b>{name}</b>. Pick another name, or send the file with the "
                "caption <code>/update {name}</code> to replace its code."
            ).format(name=escape(name)),
            code=ErrorCode.ALREADY_EXISTS,
        )
    await state.update_data(name=name)
    await state.set_state(DeployFlow.env)
    await message.answer(
        _(
            "Now the environment variables, as <code>KEY=VALUE</code> separated by spaces or lines "
            "(e.g. <code>BOT_TOKEN=123:ABC</code>). I delete your message once read. "
            "No variables? Press the button."
        ),
        reply_markup=keyboards.flow_env(),
    )


@router.message(DeployFlow.env, NOT_A_COMMAND)
async def got_env(message: Message, state: FSMContext, gateway: Gateway) -> None:
    try:
        changes = parse_env(split_args(message.text))
        if changes.unset:
            raise Refusal(
                _("A new bot has no variables to unset; send KEY=VALUE only."), code=ErrorCode.INVALID_ENV
            )
        gateway.check_env(changes.set)
    finally:
        await uploads.delete_quietly(message)
    await state.update_data(env=changes.set)
    await ask_confirm(message, state)


@router.callback_query(DeployFlow.env, FlowCb.filter(F.action == FlowAction.SKIP_ENV))
async def skip_env(query: CallbackQuery, state: FSMContext) -> None:
    await query.answer()
    await state.update_data(env={})
    if isinstance(query.message, Message):
        await ask_confirm(query.message, state)


async def ask_confirm(message: Message, state: FSMContext) -> None:
    data = await state.get_data()
    await state.set_state(DeployFlow.confirm)
    env: dict[str, str] = data.get("env", {})
    env_text = ", ".join(f"<code>{escape(k)}</code>={escape(formatting.mask(v))}" for k, v in env.items())
    await message.answer(
        _("Deploy <b>{name}</b> from <b>{file}</b>?\nEnv: {env}").format(
            name=escape(data["name"]), file=escape(data.get("filename") or ""), env=env_text or _("none")
        ),
        reply_markup=keyboards.flow_confirm(),
    )


@router.callback_query(DeployFlow.confirm, FlowCb.filter(F.action == FlowAction.CONFIRM))
async def confirm(
    query: CallbackQuery,
    state: FSMContext,
    bot: Bot,
    caller: Caller,
    gateway: Gateway,
) -> None:
    data = await state.get_data()
    await state.clear()
    await query.answer()
    if not isinstance(query.message, Message):
        return
    name = data["name"]
    request = DeployRequest(
        op=Op.START, target=Target(owner=caller.id, name=name), env=dict(data.get("env", {}))
    )
    job = ChatDeploy(request, file_id=data["file_id"], filename=data.get("filename") or f"{name}.py")
    await deploying.deploy(bot, query.message, gateway, caller, job, take_over=query.message)


@router.callback_query(FlowCb.filter())
async def stale_flow_button(query: CallbackQuery) -> None:
    """A flow button from an earlier or finished flow."""
    await query.answer(_("This step is over. Send the .py file again to start over."), show_alert=True)
