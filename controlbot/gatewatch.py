"""The health gate's verdict in chat: the deploy's message is edited to it when the gate ends.

Design: the reply to a deploy comes as soon as the container runs, ending in "🟢 running · checking
it stays up…". The chat then keeps a short-lived Redis record, keyed by the deploy's request id,
of that message (chat, message id, locale, text, buttons). When the gate ends, the runner publishes
one GATE event (carrying the request id) on the events stream; the alert consumer reads the record
and edits that same message to the verdict. A deploy made through the API or the CLI has no record:
its owner then gets the verdict as one new message, and only when it is bad news.
"""

from __future__ import annotations

import json
import logging
from html import escape
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramNetworkError, TelegramServerError
from aiogram.types import InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from redis.asyncio import Redis

from controlbot import formatting, keyboards
from controlbot.i18n import pick_locale
from protocol import keys
from protocol.models import Event, GateVerdict

log = logging.getLogger(__name__)


def checking_line() -> str:
    return "🟢 " + _("running · checking it stays up…")


def healthy_line() -> str:
    return "🟢 " + _("running · it stays up ✅")


async def remember(
    redis: Redis,
    request_id: str,
    message: Message,
    locale: str,
    text: str,
    markup: InlineKeyboardMarkup | None,
) -> None:
    """Keep which message shows the deploy of request_id, so the verdict edits it."""
    record = {
        "chat": message.chat.id,
        "message": message.message_id,
        "locale": locale,
        "text": text,
        "markup": markup.model_dump(mode="json", exclude_none=True) if markup else None,
    }
    await redis.set(keys.gate_message(request_id), json.dumps(record), ex=keys.VERDICT_TTL)


def verdict_text(event: Event) -> str:
    """A bad verdict in the current locale: which release crashed, its last lines, what runs now."""
    name = escape(event.name)
    what = escape(formatting.exit_text(event.exit_code, event.oom_killed, event.memory_limit_bytes))
    if event.verdict is GateVerdict.ROLLED_BACK:
        header = _(
            "⏪ Release {n} of <b>{name}</b> crashed right after the deploy ({what}), so release {m} "
            "runs again. Release {n} stays in /releases, marked failed. Its last lines:"
        ).format(n=event.release, m=event.restored, name=name, what=what)
    elif event.verdict is GateVerdict.EXITED:
        header = _(
            "⚪ <b>{name}</b> (release {n}) exited with code 0 right after starting; it was not rolled "
            "back. Its last lines:"
        ).format(n=event.release, name=name)
    else:
        header = _(
            "💥 <b>{name}</b> (release {n}) crashed right after starting ({what}) and was left stopped. "
            "Fix the code and send it with /update. Its last lines:"
        ).format(n=event.release, name=name, what=what)
    return formatting.log_block(header, event.log_tail or "")


async def deliver(bot: Bot, redis: Redis, i18n: I18n, event: Event) -> None:
    """Edit the deploy's message to the verdict, or tell the owner in one new message."""
    raw = await redis.get(keys.gate_message(event.request_id)) if event.request_id else None
    record = json.loads(raw) if raw else None
    if record is None and event.verdict is GateVerdict.HEALTHY:
        return  # no message waits for it, and good news needs no new one
    locale_raw = record["locale"] if record else await redis.get(keys.user_locale(event.owner))
    if isinstance(locale_raw, bytes):
        locale_raw = locale_raw.decode()
    with i18n.context(), i18n.use_locale(pick_locale(locale_raw)):
        if event.verdict is GateVerdict.HEALTHY and record is not None:
            text = str(record["text"]).replace(checking_line(), healthy_line())
            markup = InlineKeyboardMarkup.model_validate(record["markup"]) if record["markup"] else None
        else:
            text, markup = verdict_text(event), keyboards.alert(event.owner, event.name)
    try:
        await _show(bot, event, record, text, markup)
    except (TelegramNetworkError, TelegramServerError):
        raise  # not acknowledged: retried once Telegram answers again
    except TelegramAPIError as e:
        log.warning("gate verdict to owner=%s bot=%s undeliverable: %s", event.owner, event.name, e)
    if record is not None:
        await redis.delete(keys.gate_message(event.request_id or ""))
    log.info("gate verdict %s delivered owner=%s bot=%s", event.verdict, event.owner, event.name)


async def _show(
    bot: Bot, event: Event, record: dict[str, Any] | None, text: str, markup: InlineKeyboardMarkup | None
) -> None:
    if record is not None:
        try:
            await bot.edit_message_text(
                text, chat_id=record["chat"], message_id=record["message"], reply_markup=markup
            )
            return
        except TelegramBadRequest as e:  # deleted, too old: fall back to a new message
            log.info("gate verdict edit refused (%s); sending it", e)
    await bot.send_message(event.owner, text, reply_markup=markup)
