"""Faults: the runner down (answered at once, nothing queued), Telegram's 429, and a clean SIGTERM."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest
import redis

from protocol import keys
from tests.fakes.telegram import FakeTelegram
from tests.fixtures.controlbot import ADMIN_IDS, ALLOWED_USER_IDS, Chat, ControlbotProcess, example
from tests.fixtures.runner import RunnerProcess

pytestmark = pytest.mark.e2e

# Ids from the configured ranges that the shared chat_user/chat_admin fixtures never reach.
USER = ALLOWED_USER_IDS[-1]
ADMIN = ADMIN_IDS[-1]


def test_runner_down_answers_at_once_and_queues_nothing(
    fake_telegram: FakeTelegram,
    runner_factory: Callable[..., RunnerProcess],
    controlbot_factory: Callable[..., ControlbotProcess],
) -> None:
    runner = runner_factory()  # made, not started: its Redis has no heartbeat
    bot = controlbot_factory(runner.redis_url)
    chat = Chat(fake_telegram, bot.token, fake_telegram.user(USER, "Una"))
    store = redis.Redis.from_url(runner.redis_url)
    try:
        for command in ("/list", "/status echo", "/logs echo", "/stop echo", "/env echo A=1"):
            mark = chat.mark()
            sent = time.monotonic()
            chat.send(command)
            reply = chat.wait("❌", after=mark, timeout=10)
            assert time.monotonic() - sent < 3, command
            assert "runner is unavailable" in (reply.text or "") and "RUNNER_UNAVAILABLE" in (
                reply.text or ""
            )
        mark = chat.mark()
        chat.send_file("bot.py", example("echo_bot.py"), "/start_bot echo BOT_TOKEN=1:abcdef")
        reply = chat.wait("❌", after=mark, timeout=10)
        assert "runner is unavailable" in (reply.text or "")
        assert store.xlen(keys.COMMANDS_STREAM) == 0
        assert not list(store.scan_iter(f"{keys.PREFIX}:upload:*"))
        # An admin's /system says what is wrong rather than failing.
        admin = Chat(fake_telegram, bot.token, fake_telegram.user(ADMIN, "Root"))
        admin.send("/system")
        admin.wait("no fresh heartbeat")

        # The runner comes up: the same commands work.
        runner.start()
        mark = chat.mark()
        chat.send("/list")
        chat.wait("No bots yet", after=mark)
        # It goes down: unavailable again once its heartbeat is stale.
        runner.stop()
        deadline = time.monotonic() + keys.HEARTBEAT_TTL + 10
        while True:
            mark = chat.mark()
            chat.send("/list")
            reply = chat.wait(lambda m: True, after=mark, timeout=10)
            if "unavailable" in (reply.text or ""):
                break
            assert time.monotonic() < deadline, "never reported the runner as unavailable"
            time.sleep(1)
    finally:
        store.close()


def test_429_is_waited_out(
    fake_telegram: FakeTelegram, controlbot: ControlbotProcess, chat_user: Callable[..., Chat]
) -> None:
    chat = chat_user()
    fake_telegram.fail_next(controlbot.token, "sendMessage", retry_after=2)
    before = len(fake_telegram.calls(controlbot.token, "sendMessage"))
    sent = time.monotonic()
    chat.send("/help")
    chat.wait("Commands", timeout=20)
    assert time.monotonic() - sent >= 1.9
    assert len(fake_telegram.calls(controlbot.token, "sendMessage")) >= before + 2  # refused, then sent


def test_sigterm_stops_cleanly(
    runner_factory: Callable[..., RunnerProcess], controlbot_factory: Callable[..., ControlbotProcess]
) -> None:
    # A Redis database of its own, so this short-lived bot never takes the session bot's events.
    bot = controlbot_factory(runner_factory().redis_url, API_ENABLED="false")
    started = time.monotonic()
    assert bot.stop(signal.SIGTERM, timeout=15) == 0
    assert time.monotonic() - started < 10
    assert "control bot stopped" in bot.log_text()
    assert "Traceback" not in bot.log_text()
