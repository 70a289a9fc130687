"""The CLI's parsing of what users type, and the shared `since` parser."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import typer

from cli.args import parse_env_changes, parse_env_set, since_param
from cli.logs import drop_overlap
from protocol.errors import BotrunnerError
from protocol.timeparse import format_since, parse_duration, parse_since

pytestmark = pytest.mark.unit

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1w", 604800), ("1h30m", 5400), ("0s", 0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_since(text, now=NOW) == NOW - seconds


@pytest.mark.parametrize("text", ["", "10", "m", "10x", "-5m", "1.5h", "10 m", "h1"])
def test_not_durations(text: str) -> None:
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    "text",
    ["2024-05-01T12:00:00Z", "2024-05-01T14:00:00+02:00", "2024-05-01t12:00:00z", "2024-05-01T12:00:00.000Z"],
)
def test_strict_rfc3339_times(text: str) -> None:
    assert parse_since(text, strict=True) == datetime(2024, 5, 1, 12, tzinfo=UTC).timestamp()


def test_a_leap_second_is_read_as_the_second_before() -> None:
    assert parse_since("2016-12-31T23:59:60Z", strict=True) == parse_since(
        "2016-12-31T23:59:59Z", strict=True
    )


@pytest.mark.parametrize(
    "text",
    ["2024-05-01T12:00:00", "2024-05-01", "yesterday", " 10m", "2024-13-01T00:00:00Z", "20240501T120000Z"],
)
def test_strict_refuses_the_rest(text: str) -> None:
    with pytest.raises(BotrunnerError) as e:
        parse_since(text, strict=True)
    assert (e.value.code.value, e.value.field) == ("INVALID_INPUT", "since")


def test_lenient_takes_any_iso_time_and_reads_zoneless_as_local() -> None:
    naive = datetime(2024, 5, 1, 12)
    assert parse_since("2024-05-01T12:00", naive_is_local=True) == naive.astimezone().timestamp()
    assert parse_since("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC).timestamp()
    assert parse_since(" 10M ", now=NOW) == NOW - 600


def test_since_never_goes_before_the_epoch() -> None:
    assert parse_since("999999999w", now=NOW) == 0.0
    assert parse_since("0001-01-01T00:00:00Z", strict=True) == 0.0


def test_format_since_round_trips_through_the_strict_parser() -> None:
    assert parse_since(format_since(NOW + 0.123456), strict=True) == pytest.approx(NOW + 0.123456)


def test_cli_since_is_sent_in_the_strict_form() -> None:
    sent = since_param("2024-05-01T12:00:00+02:00")
    assert sent == "2024-05-01T10:00:00+00:00"
    assert since_param(None) is None
    with pytest.raises(typer.BadParameter):
        since_param("last tuesday")


def test_env_set_options() -> None:
    assert parse_env_set(["A=1", "B=x=y", "EMPTY=", "A=2"]) == {"A": "2", "B": "x=y", "EMPTY": ""}
    for bad in (["NOVALUE"], ["1A=x"], ["=x"], ["A-B=1"]):
        with pytest.raises(typer.BadParameter):
            parse_env_set(bad)


def test_env_changes_set_and_unset() -> None:
    assert parse_env_changes(["A=1", "-B", "C=", "-A"]) == {"A": None, "B": None, "C": ""}
    assert parse_env_changes(["-X", "X=back"]) == {"X": "back"}
    for bad in ([], ["NOEQ"], ["-1BAD"], ["--"], ["9=x"]):
        with pytest.raises(typer.BadParameter):
            parse_env_changes(bad)


@pytest.mark.parametrize(
    ("seen", "new", "fresh"),
    [
        ([], ["a", "b"], ["a", "b"]),
        (["a", "b", "c"], ["b", "c", "d"], ["d"]),
        (["a", "b", "c"], ["c"], []),
        (["a", "b"], ["x", "y"], ["x", "y"]),
        (["a", "b"], [], []),
        (["x", "tick", "tick"], ["tick", "tick", "tick"], ["tick"]),
        (["1", "2", "3"], ["0", "1", "2", "3", "4"], ["4"]),
        (["2", "3"], ["0", "1", "2", "3"], []),
    ],
)
def test_follow_drops_lines_already_shown(seen: list[str], new: list[str], fresh: list[str]) -> None:
    assert drop_overlap(seen, new) == fresh
