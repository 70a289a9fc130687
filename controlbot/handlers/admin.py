"""Admin commands: /quota user_id n and /system (runner heartbeat, Docker, bots running of total)."""

from __future__ import annotations

import time
from html import escape

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from controlbot import ops
from controlbot.errors import Refusal
from controlbot.ops import Caller
from controlbot.parsing import split_args
from protocol.client import RunnerClient
from protocol.errors import ErrorCode
from protocol.models import Op

router = Router(name="admin")

RESET_WORDS = {"default", "reset", "-"}


def require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise Refusal(_("Only admins can do that."), code=ErrorCode.FORBIDDEN)


def parse_quota(args: list[str]) -> tuple[int, int | None]:
    usage = _("Usage: /quota user_id n (n = number of bots; 'default' removes the override)")
    if len(args) != 2 or not args[0].isdigit():
        raise Refusal(usage)
    if args[1].lower() in RESET_WORDS:
        return int(args[0]), None
    if not args[1].isdigit():
        raise Refusal(usage)
    return int(args[0]), int(args[1])


@router.message(Command("quota"))
async def cmd_quota(message: Message, command: CommandObject, caller: Caller, runner: RunnerClient) -> None:
    require_admin(caller)
    user_id, limit = parse_quota(split_args(command.args))
    result = await ops.call(runner, caller, Op.SET_QUOTA, target_owner=user_id, quota=limit)
    quota = result.quota
    used = quota.used if quota else "?"
    effective = quota.limit if quota else limit
    await message.answer(
        _("✅ Quota of user <code>{user}</code>: {used}/{limit} bots.").format(
            user=user_id, used=used, limit=effective
        )
    )


@router.message(Command("system"))
async def cmd_system(message: Message, caller: Caller, runner: RunnerClient) -> None:
    require_admin(caller)
    health = await runner.health()
    if health is None:
        await message.answer(
            _(
                "🔴 <b>Runner</b>: no fresh heartbeat — it is down or cannot reach Redis. "
                "Commands answer 'unavailable' until it is back."
            )
        )
        return
    result = await ops.call(runner, caller, Op.SYSTEM)
    system = result.system
    age = max(0.0, time.time() - health.ts)
    docker = (system.docker_version if system else None) or health.docker_version
    running = system.bots_running if system else health.bots_running
    total = system.bots_total if system else health.bots_total
    lines = [
        _("🟢 <b>Runner</b> {runner}: heartbeat {age:.1f}s ago").format(
            runner=escape(health.runner_id), age=age
        ),
        (
            _("🐳 Docker {version}").format(version=escape(docker))
            if health.docker_ok and docker
            else _("🔴 Docker: unavailable")
        ),
        _("🤖 Bots running: {running} of {total}").format(running=running, total=total),
    ]
    await message.answer("\n".join(lines))
