"""Parameters of Bot API calls: numbers, flags, JSON fields, inline keyboards and parse_mode=HTML."""

from __future__ import annotations

import contextlib
import html.parser
import json
from typing import Any

from tests.fakes.telegram.models import JSON, MAX_CALLBACK_DATA, ApiError, _bad

_HTML_ENTITY = {
    **dict.fromkeys(["b", "strong"], "bold"),
    **dict.fromkeys(["i", "em"], "italic"),
    **dict.fromkeys(["u", "ins"], "underline"),
    **dict.fromkeys(["s", "strike", "del"], "strikethrough"),
    **dict.fromkeys(["span", "tg-spoiler"], "spoiler"),
    **{
        "a": "text_link",
        "code": "code",
        "pre": "pre",
        "blockquote": "blockquote",
        "tg-emoji": "custom_emoji",
    },
}


class _HtmlParser(html.parser.HTMLParser):
    """Telegram's parse_mode=HTML: plain text plus entities, and its errors for bad markup."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source, self.text = source, ""
        self.entities: list[JSON] = []
        self.open: list[tuple[str, int, JSON]] = []

    def _fail(self, what: str) -> ApiError:
        line, col = self.getpos()
        offset = len("".join(self.source.splitlines(keepends=True)[: line - 1]).encode()) + col
        return _bad(f"can't parse entities: {what} at byte offset {offset}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HTML_ENTITY:
            raise self._fail(f'Unsupported start tag "{tag}"')
        entity: JSON = {"type": _HTML_ENTITY[tag]}
        attr = {k: v or "" for k, v in attrs}
        if tag == "a":
            entity["url"] = attr.get("href", "")
        elif tag == "code" and self.open and self.open[-1][0] == "pre":
            entity = {"type": ""}  # <pre><code class="language-x"> is one pre entity
            if attr.get("class", "").startswith("language-"):
                self.open[-1][2]["language"] = attr["class"].removeprefix("language-")
        self.open.append((tag, _utf16(self.text), entity))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise self._fail(f'Unsupported start tag "{tag}"')

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1][0] != tag:
            expected = f'"</{self.open[-1][0]}>"' if self.open else "nothing"
            raise self._fail(f'Unmatched end tag, expected {expected}, found "</{tag}>"')
        _, start, entity = self.open.pop()
        if entity["type"] and _utf16(self.text) > start:
            self.entities.append({**entity, "offset": start, "length": _utf16(self.text) - start})

    def handle_data(self, data: str) -> None:
        self.text += data

    def parse(self) -> tuple[str, list[JSON]]:
        self.feed(self.source)
        self.close()
        if self.open:
            raise _bad(
                f"can't parse entities: Can't find end tag corresponding to start tag \"{self.open[-1][0]}\""
            )
        return self.text, sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _int(p: JSON, key: str, default: int | None = None) -> int:
    value = p.get(key)
    if value in (None, ""):
        if default is None:
            raise _bad(f"{key} is empty")
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _bad(f"invalid {key} specified") from None


def _flag(p: JSON, key: str) -> bool:
    return p.get(key) in (True, "true", "True", "1", 1)


def _json(value: Any) -> Any:
    """aiogram sends nested objects as JSON strings inside form fields."""
    if isinstance(value, str) and value[:1] in "[{":
        with contextlib.suppress(ValueError):
            return json.loads(value)
    return value


def _markup(p: JSON) -> JSON | None:
    markup = _json(p.get("reply_markup"))
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise _bad("can't parse reply keyboard markup JSON object")
    for button in (b for row in markup.get("inline_keyboard", []) for b in row):
        data = button.get("callback_data")
        if "text" not in button or (
            data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA
        ):
            raise _bad("BUTTON_DATA_INVALID")
        web_app = button.get("web_app")
        if web_app is not None and not str(web_app.get("url", "")).startswith("https://"):
            raise _bad("inline keyboard button Web App URL is invalid: Only HTTPS links are allowed")
    return dict(markup)


def _render(p: JSON, key: str, limit: int, too_long: str) -> tuple[str | None, list[JSON]]:
    raw = p.get(key)
    if raw is None:
        return None, []
    mode = str(p.get("parse_mode") or "").lower()
    if mode == "html":
        text, entities = _HtmlParser(str(raw)).parse()
    else:  # Markdown modes pass through unparsed; explicit entities are kept as sent
        text, entities = (
            str(raw),
            list(_json(p.get(f"{key}_entities" if key == "caption" else "entities")) or []),
        )
    if len(text) > limit:
        raise _bad(too_long)
    return text, entities
