"""Who may see and touch which bot: owners, other users, forged buttons, strangers, and admins."""

from __future__ import annotations

import time
from collections.abc import Callable

import docker
import pytest

from controlbot.callbacks import BotAction, BotCb, LogsAction, LogsCb
from tests.fakes.telegram import FakeTelegram
from tests.fixtures.controlbot import Chat, ControlbotProcess, deploy, example, forge_press

pytestmark = pytest.mark.e2e


def echo(chat: Chat, fake: FakeTelegram, name: str) -> None:
    token = fake.new_token("echo")
    card = deploy(chat, name, example("echo_bot.py"), f"BOT_TOKEN={token} TELEGRAM_API_URL={fake.url}")
    assert "🟢" in (card.text or ""), card.text


def test_a_user_cannot_see_or_stop_another_users_bot(
    chat_user: Callable[..., Chat],
    fake_telegram: FakeTelegram,
    controlbot: ControlbotProcess,
    docker_client: docker.DockerClient,
    unique_name: Callable[[str], str],
) -> None:
    alice, bob = chat_user("Alice"), chat_user("Bob")
    name = unique_name("mine")
    echo(alice, fake_telegram, name)
    # By name, Bob's namespace has no such bot.
    for command in (
        f"/status {name}",
        f"/stop {name}",
        f"/logs {name}",
        f"/delete {name}",
        f"/env {name} -X",
    ):
        mark = bob.mark()
        bob.send(command)
        bob.wait(f"No bot named {name}", after=mark)
    # By owner/name, he is not an admin: not found, not "forbidden" (he learns nothing).
    for command in (f"/stop {alice.id}/{name}", f"/logs {alice.id}/{name}", f"/restart {alice.id}/{name}"):
        mark = bob.mark()
        bob.send(command)
        bob.wait("No bot named", after=mark)
    mark = bob.mark()
    bob.send("/list")
    assert name not in (bob.wait("No bots yet", after=mark).text or "")
    mark = bob.mark()
    bob.send("/list all")
    bob.wait("Only admins", after=mark)
    # Forged buttons naming Alice's bot, pressed by Bob: "not found", and nothing happens.
    bob.send("/start")
    menu = bob.wait("Hi")
    for data in (
        BotCb(action=BotAction.STOP, owner=alice.id, name=name).pack(),
        BotCb(action=BotAction.DELETE_CONFIRM, owner=alice.id, name=name).pack(),
        BotCb(action=BotAction.CARD, owner=alice.id, name=name).pack(),
        LogsCb(action=LogsAction.FULL, owner=alice.id, name=name, lines=30).pack(),
    ):
        query = forge_press(fake_telegram, controlbot.token, bob.user, data, menu)
        answer = bob.answer_to(query)
        assert "No bot named" in answer.get("text", "") and answer.get("show_alert"), answer
    time.sleep(1)
    assert docker_client.containers.get(f"botrunner-{alice.id}-{name}").status == "running"
    assert not any(m.document for m in bob.sent())
    # Alice still has it, untouched.
    mark = alice.mark()
    alice.send(f"/status {name}")
    alice.wait(f"{name} — running", after=mark)


def test_stranger_pressing_a_forged_button_is_refused_once(
    fake_telegram: FakeTelegram,
    controlbot: ControlbotProcess,
    chat_user: Callable[..., Chat],
    stranger_id: int,
) -> None:
    owner = chat_user()
    stranger = fake_telegram.user(stranger_id, "Mallory")
    data = BotCb(action=BotAction.STOP, owner=owner.id, name="whatever").pack()
    first = forge_press(fake_telegram, controlbot.token, stranger, data)
    fake_telegram.wait_for_sync(controlbot.token, stranger_id, str(stranger_id))
    assert fake_telegram.callback_answer(controlbot.token, first) is not None
    second = forge_press(fake_telegram, controlbot.token, stranger, data)
    fake_telegram.wait_until_sync(lambda: fake_telegram.callback_answer(controlbot.token, second), 10)
    assert not (fake_telegram.callback_answer(controlbot.token, second) or {}).get("text")
    time.sleep(1)
    assert len(fake_telegram.sent(controlbot.token, stranger_id)) == 1


