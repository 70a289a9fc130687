"""The control bot meets people: greeting, help, the command menu, strangers, unknown input."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from tests.fakes.telegram import FakeTelegram, FakeUser
from tests.fixtures.controlbot import Chat, ControlbotProcess

pytestmark = pytest.mark.e2e

COMMANDS = {
    "start",
    "help",
    "start_bot",
    "update",
    "list",
    "status",
    "logs",
    "stop",
    "restart",
    "delete",
    "env",
    "quota",
    "backup",
    "restore",
    "chart",
    "history",
    "releases",
    "rollback",
    "cancel",
}


def test_start_greets_with_a_menu(chat_user: Callable[..., Chat]) -> None:
    chat = chat_user("Alice")
    chat.send("/start")
    reply = chat.wait("Hi, Alice")
    assert {b["text"] for b in reply.buttons} >= {"📋 My bots", "🚀 Deploy a bot", "❓ Help"}


def test_start_in_russian(chat_user: Callable[..., Chat]) -> None:
    chat = chat_user("Борис", language_code="ru")
    chat.send("/start")
    reply = chat.wait("Привет, Борис")
    assert "📋 Мои боты" in [b["text"] for b in reply.buttons]


def test_help_lists_every_command(chat_user: Callable[..., Chat], chat_admin: Callable[..., Chat]) -> None:
    chat = chat_user()
    chat.send("/help")
    text = chat.wait("Commands").text or ""
    for command in COMMANDS:
        assert f"/{command} " in text, command
    assert "/system" not in text
    admin = chat_admin()
    admin.send("/help")
    text = admin.wait("Commands").text or ""
    assert "/quota" in text and "/system" in text and "/list all" in text and "owner_id/name" in text


def test_menu_buttons(chat_user: Callable[..., Chat]) -> None:
    chat = chat_user()
    chat.send("/start")
    menu = chat.wait("Hi")
    mark = chat.mark()
    chat.press(menu, "Help")
    chat.wait("Commands", after=mark)
    mark = chat.mark()
    chat.press(menu, "My bots")
    chat.wait("No bots yet", after=mark)


def test_commands_are_registered_in_english_and_russian(
    fake_telegram: FakeTelegram, controlbot: ControlbotProcess
) -> None:
    calls = fake_telegram.calls(controlbot.token, "setMyCommands")
    by_language: dict[str, set[str]] = {}
    for call in calls:
        scope = call.get("scope")
        scope = json.loads(scope) if isinstance(scope, str) else scope
        if scope and scope.get("type") != "default":
            continue
        commands = call["commands"]
        commands = json.loads(commands) if isinstance(commands, str) else commands
        by_language[call.get("language_code") or ""] = {c["command"] for c in commands}
    assert by_language[""] == COMMANDS
    assert by_language["ru"] == COMMANDS
    admin_calls = [c for c in calls if "chat" in json.dumps(c.get("scope") or "")]
    assert any(
        all(cmd in json.dumps(c["commands"]) for cmd in ("quota", "system", "top", "audit"))
        for c in admin_calls
    )


def test_stranger_is_refused_once_with_their_id(
    fake_telegram: FakeTelegram, controlbot: ControlbotProcess, stranger_id: int
) -> None:
    stranger = fake_telegram.user(stranger_id, "Eve")
    stranger.send(controlbot.token, "/start")
    refusal = fake_telegram.wait_for_sync(controlbot.token, stranger_id, "private")
    assert str(stranger_id) in (refusal.text or "")
    stranger.send(controlbot.token, "/list")
    stranger.send(controlbot.token, "/start_bot evil")
    stranger.send_document(controlbot.token, "evil.py", b"print(1)\n", "/start_bot evil")
    # Let the control bot read them all, then check that it said nothing more.
    fake_telegram.wait_until_sync(lambda: fake_telegram.pending_updates(controlbot.token) == 0, 10)
    _settle(fake_telegram, controlbot, stranger_id)
    assert len(fake_telegram.sent(controlbot.token, stranger_id)) == 1


def _settle(fake: FakeTelegram, controlbot: ControlbotProcess, chat_id: int) -> None:
    """Give the handlers of updates already read time to answer: silence can only be awaited."""
    time.sleep(1.5)


def test_stranger_pressing_a_button_is_refused(
    fake_telegram: FakeTelegram,
    controlbot: ControlbotProcess,
    chat_user: Callable[..., Chat],
    stranger_id: int,
) -> None:
    # A stranger can only press buttons on messages sent to them; forge one the way a client could.
    chat = chat_user()
    chat.send("/start")
    menu = chat.wait("Hi")
    stranger: FakeUser = fake_telegram.user(stranger_id, "Mallory")
    stranger.send(controlbot.token, "hello")
    fake_telegram.wait_for_sync(controlbot.token, stranger_id, str(stranger_id))
    assert menu.buttons  # the stranger never sees a menu of their own
    assert len(fake_telegram.sent(controlbot.token, stranger_id)) == 1


def test_unknown_command_and_text(chat_user: Callable[..., Chat]) -> None:
    chat = chat_user()
    chat.send("/frobnicate now")
    chat.wait("Unknown command")
    mark = chat.mark()
    chat.send("hello there")
    chat.wait("did not understand", after=mark)


def test_russian_unknown_command(chat_user: Callable[..., Chat]) -> None:
    chat = chat_user(language_code="ru")
    chat.send("/frobnicate")
    chat.wait("Неизвестная команда")


def test_cancel_without_flow(chat_user: Callable[..., Chat]) -> None:
    chat = chat_user()
    chat.send("/cancel")
    chat.wait("Nothing to cancel")


def test_quota_reads_your_own_and_admins_read_anyones(
    chat_user: Callable[..., Chat], chat_admin: Callable[..., Chat]
) -> None:
    user, admin = chat_user(), chat_admin()
    user.send("/quota")
    user.wait("Your bots: 0 of 3.")
    mark = user.mark()
    user.send(f"/quota {admin.id}")  # another user's quota is an admin's business
    assert "FORBIDDEN" in (user.wait(after=mark).text or "")
    admin.send(f"/quota {user.id} 5")
    admin.wait(f"Quota of user {user.id}: 0/5 bots.")
    admin.send(f"/quota {user.id}")
    admin.wait(f"Quota of user {user.id}: 0/5 bots.", after=admin.mark() - 1)
