"""Telegram-aware deploys through the chat, against the fake Bot API: a rejected token creates
nothing, a valid one shows its @username, one token has one poller, a webhook is found and removed,
and a bot whose output shows 409 Conflict gets its owner one notice."""

from __future__ import annotations

import time
from collections.abc import Callable

import docker
import pytest

from tests.fakes.telegram import FakeTelegram
from tests.fixtures.controlbot import Chat, deploy

pytestmark = pytest.mark.e2e

SLEEPER = b"import time\nprint('up', flush=True)\nwhile True:\n    time.sleep(1)\n"


def containers(docker_client: docker.DockerClient, owner: int, name: str) -> list[object]:
    flt = {"label": [f"botrunner.owner={owner}", f"botrunner.bot={name}"]}
    return list(docker_client.containers.list(all=True, filters=flt))


def test_a_token_telegram_rejects_creates_nothing(
    chat_user: Callable[..., Chat], docker_client: docker.DockerClient, unique_name: Callable[[str], str]
) -> None:
    chat = chat_user()
    name = unique_name("bad")
    unknown = "7999999999:TEST-never-issued-xxxxxxxxxxxxxxxxxxxx"  # shaped like a token, never issued
    card = deploy(chat, name, SLEEPER, f"BOT_TOKEN={unknown}")
    text = card.text or ""
    assert "❌" in text and "Telegram rejects the token in BOT_TOKEN" in text and "TOKEN_INVALID" in text
    assert unknown not in text
    assert containers(docker_client, chat.id, name) == []
    chat.send("/list")
    chat.wait("No bots yet")


def test_a_valid_token_shows_its_username_and_one_token_has_one_poller(
    chat_user: Callable[..., Chat], fake_telegram: FakeTelegram, unique_name: Callable[[str], str]
) -> None:
    alice, bob = chat_user("Alice"), chat_user("Bob")
    token = fake_telegram.new_token("tg")
    username = fake_telegram.bot_user(token)["username"]
    first = unique_name("one")
    card = deploy(alice, first, SLEEPER, f"BOT_TOKEN={token}")
    assert "🟢" in (card.text or "") and f"@{username}" in (card.text or "")
    assert token not in (card.text or "")
    # Another of Alice's bots with the same token: refused, naming her bot.
    card = deploy(alice, unique_name("two"), SLEEPER, f"OTHER={token}")
    assert "TOKEN_IN_USE" in (card.text or "") and first in (card.text or "")
    # Bob with the same token: refused, without a word about Alice or her bot.
    card = deploy(bob, unique_name("bob"), SLEEPER, f"BOT_TOKEN={token}")
    text = card.text or ""
    assert "TOKEN_IN_USE" in text and "another hosted bot" in text
    assert first not in text and str(alice.id) not in text
    # Alice's own bot may set its token again (an update is no second poller).
    mark = alice.mark()
    alice.send(f"/env {first} BOT_TOKEN={token}")
    assert "Env of" in (alice.wait("Env of", after=mark).text or "")


def test_a_webhook_on_the_token_is_found_and_removed(
    chat_user: Callable[..., Chat], fake_telegram: FakeTelegram, unique_name: Callable[[str], str]
) -> None:
    chat = chat_user()
    token = fake_telegram.new_token("hooked")
    fake_telegram.set_webhook(token, "https://example.invalid/hook")
    name = unique_name("hook")
    card = deploy(chat, name, SLEEPER, f"BOT_TOKEN={token}")
    assert "A webhook is set on the token in BOT_TOKEN" in (card.text or "")
    mark = chat.mark()
    chat.press(card, "Remove webhook")
    chat.wait("Webhook removed", after=mark)
    assert fake_telegram.webhook(token) == ""


def test_409_in_the_output_gets_one_notice(
    chat_user: Callable[..., Chat], unique_name: Callable[[str], str]
) -> None:
    chat = chat_user()
    name = unique_name("conflict")
    code = (
        b"import time\nwhile True:\n"
        b"    print('TelegramConflictError: Conflict: terminated by other getUpdates request', flush=True)\n"
        b"    time.sleep(0.5)\n"
    )
    mark = chat.mark()
    deploy(chat, name, code)
    notice = chat.wait("409 Conflict from Telegram", after=mark, timeout=30)
    assert name in (notice.text or "")
    after = chat.mark()
    time.sleep(6)  # three more checks of its output: no second notice within the hour
    assert not [m for m in chat.sent() if m.message_id > after and "409 Conflict" in (m.text or "")]
