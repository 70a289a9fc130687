"""Backups through the real runner's queue: a restore stops and starts the bot on purpose, so its
owner gets no crash alert; a second undo has nothing to undo."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest

from protocol import archive, keys
from protocol.client import RunnerClient
from protocol.errors import ErrorCode
from protocol.models import Command, EventType, Op
from tests.e2e.test_chat_backups import NOTES_BOT, members, targz
from tests.integration.helpers import call, events_for, eventually, start_bot

pytestmark = pytest.mark.integration


async def test_restore_and_undo_raise_no_crash_alert(
    runner_client: RunnerClient, unique_name: Callable[[str], str]
) -> None:
    owner, name = 10_000_000 + secrets.randbelow(80_000_000), unique_name("restore")
    await start_bot(runner_client, owner, name, NOTES_BOT)

    async def logged(needle: str) -> bool:
        return needle in ((await call(runner_client, Op.LOGS, owner, name, tail=50)).logs or "")

    await eventually(lambda: logged("notes: first notes"), timeout=60)
    cmd = Command(op=Op.RESTORE, owner=owner, name=name)
    await archive.put(runner_client.redis, keys.archive(cmd.request_id), targz({"notes.txt": b"second"}))
    res = await runner_client.call(cmd, timeout=120)
    assert res.ok, res.error
    await eventually(lambda: logged("notes: second"), timeout=60)
    backup = await call(runner_client, Op.BACKUP, owner, name, timeout=120)
    assert backup.archive is not None
    data = await archive.take(runner_client.redis, keys.archive(backup.request_id), 1 << 30)
    assert members(data) == {"notes.txt": b"second"}

    res = await call(runner_client, Op.RESTORE, owner, name, undo=True, timeout=120)
    assert res.ok, res.error
    await eventually(lambda: logged("notes: first notes"), timeout=60)
    res = await call(runner_client, Op.RESTORE, owner, name, undo=True, timeout=120)
    assert res.error is not None and res.error.code is ErrorCode.INVALID_INPUT

    events = await events_for(runner_client.redis, owner, name)
    assert not [e for e in events if e.type is EventType.CRASHED], events
    await call(runner_client, Op.DELETE, owner, name)
