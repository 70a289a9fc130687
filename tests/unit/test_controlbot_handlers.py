"""Handler wiring fed in-process (aiogram's feed_update) with a recording session: no Telegram, no runner.

These are quick checks of routing, access control and error answers; the e2e chat tests walk the
real processes.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.base import BaseSession
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import AnswerCallbackQuery, SendMessage, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import Chat, Message, Update
from redis.asyncio import Redis

from controlbot.app import create_dispatcher, create_gateway
from controlbot.callbacks import BotAction, BotCb
from controlbot.i18n import create_i18n
from controlbot.retry import RetryAfterMiddleware
from controlbot.settings import Settings
from protocol.client import RunnerClient

pytestmark = pytest.mark.unit

ADMIN, USER, STRANGER = 1001, 2002, 3003
TOKEN = "123456:TEST-unit"


class RecordingSession(BaseSession):
    """Answers every Bot API call at once and remembers it."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[TelegramMethod[Any]] = []
        self.fail_with: list[Exception] = []
        self._ids = itertools.count(1)

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        self.requests.append(method)
        if self.fail_with:
            raise self.fail_with.pop(0)
        if isinstance(method, SendMessage):
            chat = Chat(id=int(method.chat_id), type="private")
            message = Message(
                message_id=next(self._ids), date=datetime.datetime.now(), chat=chat, text=method.text
            )
            return message  # type: ignore[return-value]
        return True  # type: ignore[return-value]

    async def stream_content(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        pass

    def texts(self) -> list[str]:
        return [m.text for m in self.requests if isinstance(m, SendMessage)]


@pytest.fixture(scope="module")
def settings() -> Iterator[Settings]:
    yield Settings(  # type: ignore[call-arg]
        _env_file=None,
        bot_token=TOKEN,
        admin_ids=str(ADMIN),
        allowed_user_ids=str(USER),
        redis_url="redis://127.0.0.1:1/0",
        api_enabled=False,
    )


@pytest.fixture(scope="module")
async def dispatcher(settings: Settings) -> AsyncIterator[Dispatcher]:
    """One dispatcher for the module: the feature routers are module-level and attach only once."""
    # Nothing listens on port 1: every call finds the store (Redis) unavailable.
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=0.5)
    dp = create_dispatcher(settings, create_gateway(settings, RunnerClient(redis)), redis, create_i18n())
    try:
        yield dp
    finally:
        for router in dp.sub_routers:
            router._parent_router = None  # aiogram has no public detach; lets another test wire them
        await redis.aclose()


@pytest.fixture
def wired(dispatcher: Dispatcher) -> tuple[Dispatcher, Bot, RecordingSession]:
    session = RecordingSession()
    return dispatcher, Bot(TOKEN, session=session), session


_update_ids = itertools.count(1)


def message(user: int, text: str, language: str = "en") -> Update:
    return Update.model_validate(
        {
            "update_id": next(_update_ids),
            "message": {
                "message_id": next(_update_ids),
                "date": 0,
                "chat": {"id": user, "type": "private"},
                "from": {"id": user, "is_bot": False, "first_name": "T", "language_code": language},
                "text": text,
            },
        }
    )


def press(user: int, data: str) -> Update:
    return Update.model_validate(
        {
            "update_id": next(_update_ids),
            "callback_query": {
                "id": str(next(_update_ids)),
                "from": {"id": user, "is_bot": False, "first_name": "T", "language_code": "en"},
                "chat_instance": "x",
                "data": data,
            },
        }
    )


async def test_stranger_is_refused_once(wired: tuple[Dispatcher, Bot, RecordingSession]) -> None:
    dp, bot, session = wired
    for text in ("/start", "/list", "hello", "/start_bot x"):
        await dp.feed_update(bot, message(STRANGER, text))
    texts = session.texts()
    assert len(texts) == 1 and str(STRANGER) in texts[0] and "private" in texts[0]


async def test_stranger_refusal_in_russian(wired: tuple[Dispatcher, Bot, RecordingSession]) -> None:
    dp, bot, session = wired
    await dp.feed_update(bot, message(STRANGER + 1, "/start", language="ru"))
    assert "закрытый бот" in session.texts()[0]


async def test_redis_down_is_answered_as_the_store_not_the_runner(
    wired: tuple[Dispatcher, Bot, RecordingSession],
) -> None:
    dp, bot, session = wired
    await dp.feed_update(bot, message(USER, "/list"))
    (text,) = session.texts()
    assert "store (Redis) is unavailable" in text and "STORE_UNAVAILABLE" in text
    assert "runner" not in text.lower() and "Traceback" not in text


async def test_forged_button_for_another_owner_is_not_found(
    wired: tuple[Dispatcher, Bot, RecordingSession],
) -> None:
    dp, bot, session = wired
    await dp.feed_update(bot, press(USER, BotCb(action=BotAction.STOP, owner=ADMIN, name="echo").pack()))
    (answer,) = [m for m in session.requests if isinstance(m, AnswerCallbackQuery)]
    assert answer.show_alert and "No bot named" in (answer.text or "")


async def test_garbage_callback_data(wired: tuple[Dispatcher, Bot, RecordingSession]) -> None:
    dp, bot, session = wired
    await dp.feed_update(bot, press(USER, "b:zz:notanumber:x"))
    (answer,) = [m for m in session.requests if isinstance(m, AnswerCallbackQuery)]
    assert "no longer valid" in (answer.text or "")


async def test_bad_input_is_answered_before_the_runner_is_asked(
    wired: tuple[Dispatcher, Bot, RecordingSession],
) -> None:
    dp, bot, session = wired
    await dp.feed_update(bot, message(USER, "/status Not_Valid"))
    await dp.feed_update(bot, message(USER, f"/logs {ADMIN}/echo"))
    first, second = session.texts()
    assert "Invalid bot name" in first and "INVALID_NAME" in first
    assert "No bot named" in second and "NOT_FOUND" in second


async def test_admin_only_commands(wired: tuple[Dispatcher, Bot, RecordingSession]) -> None:
    dp, bot, session = wired
    await dp.feed_update(bot, message(USER, "/quota 5 5"))
    await dp.feed_update(bot, message(USER, "/list all"))
    assert all("Only admins" in t for t in session.texts())


async def test_retry_after_is_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("controlbot.retry.asyncio.sleep", fake_sleep)
    session = RecordingSession()
    session.middleware(RetryAfterMiddleware())
    bot = Bot(TOKEN, session=session)
    method = SendMessage(chat_id=1, text="hi")
    session.fail_with = [TelegramRetryAfter(method, "Too Many Requests", 3)] * 2
    sent = await bot(method)
    assert sent.text == "hi" and slept == [3, 3] and len(session.requests) == 3
