"""The Mini App dashboard in a real browser, against the real control bot, runner, Redis and Docker.

The page is served by the session's control bot at /app/ and calls its API with the initData a
stub `window.Telegram.WebApp` carries, signed with that control bot's token as Telegram would.
Each state of the page is captured in both themes under .test-state/screenshots/.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator

import docker
import httpx
import pytest
from playwright.sync_api import Browser, Route, expect

from tests.fakes.telegram import FakeTelegram
from tests.fakes.webapp import make_init_data
from tests.fixtures.api_users import TICKER_V2, ApiUser, mint_token, wait_for_api
from tests.fixtures.browser import Dashboard, browser, close_dashboard, open_dashboard, playwright_session
from tests.fixtures.controlbot import ALLOWED_USER_IDS, Chat, ControlbotProcess
from tests.fixtures.services import _private_redis

pytestmark = pytest.mark.e2e
__all__ = ["browser", "playwright_session"]  # fixtures, re-used

# Prints a greeting, then a numbered line every half second: the tail must grow while we watch.
TALKER = b"""\
import itertools, os, time
print("hello from", os.environ.get("WHO", "nobody"), flush=True)
for i in itertools.count(1):
    print(f"tick {i}", flush=True)
    time.sleep(0.5)
"""
FOREIGN_TOKEN = "654321:TEST-not-the-control-bot-xxxxxxxx"


@pytest.fixture
def api_user(controlbot: ControlbotProcess) -> Iterator[ApiUser]:
    """An allowed user with an API token, drawn at random from the top of the allowed range.

    Several test sessions may share one Redis and runner on this machine, and `chat_user` hands out
    the same ids in the same order in each of them; a random one keeps another session's teardown
    off this test's bots.
    """
    assert controlbot.api_url is not None
    wait_for_api(controlbot.api_url)
    owner = random.choice(ALLOWED_USER_IDS[100:])
    user = ApiUser(owner, mint_token(controlbot.env["REDIS_URL"], owner), controlbot.api_url)
    try:
        yield user
    finally:
        user.delete_all()


def _user(owner: int, lang: str = "en") -> dict[str, object]:
    return {"id": owner, "first_name": "Alice", "language_code": lang}


@pytest.fixture
def dashboard_for(
    browser: Browser, controlbot: ControlbotProcess, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Dashboard]]:
    """Open the dashboard as a user: `open(owner, lang=..., token=...)`; closed at teardown."""
    assert controlbot.api_url is not None
    wait_for_api(controlbot.api_url)
    opened: list[Dashboard] = []

    def make(
        owner: int,
        *,
        lang: str = "en",
        token: str | None = None,
        routes: dict[str, Callable[[Route], None]] | None = None,
    ) -> Dashboard:
        init_data = make_init_data(token or controlbot.token, owner, language_code=lang)
        name = request.node.name.removeprefix("test_")
        url = f"{controlbot.api_url}/app/"
        opened.append(open_dashboard(browser, url, init_data, _user(owner, lang), name, routes=routes))
        return opened[-1]

    try:
        yield make
    finally:
        for dashboard in opened:
            close_dashboard(dashboard)


def test_page_is_served_with_its_assets(controlbot: ControlbotProcess) -> None:
    assert controlbot.api_url is not None
    base = f"{controlbot.api_url}/app"
    assert httpx.get(base).headers["location"] == "/app/"
    page = httpx.get(f"{base}/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "app.js" in page.text
    for asset in ("app.js", "app.css", "i18n.js", "i18n.en.json", "i18n.ru.json", "logtail.js"):
        assert httpx.get(f"{base}/{asset}").status_code == 200
    assert httpx.get(f"{base}/__init__.py").status_code == 404


def test_lists_bots_tails_logs_and_stops_the_container(
    api_user: ApiUser,
    dashboard_for: Callable[..., Dashboard],
    docker_client: docker.DockerClient,
    unique_name: Callable[[str], str],
) -> None:
    name = unique_name("dash")
    resp = api_user.deploy(name, TALKER, env=["WHO=the-dashboard"])
    assert resp.status_code == 201, resp.text
    box = docker_client.containers.get(f"botrunner-{api_user.owner}-{name}")
    assert box.status == "running"

    dash = dashboard_for(api_user.owner)
    page = dash.page
    card = page.locator(f'article.bot[data-bot="{name}"]')
    # The first list may queue behind other sessions' commands on a shared, loaded machine.
    expect(card).to_have_attribute("data-state", "running", timeout=60_000)
    expect(card.locator(".state")).to_have_text("running")
    expect(card.locator(".facts")).to_contain_text("up ")
    expect(page.locator("#error")).to_be_hidden()
    dash.screenshot("list")

    # The live tail: the greeting, then lines that keep coming without a reload.
    card.locator('[data-action="logs"]').click()
    tail = page.locator("#log-tail")
    # The bot's env values are masked in every log view: WHO's value shows as its mask.
    expect(tail).to_contain_text("hello from the•••")
    assert "the-dashboard" not in tail.inner_text()
    expect(tail).to_contain_text("tick 2")
    first = tail.inner_text()
    expect(tail).not_to_have_text(first, timeout=10_000)
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1  # never reloaded
    dash.screenshot("logs")

    # Stop asks first; cancelling leaves the bot alone, confirming stops the real container.
    card.locator('[data-action="stop"]').click()
    modal = page.locator("#confirm")
    expect(modal).to_be_visible()
    expect(page.locator("#confirm-text")).to_contain_text(name)
    dash.screenshot("confirm-stop")
    page.locator("#confirm-cancel").click()
    expect(modal).to_be_hidden()
    box.reload()
    assert box.status == "running"

    card.locator('[data-action="stop"]').click()
    page.locator("#confirm-ok").click()
    expect(card).to_have_attribute("data-state", "stopped", timeout=30_000)
    expect(card.locator('[data-action="start"]')).to_be_visible()
    box.reload()
    assert box.status == "exited"
    dash.screenshot("stopped")


def test_forged_init_data_shows_an_error_not_data(
    api_user: ApiUser, dashboard_for: Callable[..., Dashboard], unique_name: Callable[[str], str]
) -> None:
    """Signed with another bot's token: 401, worded in the user's language, and no bot shown."""
    name = unique_name("forge")
    assert api_user.deploy(name).status_code == 201
    dash = dashboard_for(api_user.owner, lang="ru", token=FOREIGN_TOKEN)
    error = dash.page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_have_attribute("data-code", "UNAUTHORIZED")
    expect(error).to_contain_text("Telegram не подтвердил")
    assert dash.page.locator("article.bot").count() == 0
    assert name not in dash.page.content()
    dash.screenshot("forged")


def test_dashboard_button_and_menu_button_when_webapp_url_is_set(
    fake_telegram: FakeTelegram,
    controlbot_factory: Callable[..., ControlbotProcess],
    chat_user: Callable[..., Chat],
) -> None:
    url = "https://dash.example.test/app/"
    with _private_redis() as redis_url:
        proc = controlbot_factory(redis_url, WEBAPP_URL=url)
        deadline = time.monotonic() + 20
        while not fake_telegram.calls(proc.token, "setChatMenuButton"):
            assert time.monotonic() < deadline, "setChatMenuButton was never called"
            time.sleep(0.05)
        (call,) = fake_telegram.calls(proc.token, "setChatMenuButton")
        assert call["menu_button"] == {"type": "web_app", "text": "Dashboard", "web_app": {"url": url}}
        user = chat_user().user
        user.send(proc.token, "/start")
        answer = fake_telegram.wait_for_sync(proc.token, user.id, lambda m: m.from_bot, 20)
        buttons = [b for b in answer.buttons if "web_app" in b]
        assert buttons == [{"text": "🖥 Dashboard", "web_app": {"url": url}}]


def test_sparklines_and_rollback_from_stats_and_releases(
    api_user: ApiUser, dashboard_for: Callable[..., Dashboard], unique_name: Callable[[str], str]
) -> None:
    name = unique_name("spark")
    assert api_user.deploy(name).status_code == 201
    # A second release makes the first one "previous": the card offers Rollback.
    files = {"file": ("bot.py", TICKER_V2, "text/x-python")}
    assert api_user.http.put(f"/api/bots/{name}", files=files).status_code == 200
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the runner samples every 2 s here: wait for a few
        samples = api_user.http.get(f"/api/bots/{name}/stats", params={"range": "1h"}).json()["samples"]
        if len(samples) >= 3:
            break
        time.sleep(1)
    dash = dashboard_for(api_user.owner)
    card = dash.page.locator(f'article.bot[data-bot="{name}"]')
    expect(card).to_be_visible()
    for spark in ("mem", "cpu"):
        expect(
            card.locator(f'[data-spark="{spark}"] svg, [data-spark="{spark}"] .empty:not(:text("…"))')
        ).to_have_count(1)
    expect(card.locator('[data-spark="mem"] polyline')).to_have_count(1)
    rollback = card.locator('[data-action="rollback"]')
    expect(rollback).to_be_visible()
    dash.screenshot("sparklines")
    rollback.click()
    expect(dash.page.locator("#confirm-text")).to_contain_text(name)
    dash.page.locator("#confirm-cancel").click()
    expect(dash.page.locator("#confirm")).to_be_hidden()
