"""/quota (yours; admins: a user's, or set it with /quota user_id n) and, for admins, /system
(runner heartbeat, Docker, bots running of total)."""

from __future__ import annotations

import time
from html import escape

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from controlbot.errors import Refusal
from controlbot.gateway import Caller, Gateway
from controlbot.parsing import split_args
from protocol.errors import ErrorCode
from protocol.models import RunnerInfo

router = Router(name="admin")

RESET_WORDS = {"default", "reset", "-"}


def require_admin(caller: Caller) -> None:
    if not caller.admin:
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
async def cmd_quota(message: Message, command: CommandObject, caller: Caller, gateway: Gateway) -> None:
    args = split_args(command.args)
    if not args:
        quota = await gateway.quota(caller)
        await message.answer(_("Your bots: {used} of {limit}.").format(used=quota.used, limit=quota.limit))
        return
    if len(args) == 1 and args[0].isdigit():
        user_id, quota = int(args[0]), await gateway.quota(caller, int(args[0]))
    else:
        require_admin(caller)
        user_id, limit = parse_quota(args)
        quota = await gateway.set_quota(caller, user_id, limit)
    await message.answer(
        _("✅ Quota of user <code>{user}</code>: {used}/{limit} bots.").format(
            user=user_id, used=quota.used, limit=quota.limit
        )
    )


@router.message(Command("system"))
async def cmd_system(message: Message, caller: Caller, gateway: Gateway) -> None:
    require_admin(caller)
    health = await gateway.health()
    if health is None:
        await message.answer(
            _(
                "🔴 <b>Runner</b>: no fresh heartbeat — it is down or cannot reach Redis. "
                "Commands answer 'unavailable' until it is back."
            )
        )
        return
    system = await gateway.system(caller)
    age = max(0.0, time.time() - health.ts)
    docker = (system.docker_version if system else None) or health.docker_version
    running = system.bots_running if system else health.bots_running
    total = system.bots_total if system else health.bots_total
    egress = (system.egress if system else None) or health.egress
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
    if egress:
        lines.append(_("🌐 egress: {egress}").format(egress=escape(egress)))
    if system and system.runners:
        lines.append(_("Runners ({count}):").format(count=len(system.runners)))
        lines.extend(_runner_line(r) for r in system.runners)
    await message.answer("\n".join(lines))


def _runner_line(runner: RunnerInfo) -> str:
    """One live runner: its heartbeat age, backend and (under swarm) node count."""
    nodes = _("{count} nodes").format(count=runner.nodes) if runner.nodes is not None else _("one host")
    mark = "🟢" if runner.docker_ok else "🔴"
    leader = _(", leader") if runner.leader else ""
    return _("{mark} {runner}: heartbeat {age:.1f}s ago, {backend}, {nodes}{leader}").format(
        mark=mark,
        runner=escape(runner.runner_id),
        age=runner.heartbeat_age_seconds,
        backend=escape(runner.backend),
        nodes=nodes,
        leader=leader,
    )
