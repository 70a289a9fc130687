"""The Bot API methods the fake implements, as Telegram answers them (unknown methods answer True)."""

from __future__ import annotations

import contextlib
import copy
import json
import re
import time
from collections.abc import Callable
from typing import Any

from tests.fakes.telegram.models import (
    CONFLICT,
    JSON,
    MAX_CAPTION,
    MAX_DOWNLOAD,
    MAX_PHOTO,
    MAX_TEXT,
    MAX_UPLOAD,
    NOT_MODIFIED,
    ApiError,
    Message,
    _bad,
    _Bot,
    _Upload,
)
from tests.fakes.telegram.parsing import _flag, _int, _json, _markup, _render
from tests.fakes.telegram.store import Store

_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")


class BotApi(Store):
    """Handlers of Bot API methods by lower-cased name; each gets the bot's state and the call's params."""

    def __init__(self) -> None:
        super().__init__()
        self._methods: dict[str, Callable[[_Bot, JSON], Any]] = {
            "getme": lambda bot, p: bot.user,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": lambda bot, p: {
                "url": bot.webhook_url,
                "has_custom_certificate": False,
                "pending_update_count": len(bot.updates),
            },
            "setwebhook": self._set_webhook,
            "sendmessage": self._send_message,
            "copymessage": self._copy_message,
            "sendchataction": lambda bot, p: self._chat(bot, p) and True,
            "senddocument": self._send_document,
            "sendphoto": self._send_photo,
            "editmessagetext": self._edit_text,
            "editmessagecaption": self._edit_caption,
            "editmessagereplymarkup": self._edit_markup,
            "deletemessage": self._delete_message,
            "deletemessages": self._delete_messages,
            "answercallbackquery": self._answer_callback,
            "getfile": self._get_file,
            "setmycommands": self._set_commands,
            "getmycommands": lambda bot, p: bot.commands.get(self._scope(p), []),
            "deletemycommands": self._delete_commands,
            "setchatmenubutton": self._set_menu_button,
        }

    @staticmethod
    def _scope(p: JSON) -> tuple[str, str]:
        scope = _json(p.get("scope")) or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(p.get("language_code") or "")

    # ---- Bot API methods ------------------------------------------------------------------------------

    def _delete_webhook(self, bot: _Bot, p: JSON) -> bool:
        if _flag(p, "drop_pending_updates"):
            bot.updates.clear()
        bot.webhook_url = ""
        return True

    def _set_webhook(self, bot: _Bot, p: JSON) -> bool:
        bot.webhook_url = str(p.get("url") or "")
        return True

    def _send_message(self, bot: _Bot, p: JSON) -> JSON:
        chat = self._chat(bot, p)
        text, entities = _render(p, "text", MAX_TEXT, "message is too long")
        if not (text or "").strip():
            raise _bad("message text is empty")
        msg = self._store(
            bot,
            chat,
            self._sender(bot),
            text=text,
            entities=entities,
            source=p["text"],
            reply_markup=_markup(p),
            reply_to=self._reply_to(bot, chat, p),
        )
        return msg.to_api()

    def _copy_message(self, bot: _Bot, p: JSON) -> JSON:
        src = self._find(bot, _int(p, "from_chat_id"), _int(p, "message_id"), "message to copy not found")
        chat = self._chat(bot, p)
        caption, entities = _render(p, "caption", MAX_CAPTION, "message caption is too long")
        if caption is None:
            caption, entities = src.caption, src.entities
        msg = self._store(
            bot,
            chat,
            self._sender(bot),
            text=src.text,
            caption=caption if src.document else None,
            entities=entities,
            source=src.source,
            document=src.document,
            reply_markup=_markup(p),
            reply_to=self._reply_to(bot, chat, p),
        )
        return {"message_id": msg.message_id}

    def _send_document(self, bot: _Bot, p: JSON) -> JSON:
        chat = self._chat(bot, p)
        doc = p.get("document")
        if isinstance(doc, str) and doc.startswith("attach://"):
            doc = p.get(doc.removeprefix("attach://"))
        if isinstance(doc, _Upload):
            if len(doc.data) > MAX_UPLOAD:
                raise ApiError(413, "Request Entity Too Large")
            file = self._new_file(doc.filename, doc.data)
        elif isinstance(doc, str) and doc in self._files:
            file = self._files[doc]
        else:
            raise _bad("wrong file identifier/HTTP URL specified")
        return self._store_media(bot, chat, p, document=file)

    def _send_photo(self, bot: _Bot, p: JSON) -> JSON:
        """A photo is kept as sent (not recompressed as Telegram does), so a test can decode it."""
        chat = self._chat(bot, p)
        photo = p.get("photo")
        if isinstance(photo, str) and photo.startswith("attach://"):
            photo = p.get(photo.removeprefix("attach://"))
        if not isinstance(photo, _Upload):
            raise _bad("wrong file identifier/HTTP URL specified")
        if len(photo.data) > MAX_PHOTO:
            raise _bad("PHOTO_INVALID_DIMENSIONS")
        file = self._new_file(photo.filename or "photo.png", photo.data)
        return self._store_media(bot, chat, p, photo=file)

    def _store_media(self, bot: _Bot, chat: JSON, p: JSON, **media: Any) -> JSON:
        """A message carrying a file (document= or photo=) with the request's caption and buttons."""
        caption, entities = _render(p, "caption", MAX_CAPTION, "message caption is too long")
        msg = self._store(
            bot,
            chat,
            self._sender(bot),
            caption=caption,
            entities=entities,
            source=p.get("caption"),
            reply_markup=_markup(p),
            reply_to=self._reply_to(bot, chat, p),
            **media,
        )
        return msg.to_api()

    def _edited(self, bot: _Bot, p: JSON) -> Message | None:
        if p.get("inline_message_id"):
            return None  # inline messages are not modelled; the call is logged and answered True
        msg = self._find(bot, _int(p, "chat_id"), _int(p, "message_id"), "message to edit not found")
        if not msg.from_bot:
            raise _bad("message can't be edited")
        return msg

    def _apply_edit(self, msg: Message | None, **changes: Any) -> JSON | bool:
        if msg is None:
            return True
        if all(getattr(msg, k) == v for k, v in changes.items() if k != "source"):
            raise _bad(NOT_MODIFIED)
        for k, v in changes.items():
            setattr(msg, k, v)
        msg.edits += 1
        msg.edit_date = int(time.time())
        return msg.to_api()

    def _edit_text(self, bot: _Bot, p: JSON) -> JSON | bool:
        msg = self._edited(bot, p)
        text, entities = _render(p, "text", MAX_TEXT, "message is too long")
        if not (text or "").strip():
            raise _bad("message text is empty")
        if msg is not None and msg.text is None:
            raise _bad("there is no text in the message to edit")
        # Like Telegram, an edit without reply_markup removes the inline keyboard.
        return self._apply_edit(msg, text=text, entities=entities, source=p["text"], reply_markup=_markup(p))

    def _edit_caption(self, bot: _Bot, p: JSON) -> JSON | bool:
        msg = self._edited(bot, p)
        caption, entities = _render(p, "caption", MAX_CAPTION, "message caption is too long")
        return self._apply_edit(
            msg, caption=caption, entities=entities, source=p.get("caption"), reply_markup=_markup(p)
        )

    def _edit_markup(self, bot: _Bot, p: JSON) -> JSON | bool:
        return self._apply_edit(self._edited(bot, p), reply_markup=_markup(p))

    def _delete_message(self, bot: _Bot, p: JSON) -> bool:
        self._find(
            bot, _int(p, "chat_id"), _int(p, "message_id"), "message to delete not found"
        ).deleted = True
        return True

    def _delete_messages(self, bot: _Bot, p: JSON) -> bool:
        for message_id in _json(p.get("message_ids")) or []:
            with contextlib.suppress(ApiError):
                self._delete_message(bot, {"chat_id": p.get("chat_id"), "message_id": message_id})
        return True

    def _answer_callback(self, bot: _Bot, p: JSON) -> bool:
        query_id = str(p.get("callback_query_id"))
        if query_id not in bot.callbacks or bot.callbacks[query_id] is not None:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        if len(str(p.get("text") or "")) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        bot.callbacks[query_id] = dict(p)
        return True

    def _get_file(self, bot: _Bot, p: JSON) -> JSON:
        file = self._files.get(str(p.get("file_id")))
        if file is None or file.file_id != p.get("file_id"):
            raise _bad("invalid file_id")
        if len(file.data) > MAX_DOWNLOAD:
            raise _bad("file is too big")
        return {
            "file_id": file.file_id,
            "file_unique_id": file.file_unique_id,
            "file_size": len(file.data),
            "file_path": file.file_path,
        }

    def _set_commands(self, bot: _Bot, p: JSON) -> bool:
        commands = _json(p.get("commands")) or []
        for c in commands:
            if not _COMMAND_RE.match(str(c.get("command", ""))):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(c.get("description", ""))) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
        bot.commands[self._scope(p)] = list(commands)
        return True

    def _set_menu_button(self, bot: _Bot, p: JSON) -> bool:
        button = _json(p.get("menu_button")) or {"type": "default"}
        if button.get("type") == "web_app":
            url = str((button.get("web_app") or {}).get("url", ""))
            if not url.startswith("https://") or not button.get("text"):
                raise _bad("BUTTON_URL_INVALID")  # Telegram opens Mini Apps over https only
        elif button.get("type") not in ("default", "commands"):
            raise _bad("BUTTON_TYPE_INVALID")
        return True

    def _delete_commands(self, bot: _Bot, p: JSON) -> bool:
        bot.commands.pop(self._scope(p), None)
        return True

    async def _get_updates(self, token: str, p: JSON) -> list[JSON]:
        offset, timeout = _int(p, "offset", 0), max(_int(p, "timeout", 0), 0)
        limit = min(max(_int(p, "limit", 100), 1), 100)
        ticket = object()
        with self._lock:
            bot = self._state(token)
            if offset:  # confirms every update below offset; a negative one keeps only the last -offset
                bot.updates = (
                    bot.updates[offset:]
                    if offset < 0
                    else [u for u in bot.updates if u["update_id"] >= offset]
                )
            if bot.webhook_url:  # Telegram refuses getUpdates while a webhook is set
                raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
            if bot.poller is not None:  # like Telegram, the newer request wins and the older gets 409
                bot.terminated.add(bot.poller)
                bot.stats.conflicts += 1
            bot.poller = ticket
            bot.stats.polls += 1
            bot.stats.active += 1
            bot.stats.max_active = max(bot.stats.max_active, bot.stats.active)
        self._changes.notify()
        deadline = time.monotonic() + timeout
        try:
            while True:
                seen = self._changes.version
                with self._lock:
                    if ticket in bot.terminated:
                        raise ApiError(409, CONFLICT)
                    if bot.updates or self._closing:
                        batch = copy.deepcopy(bot.updates[:limit])
                        now = time.time()
                        for u in batch:
                            if (m := u.get("message")) is not None:
                                bot.delivered.setdefault((m["chat"]["id"], m["message_id"]), now)
                        return batch
                if (remaining := deadline - time.monotonic()) <= 0:
                    return []
                await self._changes.wait(seen, remaining)
        finally:
            with self._lock:
                bot.stats.active -= 1
                bot.terminated.discard(ticket)
                if bot.poller is ticket:
                    bot.poller = None
