"""State shared by every bot of the fake: tokens, users, chats, files, and change notification.

Its helpers are called with ``_lock`` held; ``_changes`` wakes pollers and test-side waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import mimetypes
import re
import threading
import time
from typing import Any

from tests.fakes.telegram.models import JSON, ApiError, File, Message, _bad, _Bot, _private_chat
from tests.fakes.telegram.parsing import _flag, _int, _json

_TOKEN_RE = re.compile(r"^(\d+):[\w-]+$")


class _Changes:
    """A version counter that wakes waiters in any thread or event loop when the fake's state changes."""

    def __init__(self) -> None:
        self.version = 0
        self._cond = threading.Condition()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def notify(self) -> None:
        with self._cond:
            self.version += 1
            waiters, self._waiters = self._waiters, []
            self._cond.notify_all()
        for loop, fut in waiters:
            with contextlib.suppress(RuntimeError):  # that waiter's loop is already closed
                loop.call_soon_threadsafe(_wake, fut)

    async def wait(self, seen: int, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        waiter = (loop, loop.create_future())
        with self._cond:
            if self.version != seen:
                return
            self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter[1], timeout)
        except TimeoutError:
            with self._cond, contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def wait_sync(self, seen: int, timeout: float) -> None:
        with self._cond:
            if self.version == seen:
                self._cond.wait(timeout)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Store:
    """The fake's state and the helpers that read and change it (call them with the lock held)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._changes = _Changes()
        self._bots: dict[str, _Bot] = {}
        self._users: dict[int, JSON] = {}
        self._groups: dict[int, JSON] = {}  # group and supergroup chats by (negative) id
        self._files: dict[str, File] = {}  # by file_id and by file_path
        self._revoked: set[str] = set()
        # Tokens Telegram knows (issued by new_token or registered with know); any other gets 401,
        # as a token @BotFather never issued does.
        self._known: set[str] = set()
        self._ids = itertools.count(1)
        self._closing = False

    def group(self, chat_id: int, title: str = "Test group", kind: str = "supergroup") -> JSON:
        """A group chat users can write in (``FakeUser.send(..., chat=...)``) and bots can answer."""
        assert chat_id < 0 and kind in ("group", "supergroup"), "group ids are negative, as on Telegram"
        with self._lock:
            chat = self._groups[chat_id] = {"id": chat_id, "type": kind, "title": title}
            return dict(chat)

    # ---- state helpers (call with the lock held) --------------------------------------------------------

    def _state(self, token: str) -> _Bot:
        if not (m := _TOKEN_RE.match(token)):
            raise ApiError(404, "Not Found")
        if (bot := self._bots.get(token)) is None:
            bot_id = int(m[1])
            user = {
                "id": bot_id,
                "is_bot": True,
                "first_name": f"Test Bot {bot_id}",
                "username": f"bot_{bot_id}",
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
            bot = self._bots[token] = _Bot(user=user)
        return bot

    def _store(self, bot: _Bot, chat: JSON, sender: JSON, **fields: Any) -> Message:
        history = bot.chats.setdefault(chat["id"], [])
        msg = Message(chat=chat, message_id=len(history) + 1, sender=sender, date=int(time.time()), **fields)
        history.append(msg)
        return msg

    def _enqueue(self, token: str, **update: Any) -> None:
        with self._lock:
            bot = self._state(token)
            bot.updates.append({"update_id": next(bot.update_ids), **update})
        self._changes.notify()

    def _new_file(self, name: str, data: bytes, mime_type: str | None = None) -> File:
        n = next(self._ids)
        mime = mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        ext = name.rpartition(".")[2] if "." in name else "bin"
        file = File(f"BQAC-fake-{n}", f"AgAD{n}", name, data, mime, f"documents/file_{n}.{ext}")
        self._files[file.file_id] = self._files[file.file_path] = file
        return file

    def _chat(self, bot: _Bot, p: JSON) -> JSON:
        if (group := self._groups.get(_int(p, "chat_id", 0))) is not None:
            return dict(group)
        try:
            user = self._users[_int(p, "chat_id")]
        except (KeyError, ApiError):
            raise _bad("chat not found") from None
        if user["id"] in bot.blocked_by:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return _private_chat(user)

    def _find(self, bot: _Bot, chat_id: int, message_id: int, error: str) -> Message:
        history = bot.chats.get(chat_id, [])
        if not 1 <= message_id <= len(history) or history[message_id - 1].deleted:
            raise _bad(error)
        return history[message_id - 1]

    def _reply_to(self, bot: _Bot, chat: JSON, p: JSON) -> Message | None:
        reply = _json(p.get("reply_parameters")) or {}
        message_id = _int(reply, "message_id", 0) or _int(p, "reply_to_message_id", 0)
        if not message_id:
            return None
        try:
            return self._find(bot, chat["id"], message_id, "message to be replied not found")
        except ApiError:
            if _flag(reply, "allow_sending_without_reply") or _flag(p, "allow_sending_without_reply"):
                return None
            raise

    def _sender(self, bot: _Bot) -> JSON:
        return {k: bot.user[k] for k in ("id", "is_bot", "first_name", "username")}
