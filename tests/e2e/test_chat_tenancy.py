"""Tenancy at the front door: rate limits shared by chat and API, and env values kept out of groups."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.e2e.test_api_http import TOKEN_RE
from tests.fakes.telegram import FakeTelegram
from tests.fixtures.controlbot import Chat, ControlbotProcess, example
from tests.fixtures.runner import RunnerProcess

pytestmark = pytest.mark.e2e

LIMIT = 3
GROUP_ID = -1_001_234_567_890


def _inside_one_window(margin: float = 20.0) -> None:
    """Start with enough of the minute left that the test's commands fall in one window."""
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.5)


def test_rate_limit_is_shared_by_chat_and_api_and_said_once(
    fake_telegram: FakeTelegram,
    runner: RunnerProcess,
    controlbot_factory: Callable[..., ControlbotProcess],
    chat_user: Callable[..., Chat],
) -> None:
    bot = controlbot_factory(runner.redis_url, RATE_LIMIT_PER_MINUTE=str(LIMIT), API_ENABLED="true")
    chat = Chat(fake_telegram, bot.token, chat_user("Rita").user)
    mark = chat.mark()
    chat.send("/token")
    found = TOKEN_RE.search(chat.wait("API token", after=mark).text or "")
    assert found is not None and bot.api_url is not None
    auth = {"Authorization": f"Bearer {found[0]}"}

    _inside_one_window()
    for _ in range(LIMIT):  # each counts, though the bot does not exist
        mark = chat.mark()
        chat.send("/stop ghost")
        chat.wait("No bot named", after=mark)
    mark = chat.mark()
    for _ in range(3):
        chat.send("/stop ghost")
    slow = chat.wait("Slow down", after=mark)
    assert "at most 3 changes per minute" in (slow.text or "")
    chat.send("/list")  # reads are free, and answered
    chat.wait("No bots yet", after=mark)
    answers = [m for m in chat.sent() if m.message_id > mark]
    assert sum("Slow down" in (m.text or "") for m in answers) == 1, [m.text for m in answers]

    with httpx.Client(base_url=bot.api_url, headers=auth, timeout=30) as api:
        refused = api.post("/api/bots/ghost/stop")
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "RATE_LIMITED"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert api.get("/api/bots").status_code == 200  # reads are not counted


def test_env_values_are_refused_in_groups_and_deleted(
    fake_telegram: FakeTelegram, controlbot: ControlbotProcess, chat_user: Callable[..., Chat]
) -> None:
    chat = chat_user("Gina")
    group = fake_telegram.group(GROUP_ID - chat.id, "Bot makers")
    token = controlbot.token

    def in_group(match: str, after: int) -> None:
        fake_telegram.wait_for_sync(
            token, group["id"], lambda m: m.message_id > after and m.from_bot and match in (m.text or ""), 20
        )

    def mark() -> int:
        return len(fake_telegram.messages(token, group["id"]))

    attempts = [
        lambda: chat.user.send(token, "/env echo SECRET_KEY=hunter22", chat=group),
        lambda: chat.user.send_document(
            token, "bot.py", example("echo_bot.py"), "/start_bot echo BOT_TOKEN=1:abcdef", chat=group
        ),
    ]
    for attempt in attempts:
        before = mark()
        sent = attempt()
        in_group("private chat", before)
        assert fake_telegram.message(token, group["id"], sent.message_id).deleted

    # The guided flow: a file without caption, a name, then the env step's values.
    before = mark()
    chat.user.send_document(token, "bot.py", example("echo_bot.py"), chat=group)
    in_group("What should the bot be called", before)
    before = mark()
    chat.user.send(token, "flowbot", chat=group)
    in_group("environment variables", before)
    before = mark()
    values = chat.user.send(token, "BOT_TOKEN=1:abcdef", chat=group)
    in_group("private chat", before)
    assert fake_telegram.message(token, group["id"], values.message_id).deleted

    # Nothing reached the runner; the same command without values is fine in the group.
    before = mark()
    chat.user.send(token, "/list", chat=group)
    in_group("No bots yet", before)
