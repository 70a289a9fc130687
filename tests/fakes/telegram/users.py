"""Fake Telegram users: what a real client sends when a person types, uploads or presses a button."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from tests.fakes.telegram.models import JSON, Message, _private_chat
from tests.fakes.telegram.parsing import _utf16

if TYPE_CHECKING:
    from tests.fakes.telegram.server import FakeTelegram


class FakeUser:
    """A Telegram user who talks to bots; each method queues the update a real client would cause."""

    def __init__(self, server: FakeTelegram, user_id: int) -> None:
        self.server, self.id = server, user_id

    @property
    def data(self) -> JSON:
        """The Telegram ``User`` object."""
        return dict(self.server._users[self.id])

    def send(
        self, token: str, text: str, *, reply_to: Message | None = None, chat: JSON | None = None
    ) -> Message:
        """Send text (in ``chat``, a group, else the private chat); a ``/command`` gets its entity."""
        entities = []
        if text.startswith("/"):
            entities.append({"type": "bot_command", "offset": 0, "length": _utf16(text.split()[0])})
        return self._send(token, text=text, entities=entities, reply_to=reply_to, chat=chat)

    def reply(self, token: str, to: Message, text: str) -> Message:
        """Reply to ``to``; the update carries it as reply_to_message (its document included)."""
        return self.send(token, text, reply_to=to)

    def send_document(
        self,
        token: str,
        filename: str,
        data: bytes,
        caption: str | None = None,
        *,
        mime_type: str | None = None,
        reply_to: Message | None = None,
        chat: JSON | None = None,
    ) -> Message:
        """Send a file; its file_id works with getFile and the download route."""
        with self.server._lock:
            file = self.server._new_file(filename, data, mime_type)
        return self._send(token, document=file, caption=caption, reply_to=reply_to, chat=chat)

    def press(
        self, token: str, message: Message, callback_data: str | None = None, *, button: str | None = None
    ) -> str:
        """Press an inline button by its callback_data or by (part of) its text; returns the query id."""
        server = self.server
        with server._lock:
            bot = server._state(token)
            current = server._find(bot, message.chat_id, message.message_id, "message not found")
            if button is not None:
                callback_data = current.button(button).get("callback_data")
            if callback_data is None or callback_data not in [
                b.get("callback_data") for b in current.buttons
            ]:
                raise ValueError(
                    f"{callback_data!r} is not a button of message {message.message_id}: {current.buttons}"
                )
            query_id = str(next(server._ids) * 1_000_003)
            bot.callbacks[query_id] = None
            query = {
                "id": query_id,
                "from": self.data,
                "message": current.to_api(),
                "chat_instance": str(self.id * 31 + bot.user["id"]),
                "data": callback_data,
            }
        server._enqueue(token, callback_query=query)
        return query_id

    def block(self, token: str) -> None:
        """Block the bot: its sends to this user fail with 403 until ``unblock``."""
        with self.server._lock:
            self.server._state(token).blocked_by.add(self.id)

    def unblock(self, token: str) -> None:
        with self.server._lock:
            self.server._state(token).blocked_by.discard(self.id)

    def _send(
        self, token: str, reply_to: Message | None = None, chat: JSON | None = None, **fields: Any
    ) -> Message:
        server = self.server
        with server._lock:
            bot = server._state(token)
            original = None
            if reply_to is not None:
                original = server._find(bot, reply_to.chat_id, reply_to.message_id, "message not found")
            where = chat if chat is not None else _private_chat(self.data)
            msg = server._store(bot, where, self.data, reply_to=original, **fields)
            server._enqueue(token, message=msg.to_api())
            return copy.deepcopy(msg)
