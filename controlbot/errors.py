"""The one place where errors become chat messages: a sentence saying what to do next, plus its code.

No traceback ever reaches a user. Errors raised by handlers (bad input) and errors returned by
the runner are both `BotrunnerError`s; anything else is logged and answered with a generic line.
"""

from __future__ import annotations

import logging
import math
import re
from html import escape, unescape

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import ErrorEvent, User
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from controlbot.formatting import MAX_TEXT, clean_log, log_block, mask_credentials, size, tg_len
from controlbot.i18n import pick_locale
from controlbot.ratelimit import REPEAT
from protocol.errors import BotrunnerError, ErrorCode

log = logging.getLogger(__name__)
router = Router(name="errors")

CALLBACK_ALERT_MAX = 200


class Refusal(BotrunnerError):
    """Bad input caught by the control bot itself; its message is already localised HTML."""

    code = ErrorCode.INVALID_INPUT


def describe(exc: BotrunnerError) -> str:
    """A localised HTML sentence for an error, ending with its code. A URL's credentials never show."""
    code_line = f"\n<code>{exc.code.value}</code>"
    if exc.code == ErrorCode.BUILD_FAILED and exc.detail and not isinstance(exc, Refusal):
        return build_failure(exc, limit=MAX_TEXT - tg_len(code_line)) + code_line
    text = exc.message if isinstance(exc, Refusal) else _runner_sentence(exc)
    return mask_credentials(f"❌ {text}") + code_line


def build_failure(exc: BotrunnerError, limit: int = MAX_TEXT) -> str:
    """The failed build's sentence, then the last lines of its log in <pre>, within `limit`."""
    header = "❌ " + _("The build failed: {msg}").format(msg=escape(mask_credentials(exc.message)))
    header += "\n" + _("Fix what the build log shows and deploy again. Its last lines:")
    return log_block(header, clean_log(exc.detail or ""), limit=limit)


def mb(nbytes: int) -> str:
    """Megabytes, rounded up, so a file just over the limit never reads as equal to it."""
    value = nbytes / (1024 * 1024)
    return f"{value:.0f}" if value == int(value) else f"{math.ceil(value * 10) / 10:.1f}"


def _source_sentence(exc: BotrunnerError) -> str | None:
    """The upload refusals the gateway words by reason, in the user's language."""
    p = exc.params
    if p.reason == "kind":
        return _(
            "<b>{file}</b> is not a Python file. Send a single .py file, or a bot package as a .zip."
        ).format(file=escape(p.path or _("This file")))
    if p.reason == "too_large" and p.max_bytes is not None:
        return _("The file is too big ({size} MB): the limit is {limit} MB.").format(
            size=mb(p.size_bytes or 0), limit=mb(p.max_bytes)
        )
    if p.reason == "not_zip":
        return _("This file is not a .zip archive. Zip the bot's folder and send it again.")
    if p.reason == "binary":
        return _("This file is binary, not Python source text. Send a .py file.")
    if p.reason == "download":
        return _("Could not download the file; send it again.")
    return None


def _env_sentence(exc: BotrunnerError) -> str | None:
    p = exc.params
    if p.reason == "own_token" and p.key:
        return _(
            "The value of <code>{key}</code> is this control bot's own token. Create a separate bot "
            "with @BotFather and use its token; nothing was changed."
        ).format(key=escape(p.key))
    if p.limit is not None:
        return _("Too many variables: at most {limit} per bot.").format(limit=p.limit)
    if p.max_bytes is not None and p.key:
        return _("The value of <code>{key}</code> is too long: at most {limit} KB.").format(
            key=escape(p.key), limit=p.max_bytes // 1024
        )
    if p.max_bytes is not None:
        return _("The variables take {size} KB, over the limit of {limit} KB per bot.").format(
            size=math.ceil((p.size_bytes or 0) / 1024), limit=p.max_bytes // 1024
        )
    return None


def _token_sentence(exc: BotrunnerError) -> str | None:
    key = escape(exc.params.key or "?")
    if exc.code == ErrorCode.TOKEN_INVALID:
        return _(
            "Telegram rejects the token in <code>{key}</code>: it is wrong or was revoked. Get a new one "
            "from @BotFather; nothing was deployed."
        ).format(key=key)
    if exc.params.path:
        return _(
            "The token in <code>{key}</code> already runs your bot <b>{bot}</b>. One token can have only "
            "one poller (Telegram answers 409 Conflict): use another token, or stop that bot."
        ).format(key=key, bot=escape(exc.params.path))
    return _(
        "The token in <code>{key}</code> already runs another hosted bot. One token can have only one "
        "poller (Telegram answers 409 Conflict): use another token."
    ).format(key=key)