def test_admin_sees_and_acts_on_every_bot(
    chat_user: Callable[..., Chat],
    chat_admin: Callable[..., Chat],
    fake_telegram: FakeTelegram,
    docker_client: docker.DockerClient,
    unique_name: Callable[[str], str],
) -> None:
    alice, admin = chat_user("Alice"), chat_admin()
    name = unique_name("watched")
    echo(alice, fake_telegram, name)
    ref = f"{alice.id}/{name}"
    mark = admin.mark()
    admin.send("/list all")
    listing = admin.wait("All bots", after=mark)
    assert f"🟢 {ref} — running" in (listing.text or "")
    mark = admin.mark()
    admin.press(listing, ref)
    card = admin.wait(f"{ref} — running", after=mark)
    mark = admin.mark()
    admin.send(f"/logs {ref}")
    admin.wait(f"{ref} — last 30 lines", after=mark)
    # Buttons on the admin's card act on Alice's bot.
    admin.press(card, "Stop")
    admin.wait_edit(card, f"{ref} — stopped")
    assert docker_client.containers.get(f"botrunner-{alice.id}-{name}").status == "exited"
    mark = admin.mark()
    admin.send(f"/restart {ref}")
    admin.wait(f"{ref} restarted", after=mark)
    assert docker_client.containers.get(f"botrunner-{alice.id}-{name}").status == "running"


def test_quota_and_its_override(
    chat_user: Callable[..., Chat],
    chat_admin: Callable[..., Chat],
    docker_client: docker.DockerClient,
    unique_name: Callable[[str], str],
) -> None:
    chat, admin = chat_user(), chat_admin()
    quiet = b"import time\nprint('Starting Quiet Bot', flush=True)\nwhile True:\n    time.sleep(60)\n"
    names = [unique_name("q") for _ in range(4)]
    for name in names[:3]:
        assert "🟢" in (deploy(chat, name, quiet).text or "")
    refused = deploy(chat, names[3], quiet)
    assert "Quota reached: at most 3 bots per user" in (refused.text or ""), refused.text
    assert "QUOTA_EXCEEDED" in (refused.text or "")
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(f"botrunner-{chat.id}-{names[3]}")
    # A stopped bot still counts.
    mark = chat.mark()
    chat.send(f"/stop {names[0]}")
    chat.wait("stopped", after=mark)
    assert "Quota reached" in (deploy(chat, names[3], quiet).text or "")
    # Only admins set quotas; an admin lifts this user's to 4.
    mark = chat.mark()
    chat.send(f"/quota {chat.id} 10")
    chat.wait("Only admins", after=mark)
    mark = admin.mark()
    admin.send(f"/quota {chat.id} 4")
    admin.wait(f"Quota of user {chat.id}: 3/4 bots", after=mark)
    assert "🟢" in (deploy(chat, names[3], quiet).text or "")
    mark = chat.mark()
    chat.send("/list")
    assert "(4/4)" in (chat.wait("Your bots", after=mark).text or "")
    mark = admin.mark()
    admin.send(f"/quota {chat.id} default")
    admin.wait(f"Quota of user {chat.id}: 4/3 bots", after=mark)
    mark = admin.mark()
    admin.send("/quota nobody 3")
    admin.wait("Usage: /quota", after=mark)


def test_system_for_admins_only(chat_user: Callable[..., Chat], chat_admin: Callable[..., Chat]) -> None:
    admin = chat_admin()
    admin.send("/system")
    text = admin.wait("Runner").text or ""
    assert "heartbeat" in text and "Docker" in text and "Bots running:" in text and " of " in text
    # Every live runner, with its heartbeat, backend and node count (one host under docker).
    assert "egress: " in text and "Runners (" in text and "docker, one host" in text
    user = chat_user()
    user.send("/system")
    user.wait("Only admins")
