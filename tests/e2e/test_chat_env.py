"""Env vars: set and unset, the message carrying them deleted, values masked, tokens guarded."""

from __future__ import annotations

from collections.abc import Callable

import docker
import pytest

from tests.fixtures.controlbot import Chat, ControlbotProcess, deploy, example

pytestmark = pytest.mark.e2e

PRINT_ENV = b"""\
import os, time
print("GREETING=" + os.environ.get("GREETING", "<unset>"), flush=True)
print("MOOD=" + os.environ.get("MOOD", "<unset>"), flush=True)
while True:
    time.sleep(60)
"""


def container_env(docker_client: docker.DockerClient, chat: Chat, name: str) -> dict[str, str]:
    attrs = docker_client.containers.get(f"botrunner-{chat.id}-{name}").attrs
    return dict(item.split("=", 1) for item in attrs["Config"]["Env"])


def test_set_and_unset_with_the_message_deleted_and_values_masked(
    chat_user: Callable[..., Chat], docker_client: docker.DockerClient, unique_name: Callable[[str], str]
) -> None:
    chat = chat_user()
    name = unique_name("envy")
    card = deploy(chat, name, PRINT_ENV, 'GREETING="hello brave new world" MOOD=sunny')
    assert "hello brave new world" not in (card.text or "")
    assert container_env(docker_client, chat, name)["GREETING"] == "hello brave new world"
    # The logs show the bot's own values masked (#10); the container has them (above).
    logs = chat.logs_until(name, "GREETING=hel•••")
    assert "brave new world" not in (logs.text or "")

    mark = chat.mark()
    command = chat.send(f"/env {name} GREETING='good night moon' -MOOD")
    reply = chat.wait("Env of", after=mark)
    text = reply.text or ""
    assert "good night moon" not in text and "GREETING" in text and "MOOD" in text
    assert "restarted" in text
    assert chat.current(command).deleted  # the values left the chat once read
    env = container_env(docker_client, chat, name)
    assert env["GREETING"] == "good night moon" and "MOOD" not in env
    chat.logs_until(name, "MOOD=<unset>")

    # /env with only a name shows the card, with the values masked.
    mark = chat.mark()
    chat.send(f"/env {name}")
    card = chat.wait(f"{name} — running", after=mark)
    assert "GREETING" in (card.text or "") and "good night moon" not in (card.text or "")


def test_the_control_bots_own_token_is_refused(
    chat_user: Callable[..., Chat],
    controlbot: ControlbotProcess,
    docker_client: docker.DockerClient,
    unique_name: Callable[[str], str],
) -> None:
    chat = chat_user()
    name = unique_name("thief")
    chat.send_file("bot.py", example("echo_bot.py"), f"/start_bot {name} BOT_TOKEN={controlbot.token}")
    result = chat.wait("❌")
    assert "this control bot's own token" in (result.text or ""), result.text
    assert controlbot.token not in (result.text or "")
    assert all(controlbot.token not in (m.text or "") for m in chat.sent())
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(f"botrunner-{chat.id}-{name}")
    assert all(m.deleted for m in chat.messages() if not m.from_bot)
    # And through /env on an existing bot.
    deploy(chat, name, PRINT_ENV)
    mark = chat.mark()
    command = chat.send(f"/env {name} BOT_TOKEN={controlbot.token}")
    chat.wait("this control bot's own token", after=mark)
    assert chat.current(command).deleted
    assert "BOT_TOKEN" not in container_env(docker_client, chat, name)


def test_malformed_env_command(chat_user: Callable[..., Chat], unique_name: Callable[[str], str]) -> None:
    chat = chat_user()
    name = unique_name("envbad")
    deploy(chat, name, PRINT_ENV, "GREETING=hi")
    mark = chat.mark()
    command = chat.send(f"/env {name} SECRET=hunter2 oops")
    reply = chat.wait("❌", after=mark)
    assert "is not KEY=VALUE" in (reply.text or "") and "hunter2" not in (reply.text or "")
    assert chat.current(command).deleted
    chat.logs_until(name, "GREETING=hi")
