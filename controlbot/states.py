"""FSM states of the guided deploy flow (a .py sent with no caption)."""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup


class DeployFlow(StatesGroup):
    name = State()
    env = State()
    confirm = State()
