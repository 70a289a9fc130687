"""Cards, masks and log blocks: escaped, and within Telegram's limits."""

from __future__ import annotations

import html.parser
import re
import time
from collections.abc import Iterator

import pytest

from controlbot import formatting
from controlbot.i18n import create_i18n
from protocol.models import BotState, BotStatus, Desired, Limits, SourceInfo, SourceKind

pytestmark = pytest.mark.unit

ENTITY = re.compile(r"&(amp|lt|gt|quot|#x27);")


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("en"):
        yield


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text += data

    def handle_entityref(self, name: str) -> None:
        assert name in {"amp", "lt", "gt", "quot"}, name

    def handle_charref(self, name: str) -> None:
        assert name in {"x27", "39"}, name


def assert_valid_html(text: str) -> None:
    parser = _Tags()
    parser.feed(text)
    parser.close()
    assert parser.stack == []
    # Every '&' starts a whole entity: nothing was cut in the middle of one.
    assert all(ENTITY.match(text, m.start()) for m in re.finditer("&", text))


def status(**kw: object) -> BotStatus:
    base: dict[str, object] = {
        "owner": 42,
        "name": "echo",
        "state": BotState.RUNNING,
        "desired": Desired.RUNNING,
        "uptime_seconds": 3725,
        "limits": Limits(memory_bytes=256 * 1024 * 1024, cpu=0.5, pids=128),
        "source": SourceInfo(kind=SourceKind.FILE, filename="echo_bot.py", sha256="ab" * 32),
        "env_masked": {"BOT_TOKEN": "12…xy", "GREETING": "••••"},
        "memory_bytes": 30 * 1024 * 1024,
        "cpu_percent": 1.5,
        "created_at": time.time(),
        "updated_at": time.time(),
    }
    base.update(kw)
    return BotStatus.model_validate(base)


def test_log_block_short_is_whole() -> None:
    text = formatting.log_block("<b>h</b>", "line 1\nline <2> & 3\n")
    assert text == "<b>h</b>\n<pre>line 1\nline &lt;2&gt; &amp; 3</pre>"
    assert_valid_html(text)


@pytest.mark.parametrize("filler", ["a", "&", "<>", "я", "💥", "&<a>&"])
def test_log_block_trims_from_the_top_to_fit(filler: str) -> None:
    lines = [f"{i:05d} " + filler * (i % 97) for i in range(3000)]
    text = formatting.log_block("📜 <b>echo</b>", "\n".join(lines))
    assert formatting.tg_len(text) <= formatting.MAX_TEXT
    assert_valid_html(text)
    assert text.rstrip("</pre>").endswith(formatting.escape(lines[-1])[-20:])
    assert "…\n" in text and "00000 " not in text  # the oldest lines went first


def test_log_block_keeps_the_end_of_one_giant_line() -> None:
    giant = "start" + "&" * 10_000 + "END"
    text = formatting.log_block("h", giant)
    assert formatting.tg_len(text) <= formatting.MAX_TEXT
    assert_valid_html(text)
    assert text.endswith("END</pre>") and "start" not in text


def test_log_block_empty() -> None:
    text = formatting.log_block("h", "")
    assert "no output yet" in text
    assert_valid_html(text)


def test_card_shows_state_uptime_limits_source_and_masked_env() -> None:
    text = formatting.card(status(), viewer=42)
    assert_valid_html(text)
    assert text.startswith("🟢 <b>echo</b> — running")
    assert "1h 2m" in text and "256 MB" in text and "50%" in text
    assert "echo_bot.py" in text and "abababab" in text
    assert "BOT_TOKEN" in text and "12…xy" in text


def test_card_for_an_admin_names_the_owner_and_shows_oom() -> None:
    text = formatting.card(status(state=BotState.CRASHED, exit_code=137, oom_killed=True), viewer=1)
    assert "<b>42/echo</b>" in text and text.startswith("💥")
    assert "killed: out of memory (limit 256 MB)" in text


def test_state_icons() -> None:
    assert formatting.STATE_ICONS[BotState.RUNNING] == "🟢"
    assert formatting.STATE_ICONS[BotState.STOPPED] == "🔴"
    assert formatting.STATE_ICONS[BotState.CRASHED] == "💥"
    assert formatting.STATE_ICONS[BotState.RESTARTING] == "🟡"


def test_card_in_russian() -> None:
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("ru"):
        text = formatting.card(status(state=BotState.CRASHED, exit_code=1), viewer=42)
    assert "упал" in text and "код выхода 1" in text


def test_a_stop_by_the_owner_shows_no_exit_code() -> None:
    text = formatting.card(status(state=BotState.STOPPED, exit_code=143), viewer=42)
    assert "🔴" in text and "143" not in text


@pytest.mark.parametrize("value", ["123456789:ABCDEFGHIJKLMNOPQRSTUVWXYZ", "secret-value", "short", ""])
def test_mask_never_shows_the_whole_value(value: str) -> None:
    masked = formatting.mask(value)
    assert masked != value or value == ""
    if len(value) > 4:
        assert value not in masked and value[2:-2] not in masked


def test_join_fitting_counts_what_is_left_out() -> None:
    lines = [f"🟢 <b>bot-{i}</b> — running" for i in range(500)]
    text = formatting.join_fitting(lines)
    assert formatting.tg_len(text) <= formatting.MAX_TEXT
    assert text.endswith("more") and "bot-0<" in text


def test_duration() -> None:
    assert formatting.duration(5) == "5s"
    assert formatting.duration(65) == "1m 5s"
    assert formatting.duration(3 * 86400 + 7200) == "3d 2h"
    assert formatting.duration(None) == "—"


def test_truncate_keeps_the_end() -> None:
    text = formatting.truncate("x" * 5000 + "END")
    assert formatting.tg_len(text) <= formatting.MAX_TEXT and text.endswith("END")
