"""How the CLI shows bots: Rich tables and cards for people, JSON for scripts."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from protocol.timeparse import two_units

STATE_ICONS = {
    "running": "🟢",
    "starting": "🟡",
    "restarting": "🟡",
    "stopped": "🔴",
    "crashed": "💥",
    "missing": "⚪",
}

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    # Plain print: no Rich markup or wrapping may touch machine output.
    print(json.dumps(data, indent=2, ensure_ascii=False))


def state_label(state: str) -> str:
    return f"{STATE_ICONS.get(state, '❔')} {state.upper()}"


def duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "—"
    unit, big, small = two_units(seconds)
    return {"d": f"{big}d {small}h", "h": f"{big}h {small}m", "m": f"{big}m {small}s"}.get(unit, f"{big}s")


def size(nbytes: int | None) -> str:
    if nbytes is None:
        return "—"
    mb = nbytes / (1024 * 1024)
    return f"{mb:.0f} MB" if mb >= 10 or mb == int(mb) else f"{mb:.1f} MB"


def source_text(source: dict[str, Any]) -> str:
    if source.get("kind") == "git":
        text = f"git {source.get('git_url') or '?'}"
        if source.get("branch"):
            text += f" @ {source['branch']}"
        if source.get("commit"):
            text += f", commit {str(source['commit'])[:7]}"
            if source.get("commit_subject"):
                text += f" “{source['commit_subject']}”"
        return text
    text = str(source.get("filename") or source.get("kind") or "?")
    if source.get("sha256"):
        text += f" (sha {str(source['sha256'])[:7]})"
    return text


def quota_text(quota: dict[str, Any] | None) -> str:
    if not quota:
        return "?"
    return f"{quota['used']}/{quota['limit']}"


def bots_table(bots: list[dict[str, Any]], quota: dict[str, Any] | None) -> Table:
    table = Table(title=None, caption=f"bots: {quota_text(quota)}", caption_justify="left", box=None)
    for column in ("NAME", "STATE", "UPTIME", "RESTARTS", "SOURCE"):
        table.add_column(column, no_wrap=column in ("NAME", "STATE"))
    for bot in bots:
        row = [
            bot["name"],
            state_label(bot["state"]),
            duration(bot.get("uptime_seconds")),
            str(bot.get("restart_count", 0)),
            source_text(bot.get("source") or {}),
        ]
        table.add_row(*row)
    return table


def _exit_text(bot: dict[str, Any]) -> str | None:
    if bot.get("oom_killed"):
        return f"killed: out of memory (limit {size(bot['limits']['memory_bytes'])})"
    if bot.get("exit_code") is not None and bot.get("state") != "running":
        return f"exit code {bot['exit_code']}"
    return None


def status_card(bot: dict[str, Any]) -> Text:
    limits = bot.get("limits") or {}
    rows: list[tuple[str, str]] = [
        ("uptime", duration(bot.get("uptime_seconds"))),
        ("restarts", str(bot.get("restart_count", 0))),
        ("memory", f"{size(bot.get('memory_bytes'))} / {size(limits.get('memory_bytes'))}"),
        ("cpu", _cpu_text(bot.get("cpu_percent"), limits.get("cpu"))),
        ("pids limit", str(limits.get("pids", "—"))),
        ("source", source_text(bot.get("source") or {})),
        ("container", str(bot.get("container_id") or "—")[:12]),
    ]
    last_exit = _exit_text(bot)
    if last_exit:
        rows.insert(2, ("last exit", last_exit))
    env = bot.get("env_masked") or {}
    if env:
        rows.append(("env", ", ".join(f"{k}={v}" for k, v in env.items())))
    text = Text(f"{state_label(bot['state'])}  {bot['name']}\n", style="bold")
    for label, value in rows:
        text.append(f"  {label:<11}", style="dim")
        text.append(f"{value}\n")
    text.rstrip()
    return text


def _cpu_text(percent: float | None, limit: float | None) -> str:
    used = "—" if percent is None else f"{percent:.1f}%"
    return f"{used} / {limit:g} CPU" if limit else used
