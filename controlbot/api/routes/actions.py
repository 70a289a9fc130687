"""Actions on one bot: start, stop, restart, and env changes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from controlbot.api.calls import bot_out, result_out
from controlbot.api.deps import Auth, Bot, Ctx
from controlbot.api.errors import ERROR_RESPONSES
from controlbot.api.inputs import env_patch
from controlbot.api.schemas import BotOut
from protocol.models import Op
from protocol.rules import ENV_KEY_PATTERN, MAX_ENV_VALUE_BYTES

router = APIRouter(prefix="/api/bots/{name}", tags=["bots"], responses=ERROR_RESPONSES)

# Checked by env_patch and the gateway, so a bad key or value is INVALID_ENV naming the `env` field.
EnvPatch = Annotated[
    dict[str, Any],
    Body(
        description="Variables to set; a null value unsets that key. The bot restarts to apply them.",
        examples=[{"GREETING": "hello", "OLD_FLAG": None}],
        json_schema_extra={
            "minProperties": 1,
            "propertyNames": {"pattern": ENV_KEY_PATTERN},
            "additionalProperties": {
                "anyOf": [
                    {"type": "string", "maxLength": MAX_ENV_VALUE_BYTES, "pattern": r"^[^\x00]*$"},
                    {"type": "null"},
                ]
            },
        },
    ),
]


@router.post("/start", response_model=BotOut, summary="Start a stopped bot")
async def start_bot(ctx: Ctx, caller: Auth, bot: Bot) -> BotOut:
    return bot_out(await ctx.gateway.act(caller, Op.START, bot))


@router.post("/stop", response_model=BotOut, summary="Stop a bot; it keeps its slot and logs")
async def stop_bot(ctx: Ctx, caller: Auth, bot: Bot) -> BotOut:
    return bot_out(await ctx.gateway.act(caller, Op.STOP, bot))


@router.post("/restart", response_model=BotOut, summary="Restart a bot")
async def restart_bot(ctx: Ctx, caller: Auth, bot: Bot) -> BotOut:
    return bot_out(await ctx.gateway.act(caller, Op.RESTART, bot))


@router.put("/env", response_model=BotOut, summary="Merge variables into a bot's env")
async def set_env(ctx: Ctx, caller: Auth, bot: Bot, patch: EnvPatch) -> BotOut:
    env, unset = env_patch(patch)
    return result_out(await ctx.gateway.set_env(caller, bot, env, unset))


@router.delete("/webhook", response_model=BotOut, summary="Remove the webhook on the bot's token")
async def delete_webhook(ctx: Ctx, caller: Auth, bot: Bot) -> BotOut:
    """A webhook on a token keeps a polling bot from getting updates; this removes it."""
    return bot_out(await ctx.gateway.delete_webhook(caller, bot))
