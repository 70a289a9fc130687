"""Inline button payloads fit Telegram's 64 bytes at their largest, and round-trip."""

from __future__ import annotations

import pytest
from aiogram.filters.callback_data import MAX_CALLBACK_LENGTH

from controlbot.callbacks import BotAction, BotCb, FlowAction, FlowCb, LogsAction, LogsCb, MenuAction, MenuCb

pytestmark = pytest.mark.unit

# Telegram user ids fit in 52 bits; names are at most 31 characters.
BIGGEST_OWNER = 2**52 - 1
LONGEST_NAME = "a" * 31


@pytest.mark.parametrize("action", list(BotAction))
def test_bot_buttons_fit(action: BotAction) -> None:
    packed = BotCb(action=action, owner=BIGGEST_OWNER, name=LONGEST_NAME).pack()
    assert len(packed.encode()) <= MAX_CALLBACK_LENGTH
    assert BotCb.unpack(packed) == BotCb(action=action, owner=BIGGEST_OWNER, name=LONGEST_NAME)


@pytest.mark.parametrize("action", list(LogsAction))
def test_logs_buttons_fit(action: LogsAction) -> None:
    cb = LogsCb(action=action, owner=BIGGEST_OWNER, name=LONGEST_NAME, lines=2000)
    assert len(cb.pack().encode()) <= MAX_CALLBACK_LENGTH
    assert LogsCb.unpack(cb.pack()) == cb


def test_small_buttons_fit() -> None:
    for cb in [*(FlowCb(action=a) for a in FlowAction), *(MenuCb(action=a) for a in MenuAction)]:
        assert len(cb.pack().encode()) <= MAX_CALLBACK_LENGTH


def test_prefixes_are_distinct() -> None:
    prefixes = [c.__prefix__ for c in (BotCb, LogsCb, FlowCb, MenuCb)]
    assert len(set(prefixes)) == len(prefixes)


def test_actions_are_distinct() -> None:
    assert len({a.value for a in BotAction}) == len(BotAction)
