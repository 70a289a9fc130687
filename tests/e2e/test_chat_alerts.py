"""Crash alerts pushed to the owner unasked: the traceback, buttons, a loop reported once, and OOM."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.fakes.telegram import FakeTelegram, Message
from tests.fixtures.controlbot import Chat, deploy, example

pytestmark = pytest.mark.e2e

OOM_BOT = b"""\
import time
time.sleep(3)  # past the health gate (2 s in tests): a crash inside it is the gate's to report
print("Starting Hungry Bot", flush=True)
hoard = []
while True:
    hoard.append(bytearray(16 * 1024 * 1024))
"""

CRASH_LATER = b"""\
import time
print("Starting Flaky Bot", flush=True)
time.sleep(4)  # past the health gate
raise RuntimeError("FLAKY CRASH")
"""


def alerts(chat: Chat) -> list[Message]:
    return [m for m in chat.sent() if "crashed:" in (m.text or "") or "упал:" in (m.text or "")]


def test_error_bot_alert_carries_the_traceback_and_buttons(
    chat_user: Callable[..., Chat], unique_name: Callable[[str], str]
) -> None:
    chat = chat_user()
    name = unique_name("err")
    # It crashes after the health gate's window, so the crash alerts (not the gate's verdict).
    late = b"import time\ntime.sleep(3)\n" + example("error_bot.py")
    card = deploy(chat, name, late, filename="error_bot.py")
    assert "❌" not in (card.text or "")  # a bot that crashes still deploys
    alert = chat.wait("crashed: exit code 1", timeout=60)
    text = alert.text or ""
    assert f"💥 {name} crashed" in text
    assert "ValueError: TEST ERROR" in text and 'error_bot.py", line' in text
    assert any(e["type"] == "pre" for e in alert.entities)
    assert {b["text"] for b in alert.buttons} == {"📜 Logs", "🔄 Restart", "⏹ Stop"}
    # The loop ends once the runner gives up: one more message says so, and nothing after it.
    chat.wait("keeps crashing", timeout=90)
    time.sleep(3)
    assert len(alerts(chat)) == 2, "\n---\n".join(m.text or "" for m in alerts(chat))
    # The alert's Logs button shows the same traceback.
    mark = chat.mark()
    chat.press(alert, "Logs")
    logs = chat.wait("last 30 lines", after=mark)
    assert "ValueError: TEST ERROR" in (logs.text or "")
    # Stop from the alert: the bot is stopped and the alert keeps its traceback.
    query = chat.press(alert, "Stop")
    assert "stopped" in chat.answer_to(query).get("text", "")
    assert "TEST ERROR" in (chat.current(alert).text or "")


def test_a_first_deploy_crashing_at_once_is_reported_on_its_message_and_left_stopped(
    chat_user: Callable[..., Chat], unique_name: Callable[[str], str]
) -> None:
    chat = chat_user()
    name = unique_name("gate")
    card = deploy(chat, name, example("error_bot.py"), filename="error_bot.py")
    verdict = chat.wait_edit(card, "left stopped", timeout=30)
    text = verdict.text or ""
    assert f"💥 {name} (release 1) crashed right after starting (exit code 1)" in text, text
    assert "ValueError: TEST ERROR" in text
    assert {b["text"] for b in verdict.buttons} == {"📜 Logs", "🔄 Restart", "⏹ Stop"}
    time.sleep(4)
    assert alerts(chat) == []  # the verdict is the one message: no crash alert, no restart loop
    mark = chat.mark()
    chat.send(f"/status {name}")
    assert "stopped" in (chat.wait(name, after=mark).text or "")


def test_a_crash_after_running_alerts_and_restart_works(
    chat_user: Callable[..., Chat], unique_name: Callable[[str], str]
) -> None:
    chat = chat_user(language_code="ru")
    name = unique_name("flaky")
    deploy(chat, name, CRASH_LATER, filename="flaky.py")
    alert = chat.wait("упал: код выхода 1", timeout=60)
    assert "RuntimeError: FLAKY CRASH" in (alert.text or "")
    assert {b["text"] for b in alert.buttons} == {"📜 Логи", "🔄 Перезапуск", "⏹ Стоп"}
    query = chat.press(alert, "Перезапуск")
    assert "перезапущен" in chat.answer_to(query, timeout=30).get("text", "")


def test_stopped_by_user_raises_no_alert(
    chat_user: Callable[..., Chat], fake_telegram: FakeTelegram, unique_name: Callable[[str], str]
) -> None:
    chat = chat_user()
    name = unique_name("calm")
    token = fake_telegram.new_token("calm")
    deploy(chat, name, example("echo_bot.py"), f"BOT_TOKEN={token} TELEGRAM_API_URL={fake_telegram.url}")
    mark = chat.mark()
    chat.send(f"/stop {name}")
    chat.wait("stopped", after=mark)
    time.sleep(3)
    assert alerts(chat) == []


def test_oom_is_reported_as_out_of_memory(
    chat_user: Callable[..., Chat], unique_name: Callable[[str], str]
) -> None:
    chat = chat_user()
    name = unique_name("oom")
    deploy(chat, name, OOM_BOT, filename="hungry.py")
    alert = chat.wait("crashed: killed: out of memory (limit 256 MB)", timeout=90)
    assert f"💥 {name}" in (alert.text or "")
    mark = chat.mark()
    chat.send(f"/stop {name}")
    chat.wait("stopped", after=mark, timeout=30)
