"""Which release is "previous", which one a rollback picks, and that the new buttons fit 64 bytes."""

from __future__ import annotations

import pytest

from controlbot.callbacks import BotAction, BotCb, ReleaseLogsCb
from protocol.errors import BotrunnerError, ErrorCode
from protocol.models import Op, SourceInfo, SourceKind
from runner.releases import Release, pick, previous


def rel(n: int, failed: bool = False) -> Release:
    return Release(
        number=n,
        op=Op.UPDATE,
        request_id=f"r{n}",
        source=SourceInfo(kind=SourceKind.FILE, filename="bot.py"),
        image="img",
        entrypoint="bot.py",
        tree="t",
        failed=failed,
    )


def test_previous_is_the_newest_earlier_release_that_did_not_fail() -> None:
    releases = [rel(1), rel(2), rel(3, failed=True), rel(4)]
    assert previous(releases, 4) is releases[1]
    assert previous(releases, 1) is None
    assert previous(releases, None) is None
    # After an automatic rollback the current one is older than the failed one.
    assert previous([rel(1), rel(2), rel(3, failed=True)], 2) is not None


@pytest.mark.parametrize(("number", "reason"), [(None, "no_previous"), (1, "current"), (7, "no_release")])
def test_pick_refuses_with_invalid_state(number: int | None, reason: str) -> None:
    with pytest.raises(BotrunnerError) as err:
        pick([rel(1)], 1, number)
    assert err.value.code is ErrorCode.INVALID_STATE and err.value.params.reason == reason


def test_pick_a_named_release_even_a_failed_one() -> None:
    releases = [rel(1), rel(2, failed=True), rel(3)]
    assert pick(releases, 3, 2).number == 2
    assert pick(releases, 3, None).number == 1


def test_info_never_carries_env() -> None:
    r = rel(1).model_copy(update={"env": {"TOKEN": "secret-value"}})
    assert "secret-value" not in r.info(1).model_dump_json()


def test_new_buttons_fit_in_64_bytes() -> None:
    owner, name = 10**15, "a" * 31
    assert len(BotCb(action=BotAction.ROLLBACK, owner=owner, name=name).pack().encode()) <= 64
    assert len(ReleaseLogsCb(owner=owner, name=name, release=10**6).pack().encode()) <= 64
