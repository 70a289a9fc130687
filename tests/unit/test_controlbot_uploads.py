"""Checks on uploaded files that need no runner: name, size (before download), binary content."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiogram.types import Document

from controlbot.errors import Refusal
from controlbot.i18n import create_i18n
from controlbot.parsing import EnvChanges
from controlbot.settings import Settings
from controlbot.uploads import TOKEN_SHAPE, check_content, check_document, check_values, mb
from protocol.errors import ErrorCode

pytestmark = pytest.mark.unit

TOKEN = "123456:TEST-control-uploads"
MB = 1024 * 1024


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("en"):
        yield


@pytest.fixture
def settings() -> Settings:
    return Settings(_env_file=None, bot_token=TOKEN, admin_ids="1")  # type: ignore[call-arg]


def doc(name: str | None, size: int | None = 100) -> Document:
    return Document(file_id="f", file_unique_id="u", file_name=name, file_size=size)


def test_a_small_py_or_zip_passes(settings: Settings) -> None:
    check_document(doc("bot.py"), settings)
    check_document(doc("Bot.ZIP"), settings)
    check_document(doc("BOT.PY", 20 * MB), settings)  # exactly the limit is fine


@pytest.mark.parametrize(
    ("name", "answer"),
    [("bot.tar.gz", "not a Python file"), ("notes.txt", "not a Python file"), (None, "not a Python")],
)
def test_wrong_kinds(settings: Settings, name: str | None, answer: str) -> None:
    with pytest.raises(Refusal) as info:
        check_document(doc(name), settings)
    assert answer in info.value.message and info.value.code == ErrorCode.INVALID_SOURCE


def test_too_big_before_download(settings: Settings) -> None:
    with pytest.raises(Refusal) as info:
        check_document(doc("bot.py", 20 * MB + 1), settings)
    assert "too big (20.1 MB): the limit is 20 MB" in info.value.message


@pytest.mark.parametrize("data", [b"\x00\x01print()", b"print('\xff')\n", b"\x89PNG\r\n\x1a\n"])
def test_binary_content(settings: Settings, data: bytes) -> None:
    with pytest.raises(Refusal) as info:
        check_content(data, settings)
    assert "binary" in info.value.message


def test_declared_encoding_and_syntax_errors_pass(settings: Settings) -> None:
    check_content(b"# -*- coding: latin-1 -*-\nprint('\xe9')\n", settings)
    check_content(b"print('hi'\nthis is not python\n", settings)  # deployed anyway: its logs say why
    check_content("print('привет')\n".encode(), settings)


def test_own_token_is_refused_whatever_the_key(settings: Settings) -> None:
    with pytest.raises(Refusal) as info:
        check_values(EnvChanges(set={"OTHER_NAME": f" {TOKEN} "}), settings)
    assert "own token" in info.value.message and TOKEN not in info.value.message
    check_values(EnvChanges(set={"BOT_TOKEN": "999:other-token"}), settings)


def test_token_shape() -> None:
    assert TOKEN_SHAPE.fullmatch("7000000001:TEST-echo-4")
    assert not TOKEN_SHAPE.fullmatch("info") and not TOKEN_SHAPE.fullmatch("12:ab")


def test_mb_rounds_up() -> None:
    assert mb(20 * MB) == "20" and mb(20 * MB + 1) == "20.1" and mb(1) == "0.1"
