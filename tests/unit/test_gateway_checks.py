"""The gateway's checks on what users send (the same for chat and API), and how the chat words them."""

from __future__ import annotations

import pytest

from controlbot.errors import describe, mb
from controlbot.gateway import Gateway, Upload
from controlbot.i18n import create_i18n
from protocol.client import RunnerClient
from protocol.errors import BotrunnerError, ErrorCode
from protocol.rules import MAX_ENV_KEYS, MAX_ENV_TOTAL_BYTES, is_bot_token

pytestmark = pytest.mark.unit

TOKEN = "123456:TEST-control-uploads-aaaaaaaaaaaaaaaaaaaa"
MB = 1024 * 1024


@pytest.fixture
def gateway() -> Gateway:
    return Gateway(RunnerClient(None), bot_token=TOKEN, max_upload_bytes=20 * MB)  # type: ignore[arg-type]


def chat_text(exc: BotrunnerError, locale: str = "en") -> str:
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale(locale):
        return describe(exc)


def refused(fn: object, *args: object) -> BotrunnerError:
    with pytest.raises(BotrunnerError) as info:
        fn(*args)  # type: ignore[operator]
    return info.value


def test_a_small_py_or_zip_passes(gateway: Gateway) -> None:
    gateway.check_upload_meta("bot.py", 100)
    gateway.check_upload_meta("Bot.ZIP", 100)
    gateway.check_upload_meta("BOT.PY", 20 * MB)  # exactly the limit is fine


@pytest.mark.parametrize("name", ["bot.tar.gz", "notes.txt", ""])
def test_wrong_kinds(gateway: Gateway, name: str) -> None:
    exc = refused(gateway.check_upload_meta, name, 100)
    assert exc.code is ErrorCode.INVALID_SOURCE and exc.params.reason == "kind"
    assert "not a Python file" in chat_text(exc)


def test_too_big_before_download(gateway: Gateway) -> None:
    exc = refused(gateway.check_upload_meta, "bot.py", 20 * MB + 1)
    assert (exc.params.max_bytes, exc.params.size_bytes) == (20 * MB, 20 * MB + 1)
    assert "too big (20.1 MB): the limit is 20 MB" in chat_text(exc)
    assert "20.1" in chat_text(exc, "ru")  # the figures come from params, in any language


@pytest.mark.parametrize("data", [b"\x00\x01print()", b"print('\xff')\n", b"\x89PNG\r\n\x1a\n"])
def test_binary_content(gateway: Gateway, data: bytes) -> None:
    exc = refused(gateway.check_upload, Upload("bot.py", data))
    assert exc.params.reason == "binary" and "binary" in chat_text(exc)


def test_declared_encoding_and_syntax_errors_pass(gateway: Gateway) -> None:
    gateway.check_upload(Upload("bot.py", b"# -*- coding: latin-1 -*-\nprint('\xe9')\n"))
    gateway.check_upload(Upload("bot.py", b"print('hi'\nthis is not python\n"))  # its logs say why
    gateway.check_upload(Upload("bot.py", "print('привет')\n".encode()))


def test_zip_content(gateway: Gateway) -> None:
    gateway.check_upload(Upload("b.zip", b"PK\x03\x04rest is the runner's to judge"))
    gateway.check_upload(Upload("b.zip", b"PK\x05\x06" + b"\x00" * 18))  # an empty archive
    exc = refused(gateway.check_upload, Upload("b.zip", b"print('not a zip')\n"))
    assert exc.params.reason == "not_zip" and ".zip" in chat_text(exc)


@pytest.mark.parametrize(
    "value",
    [f" {TOKEN} ", f'"{TOKEN}"', f"'{TOKEN}'", f"prefix-{TOKEN}-suffix", f"{TOKEN[:20]}\n{TOKEN[20:]}"],
)
def test_own_token_is_refused_in_any_form(gateway: Gateway, value: str) -> None:
    exc = refused(gateway.check_env, {"OTHER_NAME": value})
    assert exc.code is ErrorCode.INVALID_ENV and exc.params.reason == "own_token"
    text = chat_text(exc)
    assert "own token" in text and TOKEN not in text and TOKEN not in exc.message
    gateway.check_env({"BOT_TOKEN": "999999:other-token-bbbbbbbbbbbbbbbbbbbbbbbbbb"})


def test_env_caps(gateway: Gateway) -> None:
    exc = refused(gateway.check_env, {f"K{i}": "v" for i in range(MAX_ENV_KEYS + 1)})
    assert exc.params.limit == MAX_ENV_KEYS and f"at most {MAX_ENV_KEYS}" in chat_text(exc)
    big = {f"K{i}": "x" * 30_000 for i in range(3)}
    exc = refused(gateway.check_env, big)
    assert exc.params.max_bytes == MAX_ENV_TOTAL_BYTES and "64 KB" in chat_text(exc)
    exc = refused(gateway.check_env, {"1BAD": "x"})
    assert exc.code is ErrorCode.INVALID_ENV and exc.params.key == "1BAD"


def test_token_shape() -> None:
    assert is_bot_token("7000000001:TEST-echo-4-aaaaaaaaaaaaaaaaaaaaaaaaa")
    assert not is_bot_token("info") and not is_bot_token("12:ab") and not is_bot_token("1234567:short")


def test_mb_rounds_up() -> None:
    assert mb(20 * MB) == "20" and mb(20 * MB + 1) == "20.1" and mb(1) == "0.1"
