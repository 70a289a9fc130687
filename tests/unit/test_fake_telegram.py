"""The fake Bot API server, exercised with the real aiogram client over HTTP on 127.0.0.1."""

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import BotCommand, BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup, Message

from tests.fakes.telegram import FakeTelegram

pytestmark = pytest.mark.unit

BOTS = Path(__file__).resolve().parents[2] / "examples" / "bots"


def keyboard(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=text, callback_data=data) for text, data in buttons]]
    )


@pytest.fixture
async def bot(fake_telegram: FakeTelegram, bot_token: str) -> AsyncIterator[Bot]:
    bot = Bot(bot_token, session=AiohttpSession(api=TelegramAPIServer.from_base(fake_telegram.url)))
    yield bot
    await bot.session.close()


async def test_get_me_derives_the_bot_from_its_token(bot: Bot, bot_token: str) -> None:
    me = await bot.get_me()

    assert me.is_bot
    assert me.id == int(bot_token.split(":")[0])
    assert me.username == f"bot_{me.id}"


async def test_sent_message_reads_back_with_html_parsed(
    fake_telegram: FakeTelegram, bot: Bot, bot_token: str
) -> None:
    fake_telegram.user(101, "Alice")

    msg = await bot.send_message(
        101, "<b>Hi</b> &lt;there&gt;", parse_mode="HTML", reply_markup=keyboard(("Go", "go:1"))
    )

    assert msg.text == "Hi <there>"
    assert msg.entities is not None and msg.entities[0].type == "bold"
    assert msg.from_user is not None and msg.from_user.id == bot.id
    assert msg.chat.id == 101 and msg.chat.type == "private"
    [stored] = fake_telegram.sent(bot_token, 101)
    assert (stored.message_id, stored.text, stored.source) == (
        msg.message_id,
        "Hi <there>",
        "<b>Hi</b> &lt;there&gt;",
    )
    assert stored.buttons == [{"text": "Go", "callback_data": "go:1"}]


async def test_edits_and_deletes_show_in_the_current_state(
    fake_telegram: FakeTelegram, bot: Bot, bot_token: str
) -> None:
    alice = fake_telegram.user(102, "Alice")
    secret = alice.send(bot_token, "my token is 123:SECRET")
    msg = await bot.send_message(102, "Deploying…", reply_markup=keyboard(("Stop", "stop")))
    waiter = asyncio.create_task(fake_telegram.wait_for(bot_token, 102, "Deployed"))

    await bot.edit_message_text("Deployed ✅", chat_id=102, message_id=msg.message_id)
    await bot.delete_message(102, secret.message_id)

    found = await waiter
    assert (found.message_id, found.edits) == (msg.message_id, 1)
    assert found.reply_markup is None  # like Telegram, an edit without reply_markup drops the keyboard
    assert fake_telegram.message(bot_token, 102, secret.message_id).deleted
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("Deployed ✅", chat_id=102, message_id=msg.message_id)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(102, secret.message_id)


async def test_long_poll_feeds_a_dispatcher(fake_telegram: FakeTelegram, bot: Bot, bot_token: str) -> None:
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}")

    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, close_bot_session=False))
    try:
        fake_telegram.user(103, "Alice").send(bot_token, "hello")
        await fake_telegram.wait_for(bot_token, 103, "echo: hello", timeout=5)
    finally:
        await dp.stop_polling()
        await polling
    stats = fake_telegram.poll_stats(bot_token)
    assert stats.conflicts == 0 and stats.max_active == 1


async def test_get_updates_returns_early_and_confirms_below_offset(
    fake_telegram: FakeTelegram, bot: Bot, bot_token: str
) -> None:
    alice = fake_telegram.user(104, "Alice")
    alice.send(bot_token, "/start now")
    [first] = await bot.get_updates(timeout=0)
    assert first.message is not None and first.message.text == "/start now"
    assert first.message.entities is not None and first.message.entities[0].type == "bot_command"
    assert first.message.entities[0].length == len("/start")

    poll = asyncio.create_task(bot.get_updates(offset=first.update_id + 1, timeout=10))
    await asyncio.sleep(0.2)
    assert not poll.done()
    started = time.monotonic()
    alice.send(bot_token, "two")
    [second] = await asyncio.wait_for(poll, 2)

    assert time.monotonic() - started < 1
    assert second.message is not None and second.message.text == "two"
    assert fake_telegram.pending_updates(bot_token) == 1
    assert await bot.get_updates(offset=second.update_id + 1, timeout=0) == []
    assert fake_telegram.pending_updates(bot_token) == 0
    alice.send(bot_token, "stale")
    await bot.delete_webhook(drop_pending_updates=True)
    assert fake_telegram.pending_updates(bot_token) == 0


