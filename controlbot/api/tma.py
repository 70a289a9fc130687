"""Telegram Mini App auth: `Authorization: tma <initData>`, validated as Telegram specifies.

https://core.telegram.org/bots/webapps#validating-data-received-via-the-mini-app
secret = HMAC_SHA256(key="WebAppData", msg=bot_token); the hash is HMAC_SHA256(key=secret) over
the sorted `key=value` lines (every field but `hash`, values URL-decoded) joined by "\\n".

Kept apart from the routes so the API's front door (a dependency today, an ASGI middleware
tomorrow) calls one small function: `caller_from_authorization`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from controlbot.gateway import Caller, Channel
from controlbot.settings import Settings
from protocol.errors import BotrunnerError, ErrorCode

log = logging.getLogger(__name__)

SCHEME = "tma"
# Telegram's initData is a few hundred bytes; anything far larger is not one.
MAX_INIT_DATA = 8192
LOCALES = ("en", "ru")


@dataclass(frozen=True)
class WebAppUser:
    """The user a valid initData vouches for."""

    id: int
    language_code: str | None
    auth_date: int


def _unauthorized(why: str) -> BotrunnerError:
    return BotrunnerError(
        f"invalid Mini App initData ({why}): reopen the dashboard from the bot", code=ErrorCode.UNAUTHORIZED
    )


def sign(fields: dict[str, str], bot_token: str) -> str:
    """The hash Telegram puts in initData for these fields (everything but `hash`)."""
    secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()) if k != "hash")
    return hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()


def validate(init_data: str, bot_token: str, *, max_age: float, now: float | None = None) -> WebAppUser:
    """The user behind initData signed with bot_token and not older than max_age; else UNAUTHORIZED."""
    if not init_data or len(init_data) > MAX_INIT_DATA:
        raise _unauthorized("empty or too long")
    pairs = parse_qsl(init_data, keep_blank_values=True, strict_parsing=False)
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise _unauthorized("a field is repeated")  # which copy was signed would be ambiguous
    given = fields.get("hash", "")
    # compare_digest on str needs ASCII; a non-hex hash is simply wrong.
    if not given.isascii() or not hmac.compare_digest(sign(fields, bot_token), given.lower()):
        raise _unauthorized("bad signature")
    try:
        auth_date = int(fields["auth_date"])
        user = json.loads(fields["user"])
        user_id = int(user["id"])
    except (KeyError, ValueError, TypeError) as e:
        raise _unauthorized("no user or auth_date") from e
    age = (time.time() if now is None else now) - auth_date
    if age > max_age:
        raise _unauthorized("expired")
    lang = user.get("language_code")
    return WebAppUser(id=user_id, language_code=lang if isinstance(lang, str) else None, auth_date=auth_date)


def locale_of(language_code: str | None) -> str:
    lang = (language_code or "").split("-")[0].lower()
    return lang if lang in LOCALES else "en"


def caller_from_authorization(authorization: str | None, settings: Settings) -> Caller | None:
    """The caller behind an `Authorization: tma ...` header; None for any other scheme.

    Raises UNAUTHORIZED for bad initData and FORBIDDEN for a user who may not host bots,
    exactly as a bearer token's owner is judged.
    """
    scheme, _, value = (authorization or "").strip().partition(" ")
    if scheme.lower() != SCHEME:
        return None
    user = validate(value.strip(), settings.bot_token, max_age=settings.webapp_auth_max_age)
    if not settings.is_allowed(user.id):
        raise BotrunnerError(
            f"user {user.id} may not host bots here; ask an admin to add you", code=ErrorCode.FORBIDDEN
        )
    return Caller(
        id=user.id,
        admin=settings.is_admin(user.id),
        locale=locale_of(user.language_code),
        channel=Channel.WEBAPP,
    )


def authenticator(settings: Settings) -> Callable[[str], Awaitable[int | None]]:
    """The `tma` scheme for the API's front door (controlbot/api/guard.py): the user id behind valid
    initData, None otherwise. Checked from the header alone, before any body is read."""

    async def auth(init_data: str) -> int | None:
        try:
            return validate(init_data, settings.bot_token, max_age=settings.webapp_auth_max_age).id
        except BotrunnerError:
            return None

    return auth
