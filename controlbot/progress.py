"""One message edited through the stages of a long operation, at most once a second.

The text is a trail ("⏳ downloading → 🚀 starting…"), so a stage skipped by the throttle still
shows up in the next edit, and the final edit shows every step. A stage is shown only once it
has lasted a moment (STEP_DELAY_S): a deploy that is done in a fraction of a second goes straight
from the first message to its card, with no edit in between to wait out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.types import InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from protocol.models import Progress, Stage

log = logging.getLogger(__name__)

MIN_INTERVAL_S = 1.0
STEP_DELAY_S = 0.5


def stage_label(stage: Stage) -> str | None:
    labels = {
        Stage.CLONING: _("⏳ cloning"),
        Stage.INSTALLING: _("📦 installing dependencies"),
        Stage.BUILDING: _("🔨 building"),
        Stage.STOPPING: _("⏹ stopping"),
        Stage.STARTING: _("🚀 starting"),
    }
    return labels.get(stage)  # QUEUED and RUNNING add nothing: the final edit says "running"


class ProgressMessage:
    def __init__(self, message: Message, first: str, min_interval: float = MIN_INTERVAL_S) -> None:
        self.message = message
        self.steps = [first]
        self.min_interval = min_interval
        self._last_edit = time.monotonic()
        self._edited = False  # only the first message was sent so far
        self._flush_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @classmethod
    async def send(cls, reply_to: Message, first: str) -> ProgressMessage:
        sent = await reply_to.answer(f"{first}…")
        return cls(sent, first)

    @classmethod
    async def take_over(cls, message: Message, first: str) -> ProgressMessage:
        """Turn a message the bot already sent (e.g. a confirmation) into the progress message."""
        progress = cls(message, first)
        await progress._edit(f"{first}…")
        return progress

    def trail(self, final: str | None = None) -> str:
        if final is None:
            return " → ".join(self.steps) + "…"
        return " → ".join([*self.steps, final])

    async def step(self, label: str) -> None:
        # A stage reports many times (clone percentages, pip lines): it shows once in the trail.
        if label in self.steps:
            return
        self.steps.append(label)
        wait = max(STEP_DELAY_S, self.min_interval - (time.monotonic() - self._last_edit))
        if self._flush_task is None:
            self._flush_task = asyncio.create_task(self._flush_later(wait))

    async def on_runner(self, progress: Progress) -> None:
        """The `on_progress` callback for `RunnerClient.call`."""
        label = stage_label(progress.stage)
        if label is not None:
            await self.step(label)

    async def finish(self, text: str, reply_markup: InlineKeyboardMarkup | None = None) -> None:
        """The last edit: always made; right away when it is the first, else after the throttle window
        (one message and one edit in a second is within Telegram's per-chat pace)."""
        if self._flush_task is not None:
            self._flush_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flush_task
            self._flush_task = None
        wait = self.min_interval - (time.monotonic() - self._last_edit)
        if wait > 0 and self._edited:
            await asyncio.sleep(wait)
        await self._edit(text, reply_markup)

    async def _flush_later(self, wait: float) -> None:
        await asyncio.sleep(wait)
        self._flush_task = None
        await self._edit(self.trail())

    async def _edit(self, text: str, reply_markup: InlineKeyboardMarkup | None = None) -> None:
        async with self._lock:
            self._last_edit = time.monotonic()
            self._edited = True
            try:
                await self.message.edit_text(text, reply_markup=reply_markup)
            except TelegramBadRequest as e:
                if "not modified" not in str(e).lower():
                    log.warning("progress edit refused: %s", e)
            except TelegramAPIError:
                log.warning("progress edit failed", exc_info=True)
