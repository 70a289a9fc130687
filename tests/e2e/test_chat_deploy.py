"""Deploying from chat, as a person would: the echo bot runs in Docker and answers on the fake Bot API."""

from __future__ import annotations

from collections.abc import Callable

import docker
import pytest

from tests.fakes.telegram import FakeTelegram
from tests.fixtures.controlbot import Chat, deploy, example

pytestmark = pytest.mark.e2e


def container(
    docker_client: docker.DockerClient, owner: int, name: str
) -> docker.models.containers.Container:
    return docker_client.containers.get(f"botrunner-{owner}-{name}")


def echo_env(fake: FakeTelegram) -> tuple[str, str]:
    token = fake.new_token("echo")
    return token, f"BOT_TOKEN={token} TELEGRAM_API_URL={fake.url}"


def test_deploy_echo_bot_and_talk_to_it(
    chat_user: Callable[..., Chat],
    fake_telegram: FakeTelegram,
    docker_client: docker.DockerClient,
    unique_name: Callable[[str], str],
) -> None:
    chat = chat_user("Alice")
    name = unique_name("echo")
    echo_token, env = echo_env(fake_telegram)
    card = deploy(chat, name, example("echo_bot.py"), env, filename="echo_bot.py")
    text = card.text or ""
    # One message went through the stages and ended as the card, with its buttons.
    assert text.startswith("⏳ downloading → 🚀 starting → 🟢 running"), text
    assert f"🟢 {name} — running" in text
    assert "echo_bot.py" in text and "BOT_TOKEN" in text
    assert echo_token not in text and echo_token.split(":")[1] not in text  # masked
    assert card.edits >= 1
    for label in ("Logs", "Restart", "Stop", "Update", "Delete"):
        card.button(label)
    # The message that carried the env values is gone.
    upload = next(m for m in chat.messages() if not m.from_bot and m.document is not None)
    assert upload.deleted
    # It runs in Docker, under the owner's name.
    assert container(docker_client, chat.id, name).status == "running"
    # And the echo bot itself answers on the fake Bot API.
    chat.user.send(echo_token, "/start")
    fake_telegram.wait_for_sync(echo_token, chat.id, "Hello, Alice! I'm Echo Bot", timeout=60)
    chat.user.send(echo_token, "/ping")
    fake_telegram.wait_for_sync(echo_token, chat.id, "pong", timeout=30)
    chat.user.send(echo_token, "echo this")
    fake_telegram.wait_for_sync(echo_token, chat.id, "echo this", timeout=30)


def test_echo_bot_greets_in_russian(
    chat_user: Callable[..., Chat], fake_telegram: FakeTelegram, unique_name: Callable[[str], str]
) -> None:
    chat = chat_user("Борис", language_code="ru")
    name = unique_name("echo-ru")
    echo_token, env = echo_env(fake_telegram)
    card = deploy(chat, name, example("echo_bot.py"), env)
    assert "🟢" in (card.text or "") and "работает" in (card.text or "")
    chat.user.send(echo_token, "/start")
    fake_telegram.wait_for_sync(echo_token, chat.id, "Привет, Борис! Я Echo-бот", timeout=60)


def test_logs_refresh_and_full_log(
    chat_user: Callable[..., Chat], fake_telegram: FakeTelegram, unique_name: Callable[[str], str]
) -> None:
    chat = chat_user()
    name = unique_name("logs")
    _token, env = echo_env(fake_telegram)
    deploy(chat, name, example("echo_bot.py"), env)
    logs = chat.logs_until(name, "Starting Echo Bot")
    assert "last 30 lines" in (logs.text or "")
    assert any(e["type"] == "pre" for e in logs.entities)
    # Refresh edits the same message in place (or says nothing changed).
    query = chat.press(logs, "Refresh")
    answer = chat.answer_to(query)
    assert answer.get("text") in ("Refreshed.", "No new lines.")
    # Full log comes as a .txt document.
    mark = chat.mark()
    chat.press(logs, "Full log")
    doc = chat.wait(lambda m: m.document is not None, after=mark)
    assert doc.document is not None and doc.document.file_name.endswith(".txt")
    assert b"Starting Echo Bot" in doc.document.data
    # The card's Logs button opens the same block.
    mark = chat.mark()
    chat.send(f"/status {name}")
    card = chat.wait(f"{name} — running", after=mark)
    mark = chat.mark()
    chat.press(card, "Logs")
    chat.wait("Starting Echo Bot", after=mark)


def test_logs_line_count(
    chat_user: Callable[..., Chat], fake_telegram: FakeTelegram, unique_name: Callable[[str], str]
) -> None:
    chat = chat_user()
    name = unique_name("lines")
    _token, env = echo_env(fake_telegram)
    deploy(chat, name, example("echo_bot.py"), env)
    mark = chat.mark()
    chat.send(f"/logs {name} 5")
    chat.wait("last 5 lines", after=mark)
    mark = chat.mark()
    chat.send(f"/logs {name} lots")
    chat.wait("Usage: /logs name [lines]", after=mark)


