"""Which runner events become crash alerts, and what an alert says."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controlbot import formatting
from controlbot.alerts import LoopFilter, alert_text, should_alert
from controlbot.i18n import create_i18n
from protocol.models import Event, EventType

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("en"):
        yield


def crash(**kw: object) -> Event:
    return Event.model_validate({"type": EventType.CRASHED, "owner": 1, "name": "echo", "exit_code": 1, **kw})


def test_only_news_worthy_crashes_alert() -> None:
    assert should_alert(crash(alert=True))
    assert should_alert(crash(crash_loop=True))
    assert not should_alert(crash())  # a later crash of the same streak
    assert not should_alert(Event(type=EventType.STOPPED, owner=1, name="echo", exit_code=143, alert=True))
    assert not should_alert(Event(type=EventType.STARTED, owner=1, name="echo"))


def test_a_crash_loop_is_reported_once_per_streak() -> None:
    loops = LoopFilter()
    assert loops.admit(crash(alert=True))
    assert loops.admit(crash(crash_loop=True, restart_count=3))
    assert not loops.admit(crash(crash_loop=True, restart_count=3))
    assert loops.admit(crash(crash_loop=True, name="other"))
    assert loops.admit(crash(alert=True))  # a new streak re-arms it
    assert loops.admit(crash(crash_loop=True))


def test_alert_names_the_bot_the_exit_code_and_the_traceback() -> None:
    text = alert_text(crash(alert=True, log_tail='Traceback:\n  File "x.py"\nValueError: <TEST> & co\n'))
    assert text.startswith("💥 <b>echo</b> crashed: exit code 1")
    assert "<pre>" in text and "ValueError: &lt;TEST&gt; &amp; co" in text


def test_oom_alert_states_the_limit() -> None:
    text = alert_text(crash(alert=True, exit_code=137, oom_killed=True, memory_limit_bytes=256 * 1024 * 1024))
    assert "crashed: killed: out of memory (limit 256 MB)" in text


def test_crash_loop_alert_says_it_stays_down() -> None:
    text = alert_text(crash(crash_loop=True, restart_count=5))
    assert "keeps crashing (5 restarts)" in text


def test_a_huge_traceback_still_fits() -> None:
    text = alert_text(crash(alert=True, log_tail="boom & <bang>\n" * 5000))
    assert formatting.tg_len(text) <= formatting.MAX_TEXT
    assert text.endswith("boom &amp; &lt;bang&gt;</pre>")


def test_alert_in_russian() -> None:
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("ru"):
        text = alert_text(
            crash(alert=True, exit_code=137, oom_killed=True, memory_limit_bytes=256 * 1024 * 1024)
        )
    assert "упал: убит: не хватило памяти (лимит 256 МБ)" in text


def test_disk_limit_alert_says_the_limit_and_the_usage() -> None:
    from controlbot.alerts import alert_text, should_alert
    from controlbot.i18n import create_i18n
    from protocol.models import Event, EventType

    event = Event(
        type=EventType.DISK_LIMIT_EXCEEDED,
        owner=1,
        name="filler",
        disk_limit_bytes=5 << 20,
        disk_used_bytes=12 << 20,
    )
    assert should_alert(event)
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("en"):
        text = alert_text(event)
    assert "filler" in text and "12 MB" in text and "5 MB" in text and "DISK_LIMIT_EXCEEDED" in text
