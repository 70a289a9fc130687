"""The shipped catalogs: both load, Russian is complete, and the .mo files match their .po."""

from __future__ import annotations

import gettext
import io
import re

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from controlbot.i18n import LOCALES, LOCALES_DIR, create_i18n, pick_locale

pytestmark = pytest.mark.unit

PLACEHOLDER = re.compile(r"\{[a-z_]*(?::[^}]*)?\}")
TAG = re.compile(r"</?[a-z]+>")


def test_catalogs_load_for_en_and_ru() -> None:
    i18n = create_i18n()
    assert set(i18n.available_locales) >= {"en", "ru"}
    assert i18n.gettext("running", locale="ru") == "работает"
    assert i18n.gettext("running", locale="en") == "running"
    assert i18n.gettext("running", locale="de") == "running"  # English is the fallback


@pytest.mark.parametrize(
    ("code", "locale"),
    [("ru", "ru"), ("ru-RU", "ru"), ("en-US", "en"), ("de", "en"), (None, "en"), ("", "en")],
)
def test_pick_locale(code: str | None, locale: str) -> None:
    assert pick_locale(code) == locale


def _catalog(locale: str) -> Catalog:
    with (LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=locale)


def test_russian_is_complete_and_keeps_placeholders_and_tags() -> None:
    for message in _catalog("ru"):
        if not message.id:
            continue
        assert message.string, f"untranslated: {message.id!r}"
        assert not message.fuzzy, f"fuzzy: {message.id!r}"
        assert sorted(PLACEHOLDER.findall(message.id)) == sorted(PLACEHOLDER.findall(message.string)), (
            message.id
        )
        assert sorted(TAG.findall(message.id)) == sorted(TAG.findall(message.string)), message.id


@pytest.mark.parametrize("locale", LOCALES)
def test_compiled_catalogs_are_up_to_date(locale: str) -> None:
    """A fresh install uses the committed .mo: it must say what the .po says."""
    buf = io.BytesIO()
    write_mo(buf, _catalog(locale))
    buf.seek(0)
    expected = gettext.GNUTranslations(buf)
    with (LOCALES_DIR / locale / "LC_MESSAGES" / "messages.mo").open("rb") as f:
        shipped = gettext.GNUTranslations(f)
    for message in _catalog(locale):
        if message.id:
            assert shipped.gettext(message.id) == expected.gettext(message.id), message.id


def test_every_source_string_is_in_the_catalog() -> None:
    """Strings added to the code without re-running scripts/update-locales.sh would go untranslated."""
    from babel.messages.extract import extract_from_dir

    ids = {m.id for m in _catalog("ru") if m.id}
    root = LOCALES_DIR.parent
    found = {
        msg[2]
        for msg in extract_from_dir(str(root), keywords={"_": None, "__": None})
        if isinstance(msg[2], str)
    }
    assert found - ids == set(), "run scripts/update-locales.sh and translate the new entries"
