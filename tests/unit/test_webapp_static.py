"""The dashboard's shipped files and its chat entry points, without a browser."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from aiogram.types import InlineKeyboardMarkup

from controlbot import dashboard, keyboards
from controlbot.api.routes.webapp import FILES, STATIC_DIR
from controlbot.i18n import create_i18n
from protocol.errors import ErrorCode
from protocol.models import BotStatus

pytestmark = pytest.mark.unit

URL = "https://dash.example.test/app/"


def _catalog(lang: str) -> set[str]:
    """The error codes the JS catalog words in one language."""
    text = (STATIC_DIR / "i18n.js").read_text()
    block = re.search(rf"const ERRORS = \{{.*?\n    {lang}: \{{(.*?)\n    \}}", text, re.S)
    assert block is not None, lang
    return set(re.findall(r"^\s+([A-Z_]+):", block.group(1), re.M))


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_every_error_code_is_worded_in_the_page(lang: str) -> None:
    assert {code.value for code in ErrorCode} <= _catalog(lang)


def test_every_served_file_ships() -> None:
    for name in FILES:
        assert (STATIC_DIR / name).is_file(), name


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("en"):
        yield


@pytest.fixture
def with_dashboard() -> Iterator[None]:
    token = dashboard._url.set(URL)
    try:
        yield
    finally:
        dashboard._url.reset(token)


def _web_apps(markup: InlineKeyboardMarkup | None) -> list[str]:
    assert markup is not None
    return [b.web_app.url for row in markup.inline_keyboard for b in row if b.web_app is not None]


def _bot() -> BotStatus:
    return BotStatus.model_validate(
        {
            "owner": 1,
            "name": "echo",
            "state": "running",
            "desired": "running",
            "limits": {"memory_bytes": 1, "cpu": 0.5, "pids": 64},
            "source": {"kind": "file"},
            "created_at": 0,
            "updated_at": 0,
        }
    )


def test_no_dashboard_buttons_without_webapp_url() -> None:
    assert _web_apps(keyboards.menu()) == []
    assert _web_apps(keyboards.card(_bot())) == []
    assert keyboards.bot_list([], 1) is None


@pytest.mark.usefixtures("with_dashboard")
def test_start_list_and_card_carry_the_dashboard() -> None:
    assert _web_apps(keyboards.menu()) == [URL]
    assert _web_apps(keyboards.card(_bot())) == [URL]
    assert _web_apps(keyboards.bot_list([_bot()], 1)) == [URL]
    assert _web_apps(keyboards.bot_list([], 1)) == [URL]  # even with no bots yet
