"""A burst does not break the control bot: 100 deploys from 50 users at one instant all run.

Before one listener served every reply, each waiting request held a Redis connection in a BLPOP;
redis-py's pool (100 connections) then failed at once and users were told the runner was down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.fakes.telegram import FakeTelegram
from tests.fixtures.burst import run_burst
from tests.fixtures.controlbot import ControlbotProcess, delete_bots_of
from tests.fixtures.runner import RunnerProcess

pytestmark = pytest.mark.e2e

USERS = list(range(850_001, 850_051))  # allowed only on this test's control bot
PER_USER = 2  # within the test runner's MAX_BOTS_PER_USER=3


@pytest.fixture
def burst_users(runner: RunnerProcess) -> Iterator[list[int]]:
    yield USERS
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda uid: delete_bots_of(runner.redis_url, uid), USERS))


def test_hundred_deploys_from_fifty_users_at_once_all_run(
    fake_telegram: FakeTelegram,
    runner: RunnerProcess,
    controlbot_factory: Callable[..., ControlbotProcess],
    burst_users: list[int],
) -> None:
    bot = controlbot_factory(runner.redis_url, ALLOWED_USER_IDS=",".join(map(str, burst_users)))
    figures = run_burst(fake_telegram, bot.token, burst_users, PER_USER, timeout=100)
    print(figures.summary())
    assert not figures.failures, figures.failures[:5]
    assert len(figures.to_card_s) == len(burst_users) * PER_USER
    assert "unavailable" not in bot.log_text()
