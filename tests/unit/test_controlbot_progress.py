"""The progress message: a fast deploy goes straight to its card; a slow one shows its stages."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pytest
from aiogram.types import Message

from controlbot.progress import STEP_DELAY_S, ProgressMessage

pytestmark = pytest.mark.unit


class Recorder:
    def __init__(self) -> None:
        self.edits: list[tuple[float, str]] = []

    async def edit_text(self, text: str, reply_markup: Any = None) -> None:
        self.edits.append((time.monotonic(), text))


async def test_a_fast_deploy_edits_once_at_once() -> None:
    rec = Recorder()
    progress = ProgressMessage(cast(Message, rec), "⏳ downloading")
    await progress.step("🚀 starting")
    started = time.monotonic()
    await progress.finish(progress.trail("🟢 running"))
    assert [text for _, text in rec.edits] == ["⏳ downloading → 🚀 starting → 🟢 running"]
    assert rec.edits[0][0] - started < 0.1  # not held back by the once-a-second throttle


async def test_a_slow_stage_shows_then_the_end_waits_out_the_throttle() -> None:
    rec = Recorder()
    progress = ProgressMessage(cast(Message, rec), "⏳ cloning", min_interval=0.6)
    await progress.step("📦 installing dependencies")
    await asyncio.sleep(max(STEP_DELAY_S, 0.6) + 0.2)
    assert [text for _, text in rec.edits] == ["⏳ cloning → 📦 installing dependencies…"]
    await progress.finish("done")
    assert [text for _, text in rec.edits][-1] == "done"
    assert rec.edits[1][0] - rec.edits[0][0] >= 0.55
