"""A fake Telegram Bot API server for tests, spoken to over HTTP on 127.0.0.1.

Real aiogram processes reach it with
``Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(server.url)))``.
Every token of the form ``<digits>:<anything>`` is a bot (getMe: id from the digits, username
``bot_<id>``); each has its own update queue, chats, call log and poller bookkeeping. Bots may only
message users registered with ``server.user(...)`` (else 400 "chat not found"), as on Telegram.

Run it in a background thread with its own loop (works from sync and async tests)::

    with FakeTelegram() as tg:                       # or tg.start_thread() / tg.stop_thread()
        token = tg.new_token("echo")
        alice = tg.user(111, "Alice", language_code="en")
        alice.send(token, "/start")
        greeting = await tg.wait_for(token, 111, "Hello")   # or tg.wait_for_sync(...) in sync tests
        alice.press(token, greeting, button="Deploy")

or in the current event loop with ``async with FakeTelegram() as tg`` (then only the async waits work).
Test-side methods are thread-safe; the ``Message`` objects they return are snapshots, so call
``sent``/``message`` again to see later edits.
"""

from tests.fakes.telegram.models import (
    CONFLICT,
    JSON,
    MAX_CALLBACK_DATA,
    MAX_CAPTION,
    MAX_DOWNLOAD,
    MAX_TEXT,
    MAX_UPLOAD,
    NOT_MODIFIED,
    ApiError,
    File,
    Message,
    PollStats,
)
from tests.fakes.telegram.server import FakeTelegram
from tests.fakes.telegram.users import FakeUser

__all__ = [
    "CONFLICT",
    "JSON",
    "MAX_CALLBACK_DATA",
    "MAX_CAPTION",
    "MAX_DOWNLOAD",
    "MAX_TEXT",
    "MAX_UPLOAD",
    "NOT_MODIFIED",
    "ApiError",
    "FakeTelegram",
    "FakeUser",
    "File",
    "Message",
    "PollStats",
]
