"""A fake Telegram Bot API server for tests, spoken to over HTTP on 127.0.0.1.

Real aiogram processes reach it with
``Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(server.url)))``.
Every token of the form ``<digits>:<anything>`` is a bot (getMe: id from the digits, username
``bot_<id>``); each has its own update queue, chats, call log and poller bookkeeping. Bots may only
message users registered with ``server.user(...)`` (else 400 "chat not found"), as on Telegram.

Run it in a background thread with its own loop (works from sync and async tests)::

    with FakeTelegram() as tg:                       # or tg.start_thread() / tg.stop_thread()
        token = tg.new_token("echo")
        alice = tg.user(111, "Alice", language_code="en")
        alice.send(token, "/start")
        greeting = await tg.wait_for(token, 111, "Hello")   # or tg.wait_for_sync(...) in sync tests
        alice.press(token, greeting, button="Deploy")

or in the current event loop with ``async with FakeTelegram() as tg`` (then only the async waits work).
Test-side methods are thread-safe; the ``Message`` objects they return are snapshots, so call
``sent``/``message`` again to see later edits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import html.parser
import itertools
import json
import logging
import mimetypes
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

JSON = dict[str, Any]
T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_TEXT = 4096  # characters after entity parsing
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64  # bytes
MAX_DOWNLOAD = 20 * 1024 * 1024  # getFile on the cloud Bot API
MAX_UPLOAD = 50 * 1024 * 1024  # sendDocument
CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a content and reply markup of the current message"
)
_TOKEN_RE = re.compile(r"^(\d+):[\w-]+$")
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_HTML_ENTITY = {
    **dict.fromkeys(["b", "strong"], "bold"),
    **dict.fromkeys(["i", "em"], "italic"),
    **dict.fromkeys(["u", "ins"], "underline"),
    **dict.fromkeys(["s", "strike", "del"], "strikethrough"),
    **dict.fromkeys(["span", "tg-spoiler"], "spoiler"),
    **{
        "a": "text_link",
        "code": "code",
        "pre": "pre",
        "blockquote": "blockquote",
        "tg-emoji": "custom_emoji",
    },
}


class ApiError(Exception):
    """Becomes a Bot API error response; raise it from a method handler."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after

    def payload(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


@dataclass
class File:
    """A file uploaded by a bot or sent by a fake user; getFile and the download route serve it."""

    file_id: str
    file_unique_id: str
    file_name: str
    data: bytes
    mime_type: str
    file_path: str

    def to_api(self) -> JSON:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_name": self.file_name,
            "mime_type": self.mime_type,
            "file_size": len(self.data),
        }


@dataclass
class Message:
    """A message in a chat in its current state; ``text`` is what the user sees (tags parsed away)."""

    chat: JSON
    message_id: int
    sender: JSON
    date: int
    text: str | None = None
    caption: str | None = None
    entities: list[JSON] = field(default_factory=list)  # of text, or of caption
    source: str | None = None  # text or caption exactly as sent, before parse_mode
    reply_markup: JSON | None = None
    document: File | None = None
    reply_to: Message | None = None
    deleted: bool = False
    edits: int = 0
    edit_date: int | None = None

    @property
    def chat_id(self) -> int:
        return int(self.chat["id"])

    @property
    def from_bot(self) -> bool:
        return bool(self.sender.get("is_bot"))

    @property
    def buttons(self) -> list[JSON]:
        """Inline keyboard buttons, row by row, flattened."""
        return [b for row in (self.reply_markup or {}).get("inline_keyboard", []) for b in row]

    def button(self, text: str) -> JSON:
        """The first inline button whose text contains ``text``."""
        for b in self.buttons:
            if text in b["text"]:
                return b
        raise KeyError(f"no button with {text!r} in {[b['text'] for b in self.buttons]}")

    def to_api(self, nested: bool = True) -> JSON:
        data: JSON = {
            "message_id": self.message_id,
            "from": self.sender,
            "chat": self.chat,
            "date": self.date,
        }
        if self.edit_date is not None:
            data["edit_date"] = self.edit_date
        if self.text is not None:
            data["text"] = self.text
        if self.document is not None:
            data["document"] = self.document.to_api()
        if self.caption is not None:
            data["caption"] = self.caption
        if self.entities:
            data["entities" if self.text is not None else "caption_entities"] = self.entities
        if self.reply_markup and "inline_keyboard" in self.reply_markup:
            data["reply_markup"] = self.reply_markup
        if self.reply_to is not None and nested:
            data["reply_to_message"] = self.reply_to.to_api(nested=False)
        return data