async def test_documents_upload_download_and_replies(
    fake_telegram: FakeTelegram, bot: Bot, bot_token: str
) -> None:
    alice = fake_telegram.user(105, "Alice")
    sent = await bot.send_document(
        105, BufferedInputFile(b"hello file", "notes.txt"), caption="<i>notes</i>", parse_mode="HTML"
    )
    assert sent.document is not None and sent.caption == "notes"
    assert (sent.document.file_name, sent.document.file_size) == ("notes.txt", 10)
    [stored] = fake_telegram.sent(bot_token, 105)
    assert stored.document is not None and stored.document.data == b"hello file"

    upload = alice.send_document(bot_token, "bot.zip", b"PK\x03\x04zip", caption="deploy me")
    reply = alice.reply(bot_token, upload, "this one")
    first, second = await bot.get_updates(timeout=0)
    assert first.message is not None and first.message.document is not None
    assert (await bot.download(first.message.document)).read() == b"PK\x03\x04zip"  # type: ignore[union-attr]
    assert second.message is not None and second.message.reply_to_message is not None
    assert second.message.message_id == reply.message_id
    assert second.message.reply_to_message.document == first.message.document

    big = alice.send_document(bot_token, "big.bin", bytes(20 * 1024 * 1024 + 1))
    assert big.document is not None
    with pytest.raises(TelegramBadRequest, match="file is too big"):
        await bot.get_file(big.document.file_id)
    with pytest.raises(TelegramBadRequest, match="caption is too long"):
        await bot.send_document(105, BufferedInputFile(b"x", "x.txt"), caption="c" * 1025)


async def test_callback_press_reaches_the_bot_and_records_the_answer(
    fake_telegram: FakeTelegram, bot: Bot, bot_token: str
) -> None:
    alice = fake_telegram.user(106, "Alice")
    msg = await bot.send_message(
        106, "Pick", reply_markup=keyboard(("▶️ Start", "b:start:7"), ("⏹ Stop", "b:stop:7"))
    )
    [stored] = fake_telegram.sent(bot_token, 106)

    query_id = alice.press(bot_token, stored, button="Stop")
    [update] = await bot.get_updates(timeout=0)
    query = update.callback_query
    assert query is not None and query.id == query_id and query.data == "b:stop:7"
    assert query.from_user.id == 106
    assert isinstance(query.message, Message) and query.message.message_id == msg.message_id
    assert fake_telegram.callback_answer(bot_token, query_id) is None
    await bot.answer_callback_query(query_id, text="Stopped")

    assert fake_telegram.callback_answer(bot_token, query_id) == {
        "callback_query_id": query_id,
        "text": "Stopped",
    }
    with pytest.raises(ValueError, match="not a button"):
        alice.press(bot_token, stored, "b:delete:7")
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(106, "too long", reply_markup=keyboard(("x", "d" * 65)))


