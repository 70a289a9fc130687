"""serve(): the API inside the control bot's loop, leaving signals to aiogram and ending on cancel."""

from __future__ import annotations

import asyncio
import signal
import socket
from typing import cast

import httpx
import pytest
from redis.asyncio import Redis

from controlbot.api import serve
from controlbot.api.server import bind
from tests.fakes.runner import FakeRunner
from tests.fixtures.api_app import FakeRedis, make_gateway, make_settings
from tests.fixtures.services import free_port

pytestmark = pytest.mark.unit


async def _wait_up(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                return await client.get(f"{url}/healthz")
            except httpx.TransportError:
                await asyncio.sleep(0.02)
    raise AssertionError("the API never answered")


async def test_serve_answers_and_stops_cleanly_when_cancelled() -> None:
    port = free_port()
    settings = make_settings().model_copy(update={"api_port": port})
    before = signal.getsignal(signal.SIGTERM)
    task = asyncio.create_task(
        serve(settings, make_gateway(settings, FakeRunner()), cast(Redis, FakeRedis()))
    )
    resp = await _wait_up(f"http://127.0.0.1:{port}")
    assert resp.status_code == 200
    assert signal.getsignal(signal.SIGTERM) is before  # aiogram keeps SIGTERM
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    # The port is free again.
    with socket.create_server(("127.0.0.1", port)):
        pass


async def test_a_taken_port_is_an_oserror_naming_the_setting() -> None:
    with bind("127.0.0.1", 0) as taken:
        port = taken.getsockname()[1]
        settings = make_settings().model_copy(update={"api_port": port})
        with pytest.raises(OSError, match="API_HOST/API_PORT"):
            await serve(settings, make_gateway(settings, FakeRunner()), cast(Redis, FakeRedis()))
