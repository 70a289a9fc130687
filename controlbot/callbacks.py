"""Inline-button payloads. Short prefixes and Enum actions keep every pack() under 64 bytes.

Bot-scoped payloads carry the owner id and the bot name, so an admin's buttons act on another
user's bot; handlers re-check the owner against whoever pressed (see `gateway.press_target`).
"""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData


class BotAction(StrEnum):
    CARD = "c"
    LOGS = "l"
    RESTART = "r"
    STOP = "s"
    START = "g"
    UPDATE = "u"
    DELETE = "d"
    DELETE_CONFIRM = "D"
    DELETE_CANCEL = "x"
    DELETE_WEBHOOK = "w"
    CHART = "p"  # a PNG of memory and CPU over the default range
    ROLLBACK = "b"  # issue 12: run the previous release again


class BotCb(CallbackData, prefix="b"):
    action: BotAction
    owner: int
    name: str


class LogsAction(StrEnum):
    REFRESH = "r"
    FULL = "f"


class LogsCb(CallbackData, prefix="l"):
    action: LogsAction
    owner: int
    name: str
    lines: int


class ReleaseLogsCb(CallbackData, prefix="rl"):
    """The kept output of a replaced release; release 0: the one before the current release."""

    owner: int
    name: str
    release: int


class FlowAction(StrEnum):
    SKIP_ENV = "s"
    CONFIRM = "y"
    CANCEL = "n"


class FlowCb(CallbackData, prefix="f"):
    """Buttons of the guided deploy flow; its data lives in the FSM, not in the button."""

    action: FlowAction


class MenuAction(StrEnum):
    LIST = "l"
    DEPLOY = "d"
    HELP = "h"


class MenuCb(CallbackData, prefix="m"):
    action: MenuAction


class AuditCb(CallbackData, prefix="a"):
    """A page of /audit (or /history); the filter rides along: an actor, or an owner with a bot."""

    page: int
    actor: int = 0  # 0: any
    owner: int = 0  # 0: any
    bot: str = ""
