"""Metrics, charts and the audit trail against the real runner, control bot, Redis and Docker."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable

import httpx
import pytest
from PIL import Image

from tests.fixtures.api_users import TICKER, ApiUser, mint_token, wait_for_api
from tests.fixtures.controlbot import ADMIN_IDS, Chat, ControlbotProcess, deploy
from tests.fixtures.runner import RunnerProcess

pytestmark = pytest.mark.e2e

SAMPLE_RE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    resp = httpx.get(url, timeout=10)
    assert resp.status_code == 200, resp.text
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in resp.text.splitlines():
        m = SAMPLE_RE.match(line)
        if m is None or line.startswith("#"):
            continue
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m["labels"] or ""))
        out[(m["name"], labels)] = float(m["value"])
    return out


def value(metrics: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


def user_of(chat: Chat, controlbot: ControlbotProcess) -> ApiUser:
    assert controlbot.api_url is not None
    wait_for_api(controlbot.api_url)
    return ApiUser(chat.id, mint_token(controlbot.env["REDIS_URL"], chat.id), controlbot.api_url)


def wait_samples(user: ApiUser, name: str, n: int, timeout: float = 30.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        body = user.http.get(f"/api/bots/{name}/stats", params={"range": "1h"}).json()
        assert "samples" in body, body
        if len(body["samples"]) >= n:
            return dict(body)
        assert time.monotonic() < deadline, f"fewer than {n} samples of {name}: {body}"
        time.sleep(0.5)


def test_metrics_move_with_real_commands(
    controlbot: ControlbotProcess,
    runner: RunnerProcess,
    chat_user: Callable[..., Chat],
    unique_name: Callable[[str], str],
) -> None:
    chat = chat_user()
    user = user_of(chat, controlbot)
    name = unique_name("met")
    ours = f"{controlbot.api_url}/metrics"
    runners = f"http://127.0.0.1:{runner.env['RUNNER_METRICS_PORT']}/metrics"
    before, runner_before = scrape(ours), scrape(runners)
    try:
        assert user.deploy(name).status_code == 201
        assert user.http.post(f"/api/bots/{name}/restart").status_code == 200
        assert user.http.get(f"/api/bots/{name}/logs").status_code in (200, 404)
        chat.send("/help")
        chat.wait("Commands")
        wait_samples(user, name, 1)
        after, runner_after = scrape(ours), scrape(runners)
        for op in ("start", "restart"):
            assert value(after, "botrunner_commands_total", op=op, result="ok") >= (
                value(before, "botrunner_commands_total", op=op, result="ok") + 1
            ), op
        assert value(after, "botrunner_command_duration_seconds_count", op="start") > value(
            before, "botrunner_command_duration_seconds_count", op="start"
        )
        assert value(after, "botrunner_telegram_updates_total", type="message") > value(
            before, "botrunner_telegram_updates_total", type="message"
        )
        assert value(runner_after, "botrunner_builds_total", kind="file", result="ok") > value(
            runner_before, "botrunner_builds_total", kind="file", result="ok"
        )
        bot = {"owner": str(user.owner), "bot": name}
        assert value(runner_after, "botrunner_bot_memory_bytes", **bot) > 0
        assert ("botrunner_bot_cpu_ratio", frozenset(bot.items())) in runner_after
        assert value(runner_after, "botrunner_runner_up") == 1
        assert value(runner_after, "botrunner_bots", state="running") >= 1
        assert ("botrunner_queue_pending", frozenset()) in runner_after
        # No label carries env or user text: the bot's env value never shows.
        assert "hello" not in httpx.get(runners).text
    finally:
        user.delete_all()


def test_chart_button_sends_a_png_of_real_samples(
    controlbot: ControlbotProcess, chat_user: Callable[..., Chat], unique_name: Callable[[str], str]
) -> None:
    chat = chat_user()
    user = user_of(chat, controlbot)
    name = unique_name("chart")
    try:
        card = deploy(chat, name, TICKER)
        assert "🟢" in (card.text or "")
        body = wait_samples(user, name, 2)
        samples = body["samples"]
        assert isinstance(samples, list) and all(s["memory_bytes"] > 0 for s in samples)
        mark = chat.mark()
        chat.press(card, "Chart")
        photo = chat.wait(lambda m: m.photo is not None, after=mark, timeout=30)
        assert photo.photo is not None and name in (photo.caption or "")
        image = Image.open(io.BytesIO(photo.photo.data))
        assert image.format == "PNG" and image.size == (800, 450)
        # /chart with a range, and the API's PNG, draw the same way.
        mark = chat.mark()
        chat.send(f"/chart {name} 7d")
        assert chat.wait(lambda m: m.photo is not None, after=mark, timeout=30).photo is not None
        resp = user.http.get(f"/api/bots/{name}/chart", params={"range": "1h"})
        assert resp.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(resp.content)).size == (800, 450)
    finally:
        user.delete_all()


def test_audit_records_each_channel(
    controlbot: ControlbotProcess, chat_user: Callable[..., Chat], unique_name: Callable[[str], str]
) -> None:
    chat = chat_user()
    user = user_of(chat, controlbot)
    admin = ApiUser(ADMIN_IDS[-1], mint_token(controlbot.env["REDIS_URL"], ADMIN_IDS[-1]), user.url)
    name = unique_name("aud")
    try:
        assert user.deploy(name, env=["SECRET=hunter22"]).status_code == 201  # through the API
        mark = chat.mark()
        chat.send(f"/stop {name}")  # through the chat
        chat.wait("stopped", after=mark, timeout=60)
        cli = user.cli("restart", name)  # through the CLI
        assert cli.returncode == 0, cli.stderr
        entries = admin.http.get("/api/audit", params={"owner": user.owner, "bot": name}).json()["entries"]
        seen = {(e["action"], e["channel"], e["result"]) for e in entries}
        assert {("start", "api", "ok"), ("stop", "chat", "ok"), ("restart", "cli", "ok")} <= seen, seen
        assert all(e["actor"] == user.owner and e["owner"] == user.owner for e in entries)
        start = next(e for e in entries if e["action"] == "start")
        assert "SECRET" in start["detail"] and "hunter22" not in str(entries)
        # Users read their own bot's history in all three front ends.
        history = user.http.get(f"/api/bots/{name}/history").json()["entries"]
        assert [e["action"] for e in history][:3] == ["restart", "stop", "start"]
        assert "restart" in user.cli("history", name).stdout
        mark = chat.mark()
        chat.send(f"/history {name}")
        text = chat.wait("History of", after=mark).text or ""
        assert "restart" in text and "stop" in text and "cli" in text
        # The audit trail itself is for admins.
        assert user.http.get("/api/audit").status_code == 403
    finally:
        user.delete_all()
