"""Operations on what Telegram holds for a bot: its webhook."""

from __future__ import annotations

from protocol.errors import BotrunnerError, ErrorCode
from protocol.models import Command, Result
from protocol.rules import is_bot_token
from runner import telegram
from runner.operations.base import OperationsBase
from runner.sources import ProgressFn


class TelegramOps(OperationsBase):
    async def delete_webhook(self, cmd: Command, progress: ProgressFn) -> Result:
        rec = await self._record(cmd)
        env = self.secrets.open_env(rec.env)  # the runner alone may read the token
        tokens = {key: value.strip() for key, value in env.items() if is_bot_token(value)}
        if not tokens:
            raise BotrunnerError(
                "the bot's env holds no bot token, so there is no webhook to remove",
                code=ErrorCode.INVALID_INPUT,
                bot=rec.name,
            )
        for key, token in sorted(tokens.items()):
            await telegram.delete_webhook(self.settings.telegram_api_url, key, token)
        return Result(request_id=cmd.request_id, bot=await self.bot_status(rec))