async def test_real_limits_and_errors(fake_telegram: FakeTelegram, bot: Bot, bot_token: str) -> None:
    alice = fake_telegram.user(107, "Alice")

    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(107, "x" * 4097)
    await bot.send_message(107, "<pre>" + "x" * 4096 + "</pre>", parse_mode="HTML")  # tags don't count
    with pytest.raises(TelegramBadRequest, match='Unsupported start tag "module"'):
        await bot.send_message(107, '<pre>File "<module>", line 1</pre>', parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(999_999_107, "hi")
    alice.block(bot_token)
    with pytest.raises(TelegramForbiddenError, match="blocked"):
        await bot.send_message(107, "hi")


async def test_two_pollers_conflict_like_telegram(
    fake_telegram: FakeTelegram, bot: Bot, bot_token: str
) -> None:
    older = asyncio.create_task(bot.get_updates(timeout=5))
    await fake_telegram.wait_until(lambda: fake_telegram.poll_stats(bot_token).active == 1, timeout=2)

    assert await bot.get_updates(timeout=0) == []
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await older
    stats = fake_telegram.poll_stats(bot_token)
    assert (stats.conflicts, stats.max_active, stats.active) == (1, 2, 0)


async def test_fail_next_and_revoke(fake_telegram: FakeTelegram, bot: Bot, bot_token: str) -> None:
    fake_telegram.user(108, "Alice")
    fake_telegram.fail_next(bot_token, "sendMessage", retry_after=3)

    with pytest.raises(TelegramRetryAfter) as error:
        await bot.send_message(108, "hi")
    assert error.value.retry_after == 3
    await bot.send_message(108, "hi")
    assert len(fake_telegram.calls(bot_token, "sendMessage")) == 2

    fake_telegram.revoke(bot_token)
    with pytest.raises(TelegramUnauthorizedError):
        await bot.get_me()


async def test_commands_and_plain_http_clients(fake_telegram: FakeTelegram, bot: Bot, bot_token: str) -> None:
    fake_telegram.user(109, "Alice")
    await bot.set_my_commands([BotCommand(command="deploy", description="Deploy a bot")])
    assert [c.command for c in await bot.get_my_commands()] == ["deploy"]
    assert fake_telegram.calls(bot_token, "setMyCommands")[0]["commands"][0]["command"] == "deploy"

    base = f"{fake_telegram.url}/bot{bot_token}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/getMe") as resp:
            assert (await resp.json())["result"]["id"] == bot.id
        async with http.post(f"{base}/sendMessage", json={"chat_id": 109, "text": "json"}) as resp:
            assert (await resp.json())["result"]["text"] == "json"
        async with http.get(f"{base}/sendMessage", params={"chat_id": "109", "text": "query"}) as resp:
            assert (await resp.json())["result"]["text"] == "query"
        async with http.get(f"{base}/setWebhook") as resp:  # unknown methods just succeed
            assert await resp.json() == {"ok": True, "result": True}
        async with http.get(f"{fake_telegram.url}/file/bot{bot_token}/documents/nope.txt") as resp:
            assert resp.status == 404


async def test_sync_api_works_from_another_thread(
    fake_telegram: FakeTelegram, bot: Bot, bot_token: str
) -> None:
    alice = fake_telegram.user(110, "Alice")

    def user_side() -> str | None:
        alice.send(bot_token, "ping from a thread")
        return fake_telegram.wait_for_sync(bot_token, 110, "ack", timeout=5).text

    user_task = asyncio.create_task(asyncio.to_thread(user_side))
    await fake_telegram.wait_until(lambda: fake_telegram.pending_updates(bot_token), timeout=5)
    [update] = await bot.get_updates(timeout=0)
    assert update.message is not None
    await bot.send_message(110, "ack", reply_to_message_id=update.message.message_id)

    assert await user_task == "ack"
    assert fake_telegram.sent(bot_token, 110)[0].reply_to is not None


@pytest.mark.parametrize(("script", "marker"), [("echo_bot.py", ""), ("echo_bot_v2.py", " V2")])
async def test_example_echo_bot_process(fake_telegram: FakeTelegram, script: str, marker: str) -> None:
    token = fake_telegram.new_token("echo")
    alice = fake_telegram.user(201, "Alice", language_code="en")
    boris = fake_telegram.user(202, "Борис", language_code="ru-RU")
    env = {**os.environ, "BOT_TOKEN": token, "TELEGRAM_API_URL": fake_telegram.url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(BOTS / script),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    try:
        first_line = await asyncio.wait_for(proc.stdout.readline(), 10)
        assert first_line.decode().strip() == f"Starting Echo Bot{marker}…"
        alice.send(token, "/start")
        boris.send(token, "/start")
        alice.send(token, "/ping")
        boris.send(token, "hello there")

        en = f"👋 Hello, Alice! I'm Echo Bot{marker}. Send me any message and I'll repeat it."
        ru = f"👋 Привет, Борис! Я Echo-бот{marker}. Отправь мне любое сообщение, и я его повторю."
        await fake_telegram.wait_for(token, 201, lambda m: m.text == en)
        await fake_telegram.wait_for(token, 201, lambda m: m.text == "pong")
        await fake_telegram.wait_for(token, 202, lambda m: m.text == ru)
        await fake_telegram.wait_for(token, 202, lambda m: m.text == "hello there")

        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert await asyncio.wait_for(proc.wait(), 5) == 0
        assert time.monotonic() - started < 2
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    # The bot's last long poll hung up, so it no longer counts as a poller.
    await fake_telegram.wait_until(lambda: fake_telegram.poll_stats(token).active == 0, timeout=2)
    assert fake_telegram.poll_stats(token).conflicts == 0


async def test_example_error_bot_crashes_with_a_traceback() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(BOTS / "error_bot.py"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 10)

    assert proc.returncode == 1
    assert "Starting Error Bot" in out.decode()
    assert "Traceback" in err.decode() and "ValueError: TEST ERROR" in err.decode()
