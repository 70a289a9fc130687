"""Bad input gets a clear answer and changes nothing."""

from __future__ import annotations

from collections.abc import Callable

import docker
import pytest

from tests.fakes.telegram import FakeTelegram
from tests.fixtures.controlbot import Chat, ControlbotProcess, example

pytestmark = pytest.mark.e2e

QUIET = b"import time\nprint('Starting Quiet Bot', flush=True)\nwhile True:\n    time.sleep(60)\n"


def assert_nothing_deployed(chat: Chat, docker_client: docker.DockerClient, name: str) -> None:
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(f"botrunner-{chat.id}-{name}")
    mark = chat.mark()
    chat.send("/list")
    chat.wait("No bots yet", after=mark)


@pytest.mark.parametrize(
    ("filename", "data", "answer"),
    [
        ("notes.txt", b"hello\n", "is not a Python file"),
        ("bot.zip", b"PK\x03\x04", "not a valid .zip archive"),
        ("fake.zip", b"print(1)\n", "not a .zip archive"),
        ("image.png", b"\x89PNG\r\n", "is not a Python file"),
        ("binary.py", b"\x7fELF\x02\x01\x01\x00\x00\x00", "binary"),
        ("latin.py", b"print('\xff\xfe')\n", "binary"),
    ],
)
def test_files_that_are_not_python_source(
    chat_user: Callable[..., Chat],
    docker_client: docker.DockerClient,
    unique_name: Callable[[str], str],
    filename: str,
    data: bytes,
    answer: str,
) -> None:
    chat = chat_user()
    name = unique_name("bad")
    mark = chat.mark()
    chat.send_file(filename, data, f"/start_bot {name}")
    reply = chat.wait("❌", after=mark)
    assert answer in (reply.text or ""), reply.text
    assert_nothing_deployed(chat, docker_client, name)


def test_a_file_over_the_limit_is_refused_before_download(
    chat_user: Callable[..., Chat],
    fake_telegram: FakeTelegram,
    controlbot: ControlbotProcess,
    docker_client: docker.DockerClient,
    unique_name: Callable[[str], str],
) -> None:
    chat = chat_user()
    name = unique_name("big")
    big = b"# padding\n" * (2 * 1024 * 1024 + 1)  # just over 20 MB
    gets = len(fake_telegram.calls(controlbot.token, "getFile"))
    mark = chat.mark()
    chat.send_file("big.py", big, f"/start_bot {name}")
    reply = chat.wait("too big", after=mark)
    assert "too big (20.1 MB): the limit is 20 MB" in (reply.text or "")
    assert len(fake_telegram.calls(controlbot.token, "getFile")) == gets  # never downloaded
    assert_nothing_deployed(chat, docker_client, name)


@pytest.mark.parametrize("name", ["Echo", "e", "-echo", "echo_bot", "a" * 32, "эхо"])
def test_invalid_names_state_the_rule(
    chat_user: Callable[..., Chat], docker_client: docker.DockerClient, name: str
) -> None:
    chat = chat_user()
    mark = chat.mark()
    chat.send_file("bot.py", QUIET, f"/start_bot {name}")
    reply = chat.wait("Invalid bot name", after=mark)
    assert "2–31 characters: lowercase latin letters, digits and '-'" in (reply.text or "")
    mark = chat.mark()
    chat.send("/list")
    chat.wait("No bots yet", after=mark)


@pytest.mark.parametrize(
    ("env", "answer"),
    [
        ("NOVALUE", "is not KEY=VALUE"),
        ("1BAD=x", "is not a valid variable name"),
        ('GREETING="unclosed', "Unbalanced quotes"),
        ("-UNSET", "unsets a variable of an existing bot"),
    ],
)
def test_malformed_env_changes_nothing(
    chat_user: Callable[..., Chat],
    docker_client: docker.DockerClient,
    unique_name: Callable[[str], str],
    env: str,
    answer: str,
) -> None:
    chat = chat_user()
    name = unique_name("env")
    mark = chat.mark()
    chat.send_file("bot.py", QUIET, f"/start_bot {name} OK=1 {env}")
    reply = chat.wait("❌", after=mark)
    assert answer in (reply.text or ""), reply.text
    # The message carried values (OK=1), so it is gone, even though it was refused.
    upload = next(m for m in chat.messages() if m.message_id == mark + 1)
    assert upload.deleted
    assert_nothing_deployed(chat, docker_client, name)


def test_unknown_bot(chat_user: Callable[..., Chat], unique_name: Callable[[str], str]) -> None:
    chat = chat_user()
    ghost = unique_name("ghost")
    for command in (
        f"/status {ghost}",
        f"/logs {ghost}",
        f"/stop {ghost}",
        f"/restart {ghost}",
        f"/delete {ghost}",
    ):
        mark = chat.mark()
        chat.send(command)
        reply = chat.wait("❌", after=mark)
        assert f"No bot named {ghost}" in (reply.text or "") and "NOT_FOUND" in (reply.text or ""), command
    mark = chat.mark()
    chat.send(f"/start_bot {ghost}")
    reply = chat.wait("❌", after=mark)
    assert f"/start_bot {ghost}" in (reply.text or "")  # how to deploy it instead


def test_commands_without_a_name_show_usage(chat_user: Callable[..., Chat]) -> None:
    chat = chat_user()
    for command, usage in [
        ("/status", "Usage: /status name"),
        ("/logs", "Usage: /logs name"),
        ("/stop", "Usage: /stop name"),
        ("/restart", "Usage: /restart name"),
        ("/delete", "Usage: /delete name"),
        ("/env", "Usage: /env name"),
        ("/start_bot", "Usage: send a .py or .zip"),
        ("/update", "Usage: send the new .py or .zip"),
    ]:
        mark = chat.mark()
        chat.send(command)
        assert usage in (chat.wait("❌", after=mark).text or ""), command


def test_update_without_a_file_and_of_an_unknown_bot(
    chat_user: Callable[..., Chat], unique_name: Callable[[str], str]
) -> None:
    chat = chat_user()
    ghost = unique_name("ghost")
    mark = chat.mark()
    chat.send(f"/update {ghost}")
    chat.wait(f"No bot named {ghost}", after=mark)  # nothing to pull, nor to send a file to
    mark = chat.mark()
    chat.send_file("bot.py", example("echo_bot_v2.py"), f"/update {ghost}")
    progress = chat.wait("⏳", after=mark)
    chat.wait_edit(progress, f"No bot named {ghost}")
