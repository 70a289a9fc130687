"""Releases from chat: the health gate's verdict edits the deploy message, /releases, /rollback,
the card's Rollback button, and the kept logs of a replaced release."""

from __future__ import annotations

import time
from collections.abc import Callable

import docker
import pytest

from tests.fixtures.controlbot import Chat, deploy

pytestmark = pytest.mark.e2e


def version(n: int) -> bytes:
    return f"import time\nprint('version {n} up', flush=True)\nwhile True:\n    time.sleep(1)\n".encode()


CRASHER = b"print('v2 starting', flush=True)\nraise RuntimeError('BROKEN AT IMPORT')\n"


def running(docker_client: docker.DockerClient, owner: int, name: str) -> list[object]:
    flt = {"label": [f"botrunner.owner={owner}", f"botrunner.bot={name}"], "status": "running"}
    return list(docker_client.containers.list(filters=flt))


def update(chat: Chat, name: str, source: bytes) -> object:
    mark = chat.mark()
    chat.send_file("bot.py", source, f"/update {name}")
    progress = chat.wait("⏳", after=mark)
    return chat.fake.wait_until_sync(
        lambda: (m := chat.current(progress)) and ("🟢" in (m.text or "") or "❌" in (m.text or "")) and m,
        120,
        f"update of {name} to reply",
    )


def test_a_crashing_update_rolls_itself_back_and_the_owner_is_told_once(
    chat_user: Callable[..., Chat], docker_client: docker.DockerClient, unique_name: Callable[[str], str]
) -> None:
    chat = chat_user()
    name = unique_name("gate")
    first = deploy(chat, name, version(1))
    assert "checking it stays up" in (first.text or "")
    chat.wait_edit(first, "it stays up ✅", timeout=30)  # the same message, edited to the verdict
    chat.logs_until(name, "version 1 up")

    t0 = time.monotonic()
    replied = update(chat, name, CRASHER)
    assert "checking it stays up" in (replied.text or ""), replied.text  # the reply came at running
    mark = chat.mark()
    verdict = chat.wait_edit(replied, "runs again", timeout=20)  # type: ignore[arg-type]
    text = verdict.text or ""
    assert f"Release 2 of {name} crashed" in text and "release 1 runs again" in text, text
    assert "RuntimeError: BROKEN AT IMPORT" in text
    assert time.monotonic() - t0 < 15 + 5  # about 15 s on a loaded machine

    # The old code runs again, in exactly one container.
    def one_v1() -> bool:
        return len(running(docker_client, chat.id, name)) == 1

    chat.fake.wait_until_sync(one_v1, 20, "one running container")
    chat.logs_until(name, "version 1 up")
    # One message, no crash alert beside it.
    time.sleep(2)
    alerts = [m for m in chat.sent() if m.message_id > mark and "crashed:" in (m.text or "")]
    assert not alerts, [m.text for m in alerts]

    # /releases shows the failed release, and which one is current.
    mark = chat.mark()
    chat.send(f"/releases {name}")
    listed = chat.wait("Releases of", after=mark).text or ""
    lines = listed.splitlines()
    assert lines[1].startswith("#2") and "💥 failed" in lines[1], listed
    assert lines[2].startswith("#1") and "✅ current" in lines[2], listed


def test_rollback_by_command_and_button_and_previous_release_logs(
    chat_user: Callable[..., Chat], unique_name: Callable[[str], str]
) -> None:
    chat = chat_user()
    name = unique_name("rb")
    deploy(chat, name, version(1))
    chat.logs_until(name, "version 1 up")
    card = update(chat, name, version(2))
    chat.wait_edit(card, "it stays up ✅", timeout=30)  # type: ignore[arg-type]
    chat.logs_until(name, "version 2 up")

    # /logs offers the previous release's kept output.
    logs = chat.logs_until(name, "version 2 up")
    mark = chat.mark()
    chat.press(logs, "Previous release")
    kept = chat.wait("release 1, its last lines", after=mark)
    assert "version 1 up" in (kept.text or "") and "version 2" not in (kept.text or "")

    # The card's Rollback button runs release 1 again, as release 3.
    current = chat.current(card)  # type: ignore[arg-type]
    assert any(b["text"] == "⏪ Rollback" for b in current.buttons)
    mark = chat.mark()
    chat.press(current, "Rollback")
    answer = chat.wait("runs again", after=mark, timeout=60)
    assert "release 1 runs again, as release 3" in (answer.text or "")
    chat.logs_until(name, "version 1 up")

    # /rollback name N; then with nothing left before it, INVALID_STATE worded for chat.
    mark = chat.mark()
    chat.send(f"/rollback {name} 2")
    assert "release 2 runs again, as release 4" in (
        chat.wait("runs again", after=mark, timeout=60).text or ""
    )
    mark = chat.mark()
    chat.send(f"/rollback {name} 4")
    refused = chat.wait(after=mark).text or ""
    assert "current state" in refused and "is the current one" in refused, refused
