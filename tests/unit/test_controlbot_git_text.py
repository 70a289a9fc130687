"""What chat shows of git deploys: masked URLs, the commit on the card, notices, failed builds, /help."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from controlbot import formatting, notices
from controlbot.errors import Refusal, describe
from controlbot.gateway import Caller
from controlbot.handlers.start import help_text
from controlbot.i18n import create_i18n
from controlbot.progress import stage_label
from protocol.errors import BotrunnerError, ErrorCode
from protocol.models import (
    BotState,
    BotStatus,
    Desired,
    Limits,
    Note,
    NoteKind,
    SourceInfo,
    SourceKind,
    Stage,
)
from tests.unit.test_controlbot_formatting import assert_valid_html

pytestmark = pytest.mark.unit

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("en"):
        yield


def git_status(**source: object) -> BotStatus:
    info: dict[str, object] = {
        "kind": SourceKind.GIT,
        "git_url": "https://example.com/you/bot.git",
        "branch": "main",
        "commit": SHA,
        "commit_subject": "Fix the <greeting> & more",
        "entrypoint": "main.py",
        "dependencies": ["tomli==2.0.1"],
    }
    info.update(source)
    return BotStatus(
        owner=42,
        name="gitbot",
        state=BotState.RUNNING,
        desired=Desired.RUNNING,
        limits=Limits(memory_bytes=256 * 1024 * 1024, cpu=0.5, pids=128),
        source=SourceInfo.model_validate(info),
        created_at=time.time(),
        updated_at=time.time(),
    )


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("https://alice:s3cret@host/r.git", "https://***@host/r.git"),
        ("https://ghp_token@host/r.git", "https://***@host/r.git"),
        ("see http://a:b@x/y and git://c@z/w", "see http://***@x/y and git://***@z/w"),
        ("https://host/r.git", "https://host/r.git"),
        ("mail me at a@b.c", "mail me at a@b.c"),
    ],
)
def test_mask_credentials(text: str, masked: str) -> None:
    assert formatting.mask_credentials(text) == masked
    assert formatting.has_credentials(text) == (text != masked)


def test_card_shows_repository_branch_short_sha_and_subject() -> None:
    text = formatting.card(git_status(), viewer=42)
    assert_valid_html(text)
    assert "Source: https://example.com/you/bot.git (main)" in text
    assert f"Commit: <code>{SHA[:7]}</code> Fix the &lt;greeting&gt; &amp; more" in text
    assert "Entry point: <code>main.py</code>" in text and "Dependencies: 1" in text


def test_card_never_shows_credentials_and_trims_long_subjects() -> None:
    status = git_status(git_url="https://alice:s3cret@example.com/r.git", commit_subject="x" * 300)
    text = formatting.card(status, viewer=42)
    assert "s3cret" not in text and "alice" not in text
    assert "x" * 79 + "…" in text and "x" * 81 not in text


def test_card_of_a_zip_bot() -> None:
    status = git_status(kind=SourceKind.ZIP, git_url=None, filename="pkg.zip", sha256="cd" * 32, commit=None)
    text = formatting.card(status, viewer=42)
    assert "Source: pkg.zip · sha <code>cdcdcdcd</code>" in text and "Entry point" in text


ENTRY = Note(kind=NoteKind.ENTRYPOINT, path="main.py")


@pytest.mark.parametrize(
    ("notes", "shown"),
    [
        ([ENTRY], "ℹ️ entry point: <code>main.py</code>"),
        (
            [Note(kind=NoteKind.ENTRYPOINT, path="<b>.py"), Note(kind=NoteKind.DEPS_CACHED, count=2)],
            "ℹ️ entry point: <code>&lt;b&gt;.py</code>; dependencies: cached (2)",
        ),
        ([Note(kind=NoteKind.DOCKERFILE_CACHED)], "ℹ️ built from its Dockerfile (cached)"),
        (
            [ENTRY, Note(kind=NoteKind.WEBHOOK_SET, key="BOT<TOKEN")],
            "ℹ️ entry point: <code>main.py</code>\n⚠️ A webhook is set on the token in "
            "<code>BOT&lt;TOKEN</code>, so a polling bot gets no updates. Remove it with the button below.",
        ),
        ([], ""),
    ],
)
def test_notes(notes: list[Note], shown: str) -> None:
    assert notices.localise(notes) == shown


def test_notes_in_russian() -> None:
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("ru"):
        text = notices.localise([ENTRY, Note(kind=NoteKind.DEPS_INSTALLED, count=1)])
    assert "main.py" in text and "entry point" not in text


def test_every_note_kind_has_words_in_english_and_in_chat() -> None:
    for kind in NoteKind:
        note = Note(kind=kind, path="p", count=1, key="K")
        assert note.english() and notices.localise([note])


def test_a_failed_build_shows_the_log_tail_within_the_limit() -> None:
    log = "\n".join(f"step {i}: <pip> & https://u:p@mirror/simple \x1b[91mERROR\x1b[0m" for i in range(2000))
    err = BotrunnerError("the image build failed; see the build log", code=ErrorCode.BUILD_FAILED, detail=log)
    text = describe(err)
    assert formatting.tg_len(text) <= formatting.MAX_TEXT
    assert_valid_html(text)
    assert text.startswith("❌ The build failed: the image build failed; see the build log")
    assert "<pre>" in text and "step 1999: &lt;pip&gt; &amp;" in text and "\x1b" not in text
    assert "u:p@" not in text and "***@mirror" in text
    assert text.endswith("<code>BUILD_FAILED</code>")


def test_runner_errors_never_echo_credentials() -> None:
    err = BotrunnerError("git could not fetch https://alice:pw@host/r.git", code=ErrorCode.GIT_FAILED)
    assert "pw@" not in describe(err) and "***@host" in describe(err)
    refusal = Refusal("bad <code>https://alice:pw@host</code>")
    assert "pw@" not in describe(refusal)


def test_progress_starts_at_cloning() -> None:
    assert stage_label(Stage.CLONING) == "⏳ cloning"
    assert stage_label(Stage.INSTALLING) == "📦 installing dependencies"


@pytest.mark.parametrize("locale", ["en", "ru"])
def test_help_mentions_git_and_zip_and_fits(locale: str) -> None:
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale(locale):
        text = help_text(Caller(id=1, admin=True))
    assert "--git" in text and ".zip" in text and "--branch" in text
    assert formatting.tg_len(text) <= formatting.MAX_TEXT
    assert_valid_html(text)
