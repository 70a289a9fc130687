"""A bot's memory and CPU over time as a PNG: matplotlib's Agg canvas, drawn in a worker thread.

matplotlib (with numpy) costs tens of MB and a second to import, so it is imported on the first
chart, not with the control bot. No pyplot: a Figure on its own canvas keeps no global state, so
two charts drawn at once in two threads do not meet.
"""

from __future__ import annotations

import asyncio
import io
import time
from typing import Final

from protocol.models import BotStats

# The ranges a chart or a stats query may cover, in seconds.
RANGES: Final = {"1h": 3600, "24h": 86400, "7d": 7 * 86400}
DEFAULT_RANGE: Final = "24h"
MB = 2**20


def range_seconds(text: str | None) -> int | None:
    """Seconds of a range such as '24h'; None for anything else."""
    return RANGES.get((text or DEFAULT_RANGE).strip().lower())


def render(stats: BotStats, title: str, seconds: float, *, now: float | None = None) -> bytes:
    """The chart as PNG bytes. Blocking: call through `chart`."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    end = time.time() if now is None else now
    xs = _days([s.ts for s in stats.samples])
    mem = [s.memory_bytes / MB for s in stats.samples]
    cpu = [s.cpu_percent for s in stats.samples]
    fig = Figure(figsize=(8, 4.5), dpi=100)
    # Fixed margins: a layout engine would measure every label again, a third of the drawing time.
    fig.subplots_adjust(left=0.08, right=0.98, top=0.92, bottom=0.1, hspace=0.12)
    ax_mem, ax_cpu = fig.subplots(2, 1, sharex=True)
    ax_mem.plot(xs, mem, color="#1f77b4", linewidth=1.2)
    ax_mem.axhline(
        stats.limits.memory_bytes / MB, color="#d62728", linestyle="--", linewidth=1, label="limit"
    )
    ax_mem.set_ylabel("memory, MB")
    ax_mem.set_ylim(0, stats.limits.memory_bytes / MB * 1.08)
    ax_cpu.plot(xs, cpu, color="#2ca02c", linewidth=1.2)
    ax_cpu.axhline(stats.limits.cpu * 100, color="#d62728", linestyle="--", linewidth=1, label="limit")
    ax_cpu.set_ylabel("CPU, %")
    ax_cpu.set_ylim(0, max(stats.limits.cpu * 100, max(cpu, default=0)) * 1.08)
    for mark in _days(stats.restarts):
        for ax in (ax_mem, ax_cpu):
            ax.axvline(mark, color="#ff7f0e", linewidth=1, alpha=0.8)
    if stats.restarts:
        ax_mem.plot([], [], color="#ff7f0e", label="restart")
    ax_mem.legend(loc="upper left", fontsize="small")
    ax_cpu.set_xlim(*_days([end - seconds, end]))
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    ax_cpu.xaxis.set_major_locator(locator)
    ax_cpu.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    for ax in (ax_mem, ax_cpu):
        ax.grid(True, alpha=0.3)
    fig.suptitle(title)
    if not stats.samples:
        ax_mem.text(0.5, 0.5, "no samples yet", transform=ax_mem.transAxes, ha="center", va="center")
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def _days(epochs: list[float]) -> list[float]:
    """matplotlib's date numbers: days since its default epoch, 1970-01-01 UTC."""
    return [t / 86400.0 for t in epochs]


async def chart(stats: BotStats, title: str, seconds: float) -> bytes:
    """Draw off the event loop: a week of samples is a few hundred milliseconds of CPU."""
    return await asyncio.to_thread(render, stats, title, seconds)
