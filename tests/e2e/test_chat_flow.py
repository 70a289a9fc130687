"""The guided deploy (a .py with no caption), /start_bot as a reply, and /cancel."""

from __future__ import annotations

from collections.abc import Callable

import docker
import pytest

from tests.fakes.telegram import FakeTelegram
from tests.fixtures.controlbot import Chat, deploy, example

pytestmark = pytest.mark.e2e


def test_guided_deploy(
    chat_user: Callable[..., Chat],
    fake_telegram: FakeTelegram,
    docker_client: docker.DockerClient,
    unique_name: Callable[[str], str],
) -> None:
    chat = chat_user("Gina")
    name = unique_name("guided")
    token = fake_telegram.new_token("guided")
    chat.send_file("echo_bot.py", example("echo_bot.py"))
    ask_name = chat.wait("What should the bot be called")
    assert "echo_bot.py" in (ask_name.text or "") and ask_name.button("Cancel")
    mark = chat.mark()
    chat.send("Not A Name")
    chat.wait("Invalid bot name", after=mark)  # the rule, and the question stands
    mark = chat.mark()
    chat.send(name)
    ask_env = chat.wait("environment variables", after=mark)
    ask_env.button("No variables")
    mark = chat.mark()
    env_message = chat.send(f"BOT_TOKEN={token}\nTELEGRAM_API_URL={fake_telegram.url}")
    confirm = chat.wait("Deploy", after=mark)
    assert chat.current(env_message).deleted
    assert token not in (confirm.text or "") and "BOT_TOKEN" in (confirm.text or "")
    chat.press(confirm, "🚀 Deploy")
    card = chat.wait_edit(confirm, "🟢 running", timeout=120)  # the confirmation became the progress
    assert f"{name} — running" in (card.text or "")
    assert docker_client.containers.get(f"botrunner-{chat.id}-{name}").status == "running"
    chat.user.send(token, "/ping")
    fake_telegram.wait_for_sync(token, chat.id, "pong", timeout=60)


def test_guided_deploy_without_variables_and_stale_buttons(
    chat_user: Callable[..., Chat], unique_name: Callable[[str], str]
) -> None:
    chat = chat_user()
    name = unique_name("novars")
    chat.send_file("quiet.py", b"import time\nwhile True:\n    time.sleep(60)\n", caption="my quiet bot")
    chat.wait("What should the bot be called")
    mark = chat.mark()
    chat.send(name)
    ask_env = chat.wait("environment variables", after=mark)
    mark = chat.mark()
    chat.press(ask_env, "No variables")
    confirm = chat.wait("Deploy", after=mark)
    assert "Env: none" in (confirm.text or "")
    chat.press(confirm, "🚀 Deploy")
    chat.wait_edit(confirm, "🟢 running", timeout=120)
    # The flow is over: its old buttons say so.
    query = chat.press(ask_env, "No variables")
    assert "This step is over" in chat.answer_to(query).get("text", "")


def test_cancel_in_the_middle(
    chat_user: Callable[..., Chat], docker_client: docker.DockerClient, unique_name: Callable[[str], str]
) -> None:
    chat = chat_user()
    name = unique_name("cancelled")
    chat.send_file("bot.py", example("echo_bot.py"))
    ask = chat.wait("What should the bot be called")
    mark = chat.mark()
    chat.send(name)
    chat.wait("environment variables", after=mark)
    mark = chat.mark()
    chat.send("/cancel")
    chat.wait("Cancelled. Nothing was changed.", after=mark)
    mark = chat.mark()
    chat.send("FOO=bar")  # no longer read as env: the flow is gone
    chat.wait("did not understand", after=mark)
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(f"botrunner-{chat.id}-{name}")
    # The Cancel button of a new flow does the same, editing its message.
    mark = chat.mark()
    chat.send_file("bot.py", example("echo_bot.py"))
    ask = chat.wait("What should the bot be called", after=mark)
    chat.press(ask, "Cancel")
    chat.wait_edit(ask, "Cancelled")


def test_guided_name_that_exists_points_to_update(
    chat_user: Callable[..., Chat], unique_name: Callable[[str], str]
) -> None:
    chat = chat_user()
    name = unique_name("taken")
    deploy(chat, name, b"import time\nwhile True:\n    time.sleep(60)\n")
    mark = chat.mark()
    chat.send_file("bot.py", example("echo_bot.py"))
    chat.wait("What should the bot be called", after=mark)
    mark = chat.mark()
    chat.send(name)
    reply = chat.wait("already have a bot", after=mark)
    assert f"/update {name}" in (reply.text or "")


def test_start_bot_as_a_reply_to_a_file(
    chat_user: Callable[..., Chat], fake_telegram: FakeTelegram, unique_name: Callable[[str], str]
) -> None:
    chat = chat_user()
    name = unique_name("reply")
    token = fake_telegram.new_token("reply")
    upload = chat.send_file("echo_bot.py", example("echo_bot.py"))
    chat.wait("What should the bot be called")
    mark = chat.mark()
    command = chat.send(
        f"/start_bot {name} BOT_TOKEN={token} TELEGRAM_API_URL={fake_telegram.url}", reply_to=upload
    )
    progress = chat.wait("⏳", after=mark)
    card = chat.wait_edit(progress, "🟢 running", timeout=120)
    assert f"{name} — running" in (card.text or "")
    assert chat.current(command).deleted  # it carried the values
    chat.user.send(token, "/ping")
    fake_telegram.wait_for_sync(token, chat.id, "pong", timeout=60)
