"""Which group messages carry env values (and are refused there)."""

from __future__ import annotations

import pytest

from controlbot.middlewares.groups import carries_env


@pytest.mark.parametrize(
    "text",
    [
        "/env echo KEY=value",
        "/env@botrunner_bot echo -OLD NEW=1",
        "/start_bot echo BOT_TOKEN=1:abc",
        "/start_bot echo --git https://h/r.git 'TOKEN=a b'",
        "/update echo --branch dev API_KEY=x",
        "/ENV echo A=",
    ],
)
def test_commands_with_values(text: str) -> None:
    assert carries_env(text)


@pytest.mark.parametrize(
    "text",
    [
        "/env echo",
        "/env echo -OLD",
        "/start_bot echo",
        "/start_bot echo --git https://h/r.git?a=b",
        "/status echo",
        "/logs echo 5",
        "/list",
        "KEY=value",  # not a command: only refused at the guided flow's env step
    ],
)
def test_commands_without_values(text: str) -> None:
    assert not carries_env(text)
