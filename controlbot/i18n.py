"""Localisation: aiogram's gettext I18n over the catalogs shipped in `controlbot/locales`.

English is the source language and the fallback; Russian is picked for `ru` users.
"""

from __future__ import annotations

from pathlib import Path

from aiogram.utils.i18n import I18n

LOCALES_DIR = Path(__file__).parent / "locales"
DOMAIN = "messages"
DEFAULT_LOCALE = "en"
LOCALES = ("en", "ru")


def create_i18n() -> I18n:
    return I18n(path=LOCALES_DIR, default_locale=DEFAULT_LOCALE, domain=DOMAIN)


def pick_locale(language_code: str | None) -> str:
    """Telegram's language code ("ru", "ru-RU", "en-US" ...) to one of our catalogs."""
    if not language_code:
        return DEFAULT_LOCALE
    lang = language_code.replace("_", "-").split("-", 1)[0].lower()
    return lang if lang in LOCALES else DEFAULT_LOCALE
