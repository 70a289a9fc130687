"""The chat, once, on the swarm backend: deploy, logs, update, a crash alert, stop, delete.

A runner with RUNNER_BACKEND=swarm (its own Redis and RUNNER_INSTANCE) and a control bot on that
runner's Redis; what the user sees is what the docker backend gives.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from tests.fakes.telegram import FakeTelegram
from tests.fixtures.controlbot import ALLOWED_USER_IDS, Chat, ControlbotProcess, delete_bots_of, deploy
from tests.fixtures.runner import RunnerProcess, runner_env
from tests.fixtures.services import start_redis_server

pytestmark = pytest.mark.e2e

V1 = b"import time\nprint('swarm v1 up', flush=True)\nwhile True:\n    time.sleep(1)\n"
V2 = b"""\
import time
print('swarm v2 up', flush=True)
time.sleep(2)
raise RuntimeError('SWARM CRASH')
"""


@pytest.fixture
def swarm_runner(
    swarm_manager: str, base_image: str, swarm_instance: str, tmp_path: Path
) -> Iterator[RunnerProcess]:
    with tempfile.TemporaryDirectory(prefix="botrunner-redis-") as tmp:
        redis_proc, url = start_redis_server(Path(tmp))
        # No health gate: V2's crash, 2 s after it starts, must be a crash alert, not a rollback.
        env = runner_env(
            url, base_image, f"{swarm_instance}-chat", RUNNER_BACKEND="swarm", RUNNER_HEALTH_GRACE="0"
        )
        proc = RunnerProcess(env, tmp_path / "runner.log", tmp_path)
        try:
            yield proc.start()
        finally:
            proc.stop()
            redis_proc.terminate()
            try:
                redis_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                redis_proc.kill()


def test_a_bot_on_swarm_through_the_chat(
    swarm_runner: RunnerProcess,
    controlbot_factory: Callable[..., ControlbotProcess],
    fake_telegram: FakeTelegram,
    docker_client: docker.DockerClient,
    unique_name: Callable[[str], str],
) -> None:
    bot = controlbot_factory(swarm_runner.redis_url, start=False).start(fake_telegram, wait_ready=False)
    bot.wait_ready(fake_telegram, timeout=120)  # its imports alone take ~30 s on a loaded machine
    chat = Chat(fake_telegram, bot.token, fake_telegram.user(ALLOWED_USER_IDS[-1], "Sam", language_code="en"))
    name = unique_name("swarm")
    service = f"botrunner-{chat.id}-{name}"
    try:
        card = deploy(chat, name, V1)
        assert "🟢" in (card.text or ""), card.text
        assert docker_client.api.inspect_service(service)["Spec"]["Mode"]["Replicated"]["Replicas"] == 1
        chat.logs_until(name, "swarm v1 up")

        v2 = chat.send_file("bot.py", V2)
        fake_telegram.wait_for_sync(chat.token, chat.id, "What should the bot be called")
        mark = chat.mark()
        chat.send(f"/update {name}", reply_to=v2)
        progress = chat.wait("downloading", after=mark)
        chat.wait_edit(progress, "✅ updated", timeout=120)
        chat.logs_until(name, "swarm v2 up")
        alert = chat.wait("crashed: exit code 1", timeout=60)
        assert "RuntimeError: SWARM CRASH" in (alert.text or "")

        mark = chat.mark()
        chat.send(f"/stop {name}")
        chat.wait(f"{name} stopped", after=mark)
        assert docker_client.api.inspect_service(service)["Spec"]["Mode"]["Replicated"]["Replicas"] == 0

        mark = chat.mark()
        chat.send(f"/delete {name}")
        confirm = chat.wait("Delete", after=mark)
        chat.press(confirm, "Yes, delete")
        chat.wait_edit(confirm, "deleted")
        with pytest.raises(docker.errors.NotFound):
            docker_client.api.inspect_service(service)
        flt = {"label": [f"botrunner.owner={chat.id}", f"botrunner.bot={name}"]}
        assert docker_client.api.configs(filters=flt) == []
        assert docker_client.volumes.list(filters=flt) == []
    finally:
        delete_bots_of(swarm_runner.redis_url, chat.id)
