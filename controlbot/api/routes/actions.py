"""Actions on one bot: start, stop, restart, and env changes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from controlbot.api.calls import bot_out, call, command
from controlbot.api.deps import ApiContext, Auth, BotName, Caller, Ctx
from controlbot.api.errors import ERROR_RESPONSES
from controlbot.api.inputs import ENV_VALUE_MAX, check_env_patch
from controlbot.api.schemas import BotOut
from protocol.client import BUILD_TIMEOUT_S, DEFAULT_TIMEOUT_S
from protocol.models import ENV_KEY_RE, Op, Result

router = APIRouter(prefix="/api/bots/{name}", tags=["bots"], responses=ERROR_RESPONSES)

# Checked by check_env_patch, so a bad key or value is INVALID_ENV naming the `env` field.
EnvPatch = Annotated[
    dict[str, Any],
    Body(
        description="Variables to set; a null value unsets that key. The bot restarts to apply them.",
        examples=[{"GREETING": "hello", "OLD_FLAG": None}],
        json_schema_extra={
            "minProperties": 1,
            "propertyNames": {"pattern": ENV_KEY_RE.pattern},
            "additionalProperties": {
                "anyOf": [
                    {"type": "string", "maxLength": ENV_VALUE_MAX, "pattern": r"^[^\x00]*$"},
                    {"type": "null"},
                ]
            },
        },
    ),
]


async def _act(
    ctx: ApiContext,
    caller: Caller,
    op: Op,
    name: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    **fields: object,
) -> BotOut:
    result = await call(ctx, command(caller, op, name=name, **fields), timeout=timeout)
    return await _with_status(ctx, caller, name, result)


async def _with_status(ctx: ApiContext, caller: Caller, name: str, result: Result) -> BotOut:
    """The bot's status from an action's result, or asked for when the result lacks it."""
    if result.bot is None:
        result = await call(ctx, command(caller, Op.STATUS, name=name))
    return bot_out(result)


@router.post("/start", response_model=BotOut, summary="Start a stopped bot")
async def start_bot(ctx: Ctx, caller: Auth, name: BotName) -> BotOut:
    return await _act(ctx, caller, Op.START, name, timeout=BUILD_TIMEOUT_S)


@router.post("/stop", response_model=BotOut, summary="Stop a bot; it keeps its slot and logs")
async def stop_bot(ctx: Ctx, caller: Auth, name: BotName) -> BotOut:
    return await _act(ctx, caller, Op.STOP, name)


@router.post("/restart", response_model=BotOut, summary="Restart a bot")
async def restart_bot(ctx: Ctx, caller: Auth, name: BotName) -> BotOut:
    return await _act(ctx, caller, Op.RESTART, name)


@router.put("/env", response_model=BotOut, summary="Merge variables into a bot's env")
async def set_env(ctx: Ctx, caller: Auth, name: BotName, patch: EnvPatch) -> BotOut:
    env, unset = check_env_patch(patch, ctx.settings.bot_token)
    return await _act(ctx, caller, Op.SET_ENV, name, env=env, unset=unset)
