"""Crash alerts: consume the runner's events stream and push a message to the bot's owner, unasked.

Only crashes the runner marks as news are sent: the first of a streak (`alert`) and the end of a
crash loop (`crash_loop`). A bot stopped by its owner produces nothing. Entries are acknowledged
after the message went out (or can never go out), so a restart of the control bot loses none.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from html import escape
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramServerError
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from controlbot import formatting, gatewatch, keyboards
from controlbot.i18n import pick_locale
from protocol import keys
from protocol.models import Event, EventType

log = logging.getLogger(__name__)

# An event older than this when first read (the control bot was down) is no longer worth a push.
STALE_AFTER_S = 900.0
# Entries another consumer read but never acknowledged for this long are taken over.
CLAIM_IDLE_MS = 60_000
BLOCK_MS = 2_000


def should_alert(event: Event) -> bool:
    if event.type == EventType.CRASHED:
        return event.alert or event.crash_loop
    return event.type in (EventType.CONFLICT, EventType.DISK_LIMIT_EXCEEDED)


class LoopFilter:
    """Lets one crash-loop alert through per crash streak.

    When the runner handles a burst of deaths late, each of them sees the bot already given up and
    carries `crash_loop`; the owner should still hear it once. A new streak (`alert`) re-arms it.
    """

    def __init__(self) -> None:
        self._reported: set[tuple[int, str]] = set()

    def admit(self, event: Event) -> bool:
        key = (event.owner, event.name)
        if event.alert:
            self._reported.discard(key)
        if not event.crash_loop:
            return True
        if key in self._reported:
            return False
        self._reported.add(key)
        return True


def conflict_text(event: Event) -> str:
    return _(
        "⚠️ <b>{name}</b> gets 409 Conflict from Telegram: another process polls with the same token, "
        "so updates go to one of them at random. Stop the other poller: the same token in another "
        "botrunner, on your laptop or in a second bot, or a webhook set on it. You hear this at most "
        "once an hour."
    ).format(name=escape(event.name))


def disk_text(event: Event) -> str:
    return _(
        "💾 <b>{name}</b> was stopped: it holds {used} in /app and /data, over its limit of {limit}. "
        "Free space (e.g. restore a smaller /data with /restore), then start it again.\n"
        "<code>DISK_LIMIT_EXCEEDED</code>"
    ).format(
        name=escape(event.name),
        used=formatting.size(event.disk_used_bytes),
        limit=formatting.size(event.disk_limit_bytes),
    )


def alert_text(event: Event) -> str:
    """The alert in the current locale; always within Telegram's 4096 characters."""
    if event.type == EventType.CONFLICT:
        return conflict_text(event)
    if event.type == EventType.DISK_LIMIT_EXCEEDED:
        return disk_text(event)
    what = formatting.exit_text(event.exit_code, event.oom_killed, event.memory_limit_bytes)
    header = _("💥 <b>{name}</b> crashed: {what}").format(name=escape(event.name), what=escape(what))
    if event.crash_loop:
        header += "\n" + _(
            "🔁 It keeps crashing ({n} restarts), so it stays stopped. Fix the code and send it with /update."
        ).format(n=event.restart_count)
    else:
        header += "\n" + _("It is being restarted automatically. Its last lines:")
    return formatting.log_block(header, event.log_tail or "")


class AlertConsumer:
    def __init__(self, bot: Bot, redis: Redis, i18n: I18n, consumer: str | None = None) -> None:
        self.bot = bot
        self.redis = redis
        self.i18n = i18n
        self.consumer = consumer or f"controlbot-{socket.gethostname()}"
        self._last_claim = 0.0
        self.loops = LoopFilter()

    async def ensure_group(self) -> None:
        try:
            # "$": a fresh group starts at the present, not at 10,000 old events.
            await self.redis.xgroup_create(keys.EVENTS_STREAM, keys.EVENTS_GROUP, id="$", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    async def run(self) -> None:
        """Until cancelled: read, alert, acknowledge. Redis outages are waited out with backoff."""
        delay = 0.5
        backlog = True  # first re-read what this consumer read but never acknowledged
        while True:
            try:
                await self.ensure_group()
                while True:
                    backlog = await self.step(backlog)
                    delay = 0.5
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as e:
                log.warning("events stream unavailable (%s); retrying in %.1f s", e, delay)
            except (TelegramNetworkError, TelegramServerError) as e:
                log.warning("Telegram unreachable for alerts (%s); retrying in %.1f s", e, delay)
                backlog = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def step(self, backlog: bool) -> bool:
        """One read; returns whether unacknowledged entries of ours may remain."""
        stream_id = "0" if backlog else ">"
        block = None if backlog else BLOCK_MS
        # RESP2 shape: [[stream, [(id, fields), ...]]]; redis-py's annotations cover every protocol.
        reply: Any = await self.redis.xreadgroup(
            keys.EVENTS_GROUP, self.consumer, {keys.EVENTS_STREAM: stream_id}, count=50, block=block
        )
        entries = reply[0][1] if reply else []
        for entry_id, fields in entries:
            await self.handle(entry_id, fields)
        await self.claim_abandoned()
        return backlog and bool(entries)

    async def claim_abandoned(self) -> None:
        """Take over entries of consumers that died before acknowledging them."""
        now = time.monotonic()
        if now - self._last_claim < CLAIM_IDLE_MS / 1000:
            return
        self._last_claim = now
        claimed = await self.redis.xautoclaim(
            keys.EVENTS_STREAM, keys.EVENTS_GROUP, self.consumer, min_idle_time=CLAIM_IDLE_MS, count=50
        )
        for entry_id, fields in claimed[1]:
            if fields:  # a deleted entry comes back empty
                await self.handle(entry_id, fields)

    async def handle(self, entry_id: bytes | str, fields: dict[bytes, bytes] | None) -> None:
        raw = (fields or {}).get(b"data")
        try:
            event = Event.model_validate_json(raw) if raw else None
        except ValueError:
            log.warning("unreadable event %s dropped", entry_id)
            event = None
        if event is not None and event.type == EventType.GATE and time.time() - event.ts < STALE_AFTER_S:
            await gatewatch.deliver(self.bot, self.redis, self.i18n, event)  # issue 12: the gate's verdict
        elif (
            event is not None
            and should_alert(event)
            and self.loops.admit(event)
            and time.time() - event.ts < STALE_AFTER_S
        ):
            await self.send(event)
        await self.redis.xack(keys.EVENTS_STREAM, keys.EVENTS_GROUP, entry_id)

    async def send(self, event: Event) -> None:
        raw_locale = await self.redis.get(keys.user_locale(event.owner))
        locale = pick_locale(raw_locale.decode() if isinstance(raw_locale, bytes) else raw_locale)
        with self.i18n.context(), self.i18n.use_locale(locale):
            text = alert_text(event)
            markup = keyboards.alert(event.owner, event.name)
        try:
            await self.bot.send_message(event.owner, text, reply_markup=markup)
            log.info("crash alert sent owner=%s bot=%s exit=%s", event.owner, event.name, event.exit_code)
        except (TelegramNetworkError, TelegramServerError):
            raise  # not acknowledged: retried once Telegram answers again
        except TelegramAPIError as e:  # blocked by the user, chat gone: nothing will ever deliver it
            log.warning("crash alert to owner=%s bot=%s undeliverable: %s", event.owner, event.name, e)
