"""Parsing what users type: env args, bot targets, names."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controlbot.errors import Refusal
from controlbot.i18n import create_i18n
from controlbot.parsing import (
    Target,
    check_name,
    parse_env,
    parse_target,
    split_args,
    target_args,
    target_choice,
)
from protocol.errors import ErrorCode, NotFound

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("en"):
        yield


def test_env_sets_and_unsets() -> None:
    changes = parse_env(split_args('BOT_TOKEN=1:abc GREETING="hello world" -OLD EMPTY= URL=a=b'))
    assert changes.set == {"BOT_TOKEN": "1:abc", "GREETING": "hello world", "EMPTY": "", "URL": "a=b"}
    assert changes.unset == ["OLD"]
    assert changes


def test_env_last_word_wins_between_set_and_unset() -> None:
    changes = parse_env(["A=1", "-A"])
    assert changes.set == {} and changes.unset == ["A"]
    changes = parse_env(["-A", "A=2"])
    assert changes.set == {"A": "2"} and changes.unset == []


def test_env_empty_is_falsy() -> None:
    assert not parse_env([])


@pytest.mark.parametrize("item", ["NOVALUE", "1ABC=x", "BAD-KEY=x", "=value", "-1X", "-"])
def test_malformed_env_is_refused_without_echoing_the_value(item: str) -> None:
    with pytest.raises(Refusal) as info:
        parse_env([item])
    assert info.value.code == ErrorCode.INVALID_ENV


def test_malformed_env_message_names_the_key_only() -> None:
    with pytest.raises(Refusal) as info:
        parse_env(["9SECRETKEY=supersecretvalue"])
    assert "supersecretvalue" not in info.value.message
    assert "9SECRETKEY" in info.value.message


def test_unbalanced_quotes() -> None:
    with pytest.raises(Refusal) as info:
        split_args('A="open')
    assert info.value.code == ErrorCode.INVALID_INPUT


def test_split_args_empty() -> None:
    assert split_args(None) == [] and split_args("  ") == []


def test_own_target() -> None:
    assert parse_target("echo", 5, False) == Target(owner=5, name="echo")


def test_admin_addresses_another_users_bot() -> None:
    assert parse_target("123/echo", 5, True) == Target(owner=123, name="echo")
    assert Target(owner=123, name="echo").ref(5) == "123/echo"
    assert Target(owner=5, name="echo").ref(5) == "echo"


def test_user_may_use_own_id_prefix() -> None:
    assert parse_target("5/echo", 5, False) == Target(owner=5, name="echo")


def test_user_cannot_address_another_users_bot() -> None:
    with pytest.raises(NotFound):
        parse_target("123/echo", 5, False)


@pytest.mark.parametrize("name", ["E", "Echo", "-echo", "a" * 32, "echo_bot", "эхо", "abc/def/ghi", "x/echo"])
def test_invalid_names_state_the_rule(name: str) -> None:
    with pytest.raises(Refusal) as info:
        parse_target(name, 5, True)
    assert info.value.code == ErrorCode.INVALID_NAME
    assert "2–31 characters" in info.value.message


def test_valid_names() -> None:
    for name in ["ab", "echo-bot", "0bot", "a" * 31]:
        assert check_name(name) == name


def test_target_args_requires_a_name() -> None:
    with pytest.raises(Refusal) as info:
        target_args("", 5, False, "Usage: /logs name")
    assert info.value.message == "Usage: /logs name"
    target, rest = target_args("echo 50", 5, False, "usage")
    assert target.name == "echo" and rest == ["50"]


def test_target_choice_takes_one_optional_word_of_the_choices() -> None:
    assert target_choice("echo", 5, False, "usage", {"daily", "off"}) == (Target(5, "echo"), None)
    assert target_choice("echo DAILY", 5, False, "usage", {"daily", "off"}) == (Target(5, "echo"), "daily")
    for text in ("echo weekly", "echo daily off", ""):
        with pytest.raises(Refusal) as info:
            target_choice(text, 5, False, "usage", {"daily", "off"})
        assert info.value.message == "usage"
