"""Text of cards, lists and log blocks: HTML-escaped and always within Telegram's limits."""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from html import escape, unescape
from typing import TypeVar

from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from babel.support import LazyProxy

from protocol import sealing
from protocol.models import BotState, BotStatus, SourceKind
from protocol.timeparse import two_units

MAX_TEXT = 4096
MAX_CAPTION = 1024
SUBJECT_MAX = 80

# `user:password@` (or a lone token@) right after a URL's scheme.
_USERINFO_RE = re.compile(r"(?<=://)[^/@\s]*@")
# Terminal colours in build output (pip's errors come red): noise in chat and in a .txt.
_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

E = TypeVar("E", bound=StrEnum)

STATE_ICONS: dict[BotState, str] = {
    BotState.RUNNING: "🟢",
    BotState.STARTING: "🟡",
    BotState.RESTARTING: "🟡",
    BotState.STOPPED: "🔴",
    BotState.CRASHED: "💥",
    BotState.MISSING: "⚪",
}


def tg_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


# What chat calls each state; lazy, so each reader gets their own language.
STATE_NAMES: dict[BotState, LazyProxy] = {
    BotState.RUNNING: __("running"),
    BotState.STARTING: __("starting"),
    BotState.RESTARTING: __("restarting"),
    BotState.STOPPED: __("stopped"),
    BotState.CRASHED: __("crashed"),
    BotState.MISSING: __("missing"),
}


def enum_name(names: Mapping[E, LazyProxy], value: E) -> str:
    """The localised name of an enum value, or its raw value when names has none."""
    name = names.get(value)
    return value.value if name is None else str(name)


def duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "—"
    unit, big, small = two_units(seconds)
    if unit == "d":
        return _("{d}d {h}h").format(d=big, h=small)
    if unit == "h":
        return _("{h}h {m}m").format(h=big, m=small)
    if unit == "m":
        return _("{m}m {s}s").format(m=big, s=small)
    return _("{s}s").format(s=big)


def size(nbytes: int | None) -> str:
    if nbytes is None:
        return "—"
    mb = nbytes / (1024 * 1024)
    return _("{n} MB").format(n=f"{mb:.0f}" if mb >= 10 or mb == int(mb) else f"{mb:.1f}")


def mask(value: str) -> str:
    """A value as chat may show it: at most its first 3 characters, as the runner masks it (#10)."""
    return sealing.mask(value) if value else "''"


def has_credentials(text: str | None) -> bool:
    """Whether a URL in text carries `user[:password]@`."""
    return text is not None and _USERINFO_RE.search(text) is not None


def mask_credentials(text: str) -> str:
    """Every URL's `user:password@` as `***@`: all chat may ever show of a URL's credentials."""
    return _USERINFO_RE.sub("***@", text)


def clean_log(text: str) -> str:
    """A build or git log as chat may show it: no terminal colours, no credentials."""
    return mask_credentials(_ANSI_RE.sub("", text))


def bot_ref(bot: BotStatus, viewer: int) -> str:
    """`name` for the owner, `owner/name` for an admin looking at someone else's bot."""
    return bot.name if bot.owner == viewer else f"{bot.owner}/{bot.name}"


def exit_text(exit_code: int | None, oom_killed: bool, memory_limit: int | None) -> str:
    if oom_killed:
        return _("killed: out of memory (limit {limit})").format(limit=size(memory_limit))
    return _("exit code {code}").format(code=exit_code if exit_code is not None else "?")


def card(bot: BotStatus, viewer: int) -> str:
    """The status card of one bot."""
    icon = STATE_ICONS.get(bot.state, "⚪")
    lines = [f"{icon} <b>{escape(bot_ref(bot, viewer))}</b> — {enum_name(STATE_NAMES, bot.state)}"]
    if bot.state in (BotState.RUNNING, BotState.RESTARTING, BotState.STARTING):
        lines.append(_("Uptime: {uptime}").format(uptime=duration(bot.uptime_seconds)))
    lines.append(_("Restarts: {n}").format(n=bot.restart_count))
    mem = f"{size(bot.memory_bytes)} / {size(bot.limits.memory_bytes)}"
    cpu_used = "—" if bot.cpu_percent is None else f"{bot.cpu_percent:.1f}%"
    cpu = f"{cpu_used} / {bot.limits.cpu * 100:.0f}%"
    lines.append(_("Memory: {mem} · CPU: {cpu}").format(mem=mem, cpu=cpu))
    # A stop by its owner ends in 143 (SIGTERM) or 137: that is no news; a crash or an OOM is.
    if bot.oom_killed or (bot.exit_code is not None and bot.state in (BotState.CRASHED, BotState.RESTARTING)):
        lines.append(
            _("Last exit: {what}").format(
                what=exit_text(bot.exit_code, bot.oom_killed, bot.limits.memory_bytes)
            )
        )
    lines += source_lines(bot)
    if bot.usernames:
        links = ", ".join(
            f'<a href="https://t.me/{escape(u)}">@{escape(u)}</a>'
            for u in sorted(set(bot.usernames.values()))
        )
        lines.append(_("Telegram: {bots}").format(bots=links))
    if bot.env_masked:
        env = ", ".join(f"<code>{escape(k)}</code>={escape(v)}" for k, v in sorted(bot.env_masked.items()))
        lines.append(_("Env: {env}").format(env=env))
    else:
        lines.append(_("Env: none"))
    return "\n".join(lines)