@dataclass
class PollStats:
    """getUpdates bookkeeping for one token."""

    active: int = 0  # requests in flight right now
    max_active: int = 0
    polls: int = 0
    conflicts: int = 0  # polls terminated with 409 by a newer one


@dataclass
class _Upload:
    filename: str
    data: bytes


@dataclass
class _Bot:
    user: JSON
    updates: list[JSON] = field(default_factory=list)
    update_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    chats: dict[int, list[Message]] = field(default_factory=dict)  # message_id == index + 1
    calls: list[tuple[str, JSON]] = field(default_factory=list)
    commands: dict[tuple[str, str], list[JSON]] = field(default_factory=dict)
    failures: dict[str, list[ApiError]] = field(default_factory=dict)
    blocked_by: set[int] = field(default_factory=set)
    callbacks: dict[str, JSON | None] = field(default_factory=dict)  # query id -> answer
    poller: object | None = None  # the newest getUpdates in flight
    terminated: set[object] = field(default_factory=set)
    stats: PollStats = field(default_factory=PollStats)


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


class _HtmlParser(html.parser.HTMLParser):
    """Telegram's parse_mode=HTML: plain text plus entities, and its errors for bad markup."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source, self.text = source, ""
        self.entities: list[JSON] = []
        self.open: list[tuple[str, int, JSON]] = []

    def _fail(self, what: str) -> ApiError:
        line, col = self.getpos()
        offset = len("".join(self.source.splitlines(keepends=True)[: line - 1]).encode()) + col
        return _bad(f"can't parse entities: {what} at byte offset {offset}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HTML_ENTITY:
            raise self._fail(f'Unsupported start tag "{tag}"')
        entity: JSON = {"type": _HTML_ENTITY[tag]}
        attr = {k: v or "" for k, v in attrs}
        if tag == "a":
            entity["url"] = attr.get("href", "")
        elif tag == "code" and self.open and self.open[-1][0] == "pre":
            entity = {"type": ""}  # <pre><code class="language-x"> is one pre entity
            if attr.get("class", "").startswith("language-"):
                self.open[-1][2]["language"] = attr["class"].removeprefix("language-")
        self.open.append((tag, _utf16(self.text), entity))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise self._fail(f'Unsupported start tag "{tag}"')

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1][0] != tag:
            expected = f'"</{self.open[-1][0]}>"' if self.open else "nothing"
            raise self._fail(f'Unmatched end tag, expected {expected}, found "</{tag}>"')
        _, start, entity = self.open.pop()
        if entity["type"] and _utf16(self.text) > start:
            self.entities.append({**entity, "offset": start, "length": _utf16(self.text) - start})

    def handle_data(self, data: str) -> None:
        self.text += data

    def parse(self) -> tuple[str, list[JSON]]:
        self.feed(self.source)
        self.close()
        if self.open:
            raise _bad(
                f"can't parse entities: Can't find end tag corresponding to start tag \"{self.open[-1][0]}\""
            )
        return self.text, sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _int(p: JSON, key: str, default: int | None = None) -> int:
    value = p.get(key)
    if value in (None, ""):
        if default is None:
            raise _bad(f"{key} is empty")
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _bad(f"invalid {key} specified") from None


def _flag(p: JSON, key: str) -> bool:
    return p.get(key) in (True, "true", "True", "1", 1)


def _json(value: Any) -> Any:
    """aiogram sends nested objects as JSON strings inside form fields."""
    if isinstance(value, str) and value[:1] in "[{":
        with contextlib.suppress(ValueError):
            return json.loads(value)
    return value


def _markup(p: JSON) -> JSON | None:
    markup = _json(p.get("reply_markup"))
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise _bad("can't parse reply keyboard markup JSON object")
    for button in (b for row in markup.get("inline_keyboard", []) for b in row):
        data = button.get("callback_data")
        if "text" not in button or (
            data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA
        ):
            raise _bad("BUTTON_DATA_INVALID")
    return dict(markup)


def _render(p: JSON, key: str, limit: int, too_long: str) -> tuple[str | None, list[JSON]]:
    raw = p.get(key)
    if raw is None:
        return None, []
    mode = str(p.get("parse_mode") or "").lower()
    if mode == "html":
        text, entities = _HtmlParser(str(raw)).parse()
    else:  # Markdown modes pass through unparsed; explicit entities are kept as sent
        text, entities = (
            str(raw),
            list(_json(p.get(f"{key}_entities" if key == "caption" else "entities")) or []),
        )
    if len(text) > limit:
        raise _bad(too_long)
    return text, entities


def _private_chat(user: JSON) -> JSON:
    keys = ("id", "first_name", "last_name", "username")
    return {"type": "private", **{k: user[k] for k in keys if user.get(k) is not None}}


class FakeTelegram:
    """The fake Bot API server plus the test-side API to act as users and inspect what bots did."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port, self.url = host, port, ""
        self._lock = threading.RLock()
        self._changes = _Changes()
        self._bots: dict[str, _Bot] = {}
        self._users: dict[int, JSON] = {}
        self._files: dict[str, File] = {}  # by file_id and by file_path
        self._revoked: set[str] = set()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._methods: dict[str, Callable[[_Bot, JSON], Any]] = {
            "getme": lambda bot, p: bot.user,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": lambda bot, p: {
                "url": "",
                "has_custom_certificate": False,
                "pending_update_count": len(bot.updates),
            },
            "sendmessage": self._send_message,
            "copymessage": self._copy_message,
            "sendchataction": lambda bot, p: self._chat(bot, p) and True,
            "senddocument": self._send_document,
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
        }

    # ---- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> FakeTelegram:
        """Serve in the running event loop; ``self.url`` is set when this returns."""
        app = web.Application(client_max_size=MAX_UPLOAD + 2 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        # handler_cancellation: a poller that hangs up stops counting as a poller, as on real Telegram
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.url = f"http://{self.host}:{self.port}"
        return self

    async def stop(self) -> None:
        self._closing = True
        self._changes.notify()  # pending long polls return at once
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start_thread(self) -> FakeTelegram:
        """Serve from a daemon thread with its own event loop, so blocking tests cannot starve it."""
        started: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            self._loop = loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self.start())
            except BaseException as e:
                started.set_exception(e)
                loop.close()
                return
            started.set_result(None)
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.stop())
                loop.close()

        self._thread = threading.Thread(target=run, name="fake-telegram", daemon=True)
        self._thread.start()
        started.result(timeout=10)
        return self

    def stop_thread(self) -> None:
        if self._thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> FakeTelegram:
        return self.start_thread()

    def __exit__(self, *exc: object) -> None:
        self.stop_thread()

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- test-side API ---------------------------------------------------------------------------------

    def new_token(self, name: str = "bot") -> str:
        """A token no other test uses: ``<unique id>:TEST-<name>-<n>``."""
        n = next(self._ids)
        return f"{7_000_000_000 + n}:TEST-{name}-{n}"

    def user(
        self,
        user_id: int,
        first_name: str = "Alice",
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "en",
    ) -> FakeUser:
        """Register (or update) a Telegram user; bots can message only registered users."""
        data = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name,
            "last_name": last_name,
            "username": username,
            "language_code": language_code,
        }
        with self._lock:
            self._users[user_id] = {k: v for k, v in data.items() if v is not None}
        return FakeUser(self, user_id)

    def revoke(self, token: str) -> None:
        """Make every later call with ``token`` fail with 401 Unauthorized."""
        with self._lock:
            self._revoked.add(token)

    def fail_next(
        self,
        token: str,
        method: str,
        *,
        error_code: int = 429,
        description: str | None = None,
        retry_after: int | None = 1,
    ) -> None:
        """Make the next call of ``method`` fail (by default 429 with ``parameters.retry_after``)."""
        if description is None:
            description = (
                f"Too Many Requests: retry after {retry_after}" if error_code == 429 else "Bad Request"
            )
        error = ApiError(error_code, description, retry_after if error_code == 429 else None)
        with self._lock:
            self._state(token).failures.setdefault(method.lower(), []).append(error)

    def bot_user(self, token: str) -> JSON:
        """What getMe answers for ``token``."""
        with self._lock:
            return dict(self._state(token).user)

    def messages(self, token: str, chat_id: int) -> list[Message]:
        """Every message of the chat, the user's too, in order and in their current state."""
        with self._lock:
            return copy.deepcopy(self._state(token).chats.get(chat_id, []))

    def sent(self, token: str, chat_id: int) -> list[Message]:
        """Messages the bot sent to the chat, including deleted ones (see ``Message.deleted``)."""
        return [m for m in self.messages(token, chat_id) if m.from_bot]

    def message(self, token: str, chat_id: int, message_id: int) -> Message:
        return self.messages(token, chat_id)[message_id - 1]

    def calls(self, token: str, method: str) -> list[JSON]:
        """Parameters of every call of ``method`` (case-insensitive), JSON fields decoded."""
        with self._lock:
            return [copy.copy(p) for m, p in self._state(token).calls if m == method.lower()]

    def poll_stats(self, token: str) -> PollStats:
        with self._lock:
            return copy.copy(self._state(token).stats)

    def pending_updates(self, token: str) -> int:
        """Updates not yet confirmed by a getUpdates offset."""
        with self._lock:
            return len(self._state(token).updates)

    def callback_answer(self, token: str, query_id: str) -> JSON | None:
        """answerCallbackQuery's parameters for a press, or None while unanswered."""
        with self._lock:
            return self._state(token).callbacks.get(query_id)

    async def wait_until(self, condition: Callable[[], T | None], timeout: float = 10.0, what: str = "") -> T:
        """Await until ``condition()`` is truthy and return it; any thread's or loop's changes wake it."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self._changes.version
            if result := condition():
                return result
            if (remaining := deadline - time.monotonic()) <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what or condition}")
            await self._changes.wait(seen, remaining)

    def wait_until_sync(self, condition: Callable[[], T | None], timeout: float = 10.0, what: str = "") -> T:
        """``wait_until`` for sync tests; needs the server in a thread (``start_thread``)."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self._changes.version
            if result := condition():
                return result
            if (remaining := deadline - time.monotonic()) <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what or condition}")
            self._changes.wait_sync(seen, remaining)

    async def wait_for(
        self,
        token: str,
        chat_id: int,
        match: str | Callable[[Message], bool] = "",
        timeout: float = 10.0,
        *,
        from_bot: bool | None = True,
    ) -> Message:
        """The first message in the chat that matches now or after later sends and edits.

        ``match`` is a substring of text or caption, or a predicate; ``from_bot=None`` means either side.
        """
        found = self._finder(token, chat_id, match, from_bot)
        return await self.wait_until(found, timeout, self._describe(token, chat_id, match))

    def wait_for_sync(
        self,
        token: str,
        chat_id: int,
        match: str | Callable[[Message], bool] = "",
        timeout: float = 10.0,
        *,
        from_bot: bool | None = True,
    ) -> Message:
        found = self._finder(token, chat_id, match, from_bot)
        return self.wait_until_sync(found, timeout, self._describe(token, chat_id, match))

    def _finder(
        self, token: str, chat_id: int, match: str | Callable[[Message], bool], from_bot: bool | None
    ) -> Callable[[], Message | None]:
        def matches(m: Message) -> bool:
            if from_bot is not None and m.from_bot != from_bot:
                return False
            return match(m) if callable(match) else match in (m.text or m.caption or "")

        return lambda: next(filter(matches, self.messages(token, chat_id)), None)

    def _describe(self, token: str, chat_id: int, match: object) -> str:
        return f"{match!r} in chat {chat_id} of {token}; chat so far: " + repr(
            [
                (m.message_id, m.text or m.caption, "deleted" if m.deleted else "")
                for m in self.messages(token, chat_id)
            ]
        )

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

    @staticmethod
    def _scope(p: JSON) -> tuple[str, str]:
        scope = _json(p.get("scope")) or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(p.get("language_code") or "")

    # ---- Bot API methods ------------------------------------------------------------------------------

    def _delete_webhook(self, bot: _Bot, p: JSON) -> bool:
        if _flag(p, "drop_pending_updates"):
            bot.updates.clear()
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
        caption, entities = _render(p, "caption", MAX_CAPTION, "message caption is too long")
        msg = self._store(
            bot,
            chat,
            self._sender(bot),
            document=file,
            caption=caption,
            entities=entities,
            source=p.get("caption"),
            reply_markup=_markup(p),
            reply_to=self._reply_to(bot, chat, p),
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
                        return copy.deepcopy(bot.updates[:limit])
                if (remaining := deadline - time.monotonic()) <= 0:
                    return []
                await self._changes.wait(seen, remaining)
        finally:
            with self._lock:
                bot.stats.active -= 1
                bot.terminated.discard(ticket)
                if bot.poller is ticket:
                    bot.poller = None

    # ---- HTTP ----------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"].lower()
        try:
            params = await self._params(request)
            with self._lock:
                if token in self._revoked:
                    raise ApiError(401, "Unauthorized")
                bot = self._state(token)
                bot.calls.append((method, params))
                if failures := bot.failures.get(method):
                    raise failures.pop(0)
                if method != "getupdates":
                    handler = self._methods.get(method)
                    result = handler(bot, params) if handler else True
            if method == "getupdates":
                result = await self._get_updates(token, params)
            else:
                self._changes.notify()
        except ApiError as e:
            return web.json_response(e.payload(), status=e.code)
        except Exception as e:  # a bug in the fake: answer like Telegram's 500 so the client says so
            log.exception("fake Telegram failed on %s for %s", method, token)
            return web.json_response(ApiError(500, f"Internal Server Error: {e!r}").payload(), status=500)
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    async def _params(request: web.Request) -> JSON:
        params: JSON = {k: _json(v) for k, v in request.query.items()}
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            try:
                form = await request.post()
            except web.HTTPRequestEntityTooLarge:
                raise ApiError(413, "Request Entity Too Large") from None
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    params[key] = _Upload(value.filename, value.file.read())
                else:
                    params[key] = _json(value if isinstance(value, str) else value.decode())
        return params

    async def _download(self, request: web.Request) -> web.Response:
        with self._lock:
            file = self._files.get(request.match_info["path"])
            known = (
                _TOKEN_RE.match(request.match_info["token"])
                and request.match_info["token"] not in self._revoked
            )
        if file is None or not known:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        return web.Response(body=file.data, content_type=file.mime_type)


class FakeUser:
    """A Telegram user who talks to bots; each method queues the update a real client would cause."""

    def __init__(self, server: FakeTelegram, user_id: int) -> None:
        self.server, self.id = server, user_id

    @property
    def data(self) -> JSON:
        """The Telegram ``User`` object."""
        return dict(self.server._users[self.id])

    def send(self, token: str, text: str, *, reply_to: Message | None = None) -> Message:
        """Send text; a leading ``/command`` gets its bot_command entity."""
        entities = []
        if text.startswith("/"):
            entities.append({"type": "bot_command", "offset": 0, "length": _utf16(text.split()[0])})
        return self._send(token, text=text, entities=entities, reply_to=reply_to)

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
    ) -> Message:
        """Send a file; its file_id works with getFile and the download route."""
        with self.server._lock:
            file = self.server._new_file(filename, data, mime_type)
        return self._send(token, document=file, caption=caption, reply_to=reply_to)

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

    def _send(self, token: str, reply_to: Message | None = None, **fields: Any) -> Message:
        server = self.server
        with server._lock:
            bot = server._state(token)
            original = None
            if reply_to is not None:
                original = server._find(bot, reply_to.chat_id, reply_to.message_id, "message not found")
            msg = server._store(bot, _private_chat(self.data), self.data, reply_to=original, **fields)
            server._enqueue(token, message=msg.to_api())
            return copy.deepcopy(msg)