def test_list_with_keyboard_and_card_buttons(
    chat_user: Callable[..., Chat],
    fake_telegram: FakeTelegram,
    docker_client: docker.DockerClient,
    unique_name: Callable[[str], str],
) -> None:
    chat = chat_user()
    name = unique_name("card")
    _token, env = echo_env(fake_telegram)
    deploy(chat, name, example("echo_bot.py"), env)
    mark = chat.mark()
    chat.send("/list")
    listing = chat.wait("Your bots", after=mark)
    assert f"🟢 {name} — running" in (listing.text or "") and "(1/3)" in (listing.text or "")
    mark = chat.mark()
    chat.press(listing, name)
    card = chat.wait(f"{name} — running", after=mark)

    # Stop: the card is edited in place to the stopped state, with a Start button instead.
    chat.press(card, "Stop")
    card = chat.wait_edit(card, "🔴")
    assert f"{name} — stopped" in (card.text or "")
    assert container(docker_client, chat.id, name).status == "exited"
    # Start it again.
    chat.press(card, "Start")
    card = chat.wait_edit(card, f"{name} — running")
    assert container(docker_client, chat.id, name).status == "running"
    # Restart.
    query = chat.press(card, "Restart")
    assert "restarted" in chat.answer_to(query, timeout=30).get("text", "")
    # Delete asks first; Keep it changes nothing.
    mark = chat.mark()
    chat.press(card, "Delete")
    confirm = chat.wait("Delete", after=mark)
    chat.press(confirm, "Keep it")
    chat.wait_edit(confirm, "nothing was deleted")
    assert container(docker_client, chat.id, name).status == "running"
    mark = chat.mark()
    chat.press(card, "Delete")
    confirm = chat.wait("Delete", after=mark)
    chat.press(confirm, "Yes, delete")
    chat.wait_edit(confirm, "deleted")
    with pytest.raises(docker.errors.NotFound):
        container(docker_client, chat.id, name)
    mark = chat.mark()
    chat.send("/list")
    chat.wait("No bots yet", after=mark)


def test_stop_restart_delete_commands(
    chat_user: Callable[..., Chat],
    fake_telegram: FakeTelegram,
    docker_client: docker.DockerClient,
    unique_name: Callable[[str], str],
) -> None:
    chat = chat_user()
    name = unique_name("cmds")
    _token, env = echo_env(fake_telegram)
    deploy(chat, name, example("echo_bot.py"), env)
    mark = chat.mark()
    chat.send(f"/stop {name}")
    chat.wait(f"{name} stopped", after=mark)
    assert container(docker_client, chat.id, name).status == "exited"
    mark = chat.mark()
    chat.send(f"/start_bot {name}")  # no file: starts the stopped bot again
    chat.wait(f"{name} started", after=mark)
    assert container(docker_client, chat.id, name).status == "running"
    mark = chat.mark()
    chat.send(f"/restart {name}")
    chat.wait(f"{name} restarted", after=mark)
    mark = chat.mark()
    chat.send(f"/delete {name}")
    confirm = chat.wait("Delete", after=mark)
    chat.press(confirm, "Yes, delete")
    chat.wait_edit(confirm, "deleted")
    with pytest.raises(docker.errors.NotFound):
        container(docker_client, chat.id, name)


def test_update_to_v2(
    chat_user: Callable[..., Chat],
    fake_telegram: FakeTelegram,
    docker_client: docker.DockerClient,
    unique_name: Callable[[str], str],
) -> None:
    chat = chat_user()
    name = unique_name("upd")
    echo_token, env = echo_env(fake_telegram)
    deploy(chat, name, example("echo_bot.py"), env)
    old_id = container(docker_client, chat.id, name).id
    # /update as a reply to a message holding the new file; the env stays.
    v2 = chat.send_file("echo_bot_v2.py", example("echo_bot_v2.py"))
    fake_telegram.wait_for_sync(
        chat.token, chat.id, "What should the bot be called"
    )  # the guided flow offers
    mark = chat.mark()
    chat.send(f"/update {name}", reply_to=v2)
    progress = chat.wait("downloading", after=mark)
    done = chat.wait_edit(progress, "✅ updated", timeout=120)
    assert "⏹ stopping → 🚀 starting → ✅ updated" in (done.text or ""), done.text
    assert f"{name} — running" in (done.text or "") and "echo_bot_v2.py" in (done.text or "")
    assert container(docker_client, chat.id, name).id != old_id
    chat.logs_until(name, "Starting Echo Bot V2")
    chat.user.send(echo_token, "/ping")  # the kept env still points it at the fake server
    fake_telegram.wait_for_sync(echo_token, chat.id, "pong", timeout=60)


def test_start_bot_with_file_on_existing_name_points_to_update(
    chat_user: Callable[..., Chat], fake_telegram: FakeTelegram, unique_name: Callable[[str], str]
) -> None:
    chat = chat_user()
    name = unique_name("twice")
    _token, env = echo_env(fake_telegram)
    deploy(chat, name, example("echo_bot.py"), env)
    result = deploy(chat, name, example("echo_bot_v2.py"))
    assert "already exists" in (result.text or "") and f"/update {name}" in (result.text or "")
    mark = chat.mark()
    chat.send(f"/status {name}")
    card = chat.wait(f"{name} — running", after=mark)
    assert "echo_bot.py" in (card.text or "") or "bot.py" in (card.text or "")
    assert "v2" not in (card.text or "")


def test_syntax_error_is_still_deployed_and_shows_in_logs(
    chat_user: Callable[..., Chat], unique_name: Callable[[str], str], fake_telegram: FakeTelegram
) -> None:
    chat = chat_user()
    name = unique_name("syntax")
    card = deploy(chat, name, b"print('hi'\nthis is not python\n", filename="broken.py")
    assert "❌" not in (card.text or ""), card.text
    chat.logs_until(name, "SyntaxError")