def source_lines(bot: BotStatus) -> list[str]:
    """Where the code came from: the file with its sha, or the repository, branch and commit."""
    src = bot.source
    if src.kind == SourceKind.GIT:
        where = escape(mask_credentials(src.git_url or "git"))
        if src.branch:
            where += f" ({escape(src.branch)})"
        lines = [_("Source: {source}").format(source=where)]
        if src.commit:
            subject = src.commit_subject or ""
            if len(subject) > SUBJECT_MAX:
                subject = subject[: SUBJECT_MAX - 1] + "…"
            commit = f"<code>{escape(src.commit[:7])}</code> {escape(subject)}".rstrip()
            lines.append(_("Commit: {commit}").format(commit=commit))
    else:
        name = escape(src.filename or src.kind.value)
        sha = f" · sha <code>{escape(src.sha256[:8])}</code>" if src.sha256 else ""
        lines = [_("Source: {source}").format(source=f"{name}{sha}")]
    if src.entrypoint and src.kind != SourceKind.FILE:
        lines.append(_("Entry point: {path}").format(path=f"<code>{escape(src.entrypoint)}</code>"))
    if src.dependencies:
        lines.append(_("Dependencies: {n}").format(n=len(src.dependencies)))
    return lines


def list_line(bot: BotStatus, viewer: int) -> str:
    icon = STATE_ICONS.get(bot.state, "⚪")
    line = f"{icon} <b>{escape(bot_ref(bot, viewer))}</b> — {enum_name(STATE_NAMES, bot.state)}"
    if bot.state == BotState.RUNNING and bot.uptime_seconds is not None:
        line += f", {duration(bot.uptime_seconds)}"
    return line


def log_block(header: str, logs: str, limit: int = MAX_TEXT) -> str:
    """`header` then the log in <pre>, trimmed from the top to fit `limit`, never mid-entity.

    Lines are escaped one by one after choosing them, so a cut can only fall between whole
    characters of the original text, never inside `&amp;` or a tag.
    """
    head = f"{header}\n<pre>"
    tail = "</pre>"
    budget = limit - tg_len(head) - tg_len(tail)
    lines = logs.rstrip("\n").split("\n") if logs.strip() else []
    if not lines:
        empty = _("(no output yet)")
        return f"{header}\n<i>{escape(empty)}</i>"
    kept: list[str] = []
    used = 0
    marker = "…\n"
    for raw in reversed(lines):
        piece = escape(raw) + ("\n" if kept else "")
        cost = tg_len(piece)
        if used + cost + tg_len(marker) > budget:
            if not kept:  # a single line longer than everything: keep its end
                kept.append(_tail_fit(raw, budget - tg_len(marker)))
            trimmed = True
            break
        kept.append(piece)
        used += cost
    else:
        trimmed = False
    body = "".join(reversed(kept))
    if trimmed:
        body = marker + body
    return head + body + tail


def _tail_fit(raw: str, budget: int) -> str:
    """The longest end of `raw` whose escaped form fits `budget`."""
    lo, hi = 0, len(raw)
    while lo < hi:  # smallest start index that fits
        mid = (lo + hi) // 2
        if tg_len(escape(raw[mid:])) <= budget:
            hi = mid
        else:
            lo = mid + 1
    return escape(raw[lo:])


def truncate(text: str, limit: int = MAX_TEXT) -> str:
    """Plain text (not yet escaped) cut from the top to fit, keeping its end."""
    if tg_len(text) <= limit:
        return text
    cut = text[-(limit - 1) :]
    while tg_len(cut) > limit - 1:
        cut = cut[1:]
    return "…" + cut


def join_fitting(lines: list[str], limit: int = MAX_TEXT) -> str:
    """Whole HTML lines, as many as fit, then a count of those left out."""
    out: list[str] = []
    used = 0
    for i, line in enumerate(lines):
        more = "\n" + _("… and {n} more").format(n=len(lines) - i)
        cost = tg_len(line) + 1
        if (used + cost + tg_len(more) > limit and i < len(lines) - 1) or used + cost > limit:
            out.append(more.lstrip("\n"))
            break
        out.append(line)
        used += cost
    return "\n".join(out)


def strip_tags(text: str) -> str:
    """HTML to the plain text a callback toast can show (no markup there)."""
    return unescape(re.sub(r"<[^>]+>", "", text))[:200]
