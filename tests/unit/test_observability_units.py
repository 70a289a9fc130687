"""Charts, button payloads, audit entries and Bot API error codes: the pure parts of issue 13."""

from __future__ import annotations

import io
import time
from typing import cast

import httpx
import pytest
from aiogram.exceptions import TelegramForbiddenError, TelegramRetryAfter
from aiogram.methods import SendMessage
from PIL import Image
from redis.asyncio import Redis

from controlbot import charts
from controlbot.api import create_app
from controlbot.callbacks import AuditCb, BotAction, BotCb
from controlbot.gateway import Caller, Channel
from controlbot.gateway.base import _entry
from controlbot.metrics import error_code
from protocol.models import BotStats, Command, Limits, Op, Sample, SourceKind, SourceSpec
from tests.fakes.runner import FakeRunner
from tests.fixtures.api_app import FakeRedis, make_gateway, make_settings

pytestmark = pytest.mark.unit

LIMITS = Limits(memory_bytes=256 * 2**20, cpu=0.5, pids=128)


def week_of_samples(now: float) -> BotStats:
    coarse = [
        Sample(ts=now - 7 * 86400 + i * 300, memory_bytes=40_000_000 + i, cpu_percent=i % 7)
        for i in range(2004)
    ]
    raw = [Sample(ts=now - 3600 + i * 10, memory_bytes=50_000_000, cpu_percent=3.0) for i in range(360)]
    return BotStats(owner=1, name="echo", limits=LIMITS, samples=coarse + raw, restarts=[now - 5000])


@pytest.mark.parametrize("span", ["1h", "7d"])
def test_chart_is_a_png_of_fixed_size(span: str) -> None:
    seconds = charts.RANGES[span]
    png = charts.render(week_of_samples(time.time()), f"echo · {span}", seconds)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (800, 450)


def test_chart_without_samples_still_draws() -> None:
    png = charts.render(BotStats(owner=1, name="x", limits=LIMITS), "x · 1h", 3600)
    assert Image.open(io.BytesIO(png)).size == (800, 450)


def test_ranges() -> None:
    assert charts.range_seconds(None) == 86400
    assert charts.range_seconds("7D") == 7 * 86400
    assert charts.range_seconds("2h") is None


def test_button_payloads_fit_64_bytes() -> None:
    longest = "a" + "-" * 30
    assert len(BotCb(action=BotAction.CHART, owner=10**15, name=longest).pack().encode()) <= 64
    assert len(AuditCb(page=999, actor=0, owner=10**15, bot=longest).pack().encode()) <= 64


def test_audit_entry_keeps_env_keys_never_values() -> None:
    caller = Caller(id=5, admin=False, channel=Channel.CLI)
    cmd = Command(op=Op.SET_ENV, owner=5, name="echo", env={"TOKEN": "123456:TESTsecret"}, unset=["OLD"])
    entry = _entry(caller, cmd, "ok")
    assert (entry.action, entry.channel, entry.bot, entry.owner) == ("set_env", "cli", "echo", 5)
    assert entry.detail == "set TOKEN; unset OLD" and "TESTsecret" not in str(entry.fields())
    start = Command(op=Op.START, owner=5, name="echo", source=SourceSpec(kind=SourceKind.GIT), env={"A": "b"})
    assert _entry(caller, start, "BUILD_FAILED").detail == "git; set A"
    quota = _entry(Caller(id=9, admin=True), Command(op=Op.SET_QUOTA, owner=9, target_owner=5, quota=4), "ok")
    assert (quota.owner, quota.detail, quota.channel) == (5, "limit=4", "chat")


def test_bot_api_errors_are_counted_by_status() -> None:
    method = SendMessage(chat_id=1, text="x")
    assert error_code(TelegramRetryAfter(method=method, message="flood", retry_after=3)) == "429"
    assert error_code(TelegramForbiddenError(method=method, message="blocked")) == "403"


async def test_api_metrics_unauthenticated_and_switchable() -> None:
    runner, redis = FakeRunner(quota=3), FakeRedis()
    for enabled, status in ((True, 200), (False, 404)):
        settings = make_settings().model_copy(update={"api_metrics": enabled})
        app = create_app(settings, make_gateway(settings, runner), cast(Redis, redis))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            resp = await client.get("/metrics")  # no token
        assert resp.status_code == status
        if enabled:
            assert "botrunner_commands_total" in resp.text
