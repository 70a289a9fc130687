"""The dashboard's shipped files and its chat entry points, without a browser."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiogram.types import InlineKeyboardMarkup
from fastapi import FastAPI

from controlbot import dashboard, keyboards
from controlbot.api.routes import webapp
from controlbot.api.routes.webapp import FILES, STATIC_DIR
from controlbot.i18n import create_i18n
from protocol.errors import ErrorCode
from protocol.models import BotStatus

pytestmark = pytest.mark.unit

URL = "https://dash.example.test/app/"
LANGUAGES = ["en", "ru"]


def _words(lang: str) -> dict[str, Any]:
    """The page's words in one language: {"ui": {...}, "errors": {...}}."""
    words: dict[str, Any] = json.loads((STATIC_DIR / f"i18n.{lang}.json").read_text(encoding="utf-8"))
    return words


def _keys(tree: dict[str, Any], prefix: str = "") -> set[str]:
    return {
        path
        for key, value in tree.items()
        for path in (_keys(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}"})
    }


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_error_code_is_worded_in_the_page(lang: str) -> None:
    assert {code.value for code in ErrorCode} <= set(_words(lang)["errors"])


@pytest.mark.parametrize("lang", LANGUAGES[1:])
def test_every_language_words_the_same_keys_as_english(lang: str) -> None:
    assert _keys(_words(lang)) == _keys(_words("en"))


async def test_the_words_are_served_as_json_like_the_other_files() -> None:
    app = FastAPI()
    app.include_router(webapp.router)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
    async with client:
        for lang in LANGUAGES:
            resp = await client.get(f"/app/i18n.{lang}.json")
            assert resp.status_code == 200
            assert resp.headers["content-type"] == "application/json"
            assert resp.headers["cache-control"] == "no-cache"
            assert resp.headers["x-content-type-options"] == "nosniff"
            assert resp.json() == _words(lang)
        for unlisted in ("i18n.de.json", "i18n/en.json", "..%2Fapi%2Froutes%2Fwebapp.py", "__init__.py"):
            assert (await client.get(f"/app/{unlisted}")).status_code == 404, unlisted


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