def _runner_sentence(exc: BotrunnerError) -> str:
    name = escape(exc.bot or "?")
    msg = escape(exc.message)
    code = exc.code
    if code == ErrorCode.QUOTA_EXCEEDED:
        if exc.params.reason == "source_bytes" and exc.params.max_bytes is not None:
            return _(
                "Your stored code would exceed {limit} (every bot's code and its kept releases count). "
                "Delete a bot with /delete, or send smaller code."
            ).format(limit=size(exc.params.max_bytes))
        if exc.params.limit is not None:
            return _(
                "Quota reached: at most {limit} bots per user. Delete one with /delete to free a slot."
            ).format(limit=exc.params.limit)
        return _("Quota reached. Delete a bot with /delete to free a slot.")
    if code == ErrorCode.RATE_LIMITED:
        return _(
            "🐢 Slow down, please: at most {limit} changes per minute. "
            "Try again in {seconds} s; /status and /logs still work meanwhile."
        ).format(limit=exc.params.limit or 0, seconds=exc.params.seconds or 60)
    if code == ErrorCode.NOT_FOUND:
        return _("No bot named <b>{name}</b>. /list shows your bots.").format(name=name)
    if code == ErrorCode.ALREADY_EXISTS:
        return _(
            "A bot named <b>{name}</b> already exists, so nothing was changed. To replace its code, "
            "send the file with the caption <code>/update {name}</code>."
        ).format(name=name)
    special = {
        ErrorCode.INVALID_SOURCE: _source_sentence,
        ErrorCode.INVALID_ENV: _env_sentence,
        ErrorCode.TOKEN_INVALID: _token_sentence,
        ErrorCode.TOKEN_IN_USE: _token_sentence,
    }.get(code)
    if special is not None and (sentence := special(exc)) is not None:
        return sentence
    simple = {
        ErrorCode.BUILD_FAILED: _("The build failed: {msg}"),
        ErrorCode.INVALID_NAME: _("Invalid bot name: {msg}"),
        ErrorCode.INVALID_SOURCE: _("The source was refused: {msg}"),
        ErrorCode.INVALID_ENV: _("Invalid environment variables: {msg}"),
        ErrorCode.INVALID_INPUT: _("Invalid input: {msg}"),
        ErrorCode.GIT_REFUSED: _("That git URL is refused: {msg}"),
        ErrorCode.GIT_FAILED: _("Git failed: {msg}"),
        ErrorCode.DOCKER_UNAVAILABLE: _("Docker is unavailable on the runner host. Try again in a minute."),
        ErrorCode.RUNNER_UNAVAILABLE: _(
            "⚠️ The runner is unavailable right now, so nothing was done. Try again in a minute."
        ),
        ErrorCode.STORE_UNAVAILABLE: _(
            "⚠️ The store (Redis) is unavailable right now, so nothing was done. Try again in a minute."
        ),
        ErrorCode.EXPIRED: _("The request waited too long and was dropped; nothing was done. Try again."),
        ErrorCode.TIMEOUT: _("The runner did not answer in time. Check /status {name} shortly."),
        ErrorCode.FORBIDDEN: _("You are not allowed to do that."),
        ErrorCode.DOCKERFILE_NOT_ALLOWED: _("The Dockerfile was refused: {msg}"),
        ErrorCode.INVALID_STATE: _("Not possible in the bot's current state: {msg}"),
    }
    template = simple.get(
        code, _("Something went wrong on the runner. Try again; if it keeps happening, tell an admin.")
    )
    return template.format(msg=msg, name=name)


def _event_user(event: ErrorEvent) -> User | None:
    update = event.update
    if update.message is not None:
        return update.message.from_user
    if update.callback_query is not None:
        return update.callback_query.from_user
    return None


async def _reply(event: ErrorEvent, bot: Bot, text: str) -> None:
    update = event.update
    try:
        if update.callback_query is not None:
            query = update.callback_query
            plain = unescape(re.sub(r"<[^>]+>", "", text))
            if len(plain) <= CALLBACK_ALERT_MAX:
                await query.answer(plain, show_alert=True)
                return
            await query.answer()
            await bot.send_message(query.from_user.id, text)
        elif update.message is not None:
            await update.message.answer(text)
    except TelegramAPIError:
        log.warning("could not deliver an error message", exc_info=True)


@router.errors(ExceptionTypeFilter(BotrunnerError))
async def on_botrunner_error(event: ErrorEvent, bot: Bot, i18n: I18n) -> None:
    exc = event.exception
    assert isinstance(exc, BotrunnerError)
    user = _event_user(event)
    if exc.code is ErrorCode.RATE_LIMITED and exc.params.reason == REPEAT:
        # Told once this minute already: one "slow down" per minute, not one per command.
        if event.update.callback_query is not None:
            await event.update.callback_query.answer()
        return
    log.info(
        "answered %s to user=%s: %s", exc.code.value, user.id if user else None, mask_credentials(exc.message)
    )
    with i18n.context(), i18n.use_locale(pick_locale(user.language_code if user else None)):
        await _reply(event, bot, describe(exc))


@router.errors()
async def on_unexpected_error(event: ErrorEvent, bot: Bot, i18n: I18n) -> None:
    user = _event_user(event)
    log.error("unhandled error for user=%s", user.id if user else None, exc_info=event.exception)
    with i18n.context(), i18n.use_locale(pick_locale(user.language_code if user else None)):
        text = "❌ " + _("Something went wrong on our side. Try again; if it keeps happening, tell an admin.")
        await _reply(event, bot, text + f"\n<code>{ErrorCode.INTERNAL.value}</code>")
