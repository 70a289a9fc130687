"""Echo Bot V2: echo_bot.py with a "V2" marker in its startup line and greeting, for update tests.

Run: BOT_TOKEN=123:abc python echo_bot_v2.py
Set TELEGRAM_API_URL to talk to another Bot API server (a local one, or a fake in tests).
Only aiogram is needed; nothing is written to disk, so a read-only root filesystem is fine.
"""

import asyncio
import logging
import os
import sys

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

NAME = "Echo Bot V2"
GREETINGS = {
    "en": "👋 Hello, {name}! I'm Echo Bot V2. Send me any message and I'll repeat it.",
    "ru": "👋 Привет, {name}! Я Echo-бот V2. Отправь мне любое сообщение, и я его повторю.",
}

dp = Dispatcher()


@dp.message(CommandStart())
async def start(message: Message) -> None:
    user = message.from_user
    lang = "ru" if user and (user.language_code or "").startswith("ru") else "en"
    # No parse_mode is set, so the name goes out as plain text and needs no escaping.
    await message.answer(GREETINGS[lang].format(name=user.first_name if user else "friend"))


@dp.message(Command("ping"))
async def ping(message: Message) -> None:
    await message.answer("pong")


@dp.message()
async def echo(message: Message) -> None:
    await message.copy_to(message.chat.id)


async def main() -> None:
    token = os.environ.get("BOT_TOKEN", "")
    if not token:
        sys.exit("BOT_TOKEN is not set")
    api_url = os.environ.get("TELEGRAM_API_URL")
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_url)) if api_url else None
    bot = Bot(token, session=session)
    print(f"Starting {NAME}…", flush=True)
    await dp.start_polling(bot)  # returns on SIGTERM or SIGINT


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stdout)
    asyncio.run(main())
