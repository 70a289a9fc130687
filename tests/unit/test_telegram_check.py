"""The control bot's check of a deploy's bot tokens, against the fake Bot API over HTTP."""

from __future__ import annotations

import pytest

from controlbot.telegram_check import TokenChecker
from protocol.errors import BotrunnerError, ErrorCode
from protocol.models import NoteKind
from tests.fakes.telegram import FakeTelegram

pytestmark = pytest.mark.unit


async def test_a_known_token_gives_its_username(fake_telegram: FakeTelegram) -> None:
    token = fake_telegram.new_token("check")
    found = await TokenChecker(fake_telegram.url).check({"BOT_TOKEN": f" {token} ", "GREETING": "hi"})
    assert found.usernames == {"BOT_TOKEN": fake_telegram.bot_user(token)["username"]}
    assert found.notes == []


async def test_a_token_telegram_never_issued_is_refused(fake_telegram: FakeTelegram) -> None:
    with pytest.raises(BotrunnerError) as info:
        await TokenChecker(fake_telegram.url).check({"T": "7999999998:TEST-never-issued-yyyyyyyyyyyyyyyyyyy"})
    assert info.value.code is ErrorCode.TOKEN_INVALID and info.value.params.key == "T"
    assert "TEST-never" not in info.value.message


async def test_a_revoked_token_is_refused(fake_telegram: FakeTelegram) -> None:
    token = fake_telegram.new_token("revoked")
    fake_telegram.revoke(token)
    with pytest.raises(BotrunnerError) as info:
        await TokenChecker(fake_telegram.url).check({"BOT_TOKEN": token})
    assert info.value.code is ErrorCode.TOKEN_INVALID


async def test_a_webhook_is_reported(fake_telegram: FakeTelegram) -> None:
    token = fake_telegram.new_token("hook")
    fake_telegram.set_webhook(token, "https://example.invalid/hook")
    found = await TokenChecker(fake_telegram.url).check({"BOT_TOKEN": token})
    assert [(n.kind, n.key) for n in found.notes] == [(NoteKind.WEBHOOK_SET, "BOT_TOKEN")]


async def test_telegram_unreachable_deploys_with_a_warning() -> None:
    token = "7999999997:TEST-unreachable-zzzzzzzzzzzzzzzzzzzz"
    found = await TokenChecker("http://127.0.0.1:1").check({"BOT_TOKEN": token})
    assert found.usernames == {}
    assert [(n.kind, n.key) for n in found.notes] == [(NoteKind.TOKEN_UNVERIFIED, "BOT_TOKEN")]


async def test_values_not_shaped_like_tokens_are_not_sent() -> None:
    found = await TokenChecker("http://127.0.0.1:1").check({"A": "123:short", "B": "hello"})
    assert found.usernames == {} and found.notes == []
