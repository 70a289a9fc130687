"""Backups of /data through the chat (and the API and CLI): the archive comes as a document, a
restore replaces /data and can be undone once, a hostile archive changes nothing, daily backups
are kept and listed."""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Callable

import pytest

from tests.fixtures.controlbot import Chat, deploy

pytestmark = pytest.mark.e2e

# Writes /data/notes.txt the first time, then says what /data holds at every start.
NOTES_BOT = (
    b"import os, pathlib, time\n"
    b"p = pathlib.Path(os.environ['DATA_DIR']) / 'notes.txt'\n"
    b"if not p.exists():\n"
    b"    p.write_text('first notes')\n"
    b"print('notes:', p.read_text(), flush=True)\n"
    b"while True:\n"
    b"    time.sleep(1)\n"
)


def targz(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for path, target in (links or {}).items():
            info = tarfile.TarInfo(path)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        out = {}
        for m in tar.getmembers():
            f = tar.extractfile(m) if m.isfile() else None
            if f is not None:
                out[m.name.removeprefix("./")] = f.read()
        return out


def test_backup_restore_and_undo(chat_user: Callable[..., Chat], unique_name: Callable[[str], str]) -> None:
    chat = chat_user()
    name = unique_name("notes")
    deploy(chat, name, NOTES_BOT)
    chat.logs_until(name, "notes: first notes")

    mark = chat.mark()
    chat.send(f"/backup {name}")
    doc = chat.wait(lambda m: m.document is not None, after=mark, timeout=60)
    assert doc.document is not None and doc.document.file_name.startswith(f"{name}-data-")
    assert doc.document.file_name.endswith(".tar.gz")
    assert members(doc.document.data)["notes.txt"] == b"first notes"

    mark = chat.mark()
    chat.send_file("new.tar.gz", targz({"notes.txt": b"restored notes"}), f"/restore {name}")
    chat.wait("is restored", after=mark, timeout=90)
    chat.logs_until(name, "notes: restored notes")

    mark = chat.mark()
    chat.send(f"/restore {name} undo")
    chat.wait("is back as it was", after=mark, timeout=90)
    chat.logs_until(name, "notes: first notes")
    mark = chat.mark()
    chat.send(f"/restore {name} undo")  # once only
    assert "❌" in (chat.wait(after=mark, timeout=60).text or "")


@pytest.mark.parametrize(
    "archive",
    [
        targz({"../escaped.txt": b"x"}),
        targz({"/etc/evil": b"x"}),
        targz({"ok.txt": b"x"}, links={"link": "/etc/passwd"}),
        b"not a tar.gz at all",
    ],
)
def test_a_hostile_archive_changes_nothing(
    chat_user: Callable[..., Chat], unique_name: Callable[[str], str], archive: bytes
) -> None:
    chat = chat_user()
    name = unique_name("safe")
    deploy(chat, name, NOTES_BOT)
    chat.logs_until(name, "notes: first notes")
    mark = chat.mark()
    chat.send_file("evil.tar.gz", archive, f"/restore {name}")
    assert "❌" in (chat.wait(after=mark, timeout=60).text or "")
    mark = chat.mark()
    chat.send(f"/backup {name}")
    doc = chat.wait(lambda m: m.document is not None, after=mark, timeout=60)
    assert doc.document is not None and members(doc.document.data) == {"notes.txt": b"first notes"}


def test_daily_backups_are_kept_and_listed(
    chat_user: Callable[..., Chat], unique_name: Callable[[str], str]
) -> None:
    chat = chat_user()
    name = unique_name("daily")
    deploy(chat, name, NOTES_BOT)
    mark = chat.mark()
    chat.send(f"/backup {name} daily")
    chat.wait("is backed up daily", after=mark)
    deadline_text = f"{name}-data-"
    for _ in range(30):
        mark = chat.mark()
        chat.send(f"/backup {name} list")
        reply = chat.wait("backups", after=mark)
        if deadline_text in (reply.text or ""):
            break
        time.sleep(1)
    assert deadline_text in (reply.text or "")
