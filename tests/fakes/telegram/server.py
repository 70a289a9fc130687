"""The fake's HTTP server, its lifecycle (in this loop or in a thread), and the test-side API."""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from tests.fakes.telegram.methods import BotApi
from tests.fakes.telegram.models import JSON, MAX_UPLOAD, ApiError, Message, PollStats, _Upload
from tests.fakes.telegram.parsing import _json
from tests.fakes.telegram.users import FakeUser

T = TypeVar("T")
log = logging.getLogger(__name__)


class FakeTelegram(BotApi):
    """The fake Bot API server plus the test-side API to act as users and inspect what bots did."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port, self.url = host, port, ""
        super().__init__()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

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
        """A token no other test uses, shaped like a real one (protocol.rules.BOT_TOKEN_RE):
        ``<unique id>:TEST-<name>-<n>xxx…``. Telegram knows it; see ``know``."""
        n = next(self._ids)
        secret = f"TEST-{name}-{n}-".ljust(32, "x")[:50]
        token = f"{7_000_000_000 + n}:{secret}"
        self.know(token)
        return token

    def know(self, token: str) -> None:
        """Make ``token`` one Telegram knows: calls with any other token answer 401 Unauthorized."""
        with self._lock:
            self._known.add(token)

    def set_webhook(self, token: str, url: str) -> None:
        """Put a webhook on ``token`` (as setWebhook would): getWebhookInfo shows it, polling gets 409."""
        with self._lock:
            self._state(token).webhook_url = url

    def webhook(self, token: str) -> str:
        with self._lock:
            return self._state(token).webhook_url

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

    def call_times(self, token: str) -> list[tuple[float, str]]:
        """(wall-clock arrival, method) of every call in order; file downloads show as "download"."""
        with self._lock:
            return list(self._state(token).call_times)

    def delivered_at(self, token: str, message: Message) -> float | None:
        """Wall-clock time getUpdates first handed the update of a user's message to the bot."""
        with self._lock:
            return self._state(token).delivered.get((message.chat_id, message.message_id))

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

    # ---- HTTP ----------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"].lower()
        try:
            params = await self._params(request)
            with self._lock:
                if token in self._revoked or token not in self._known:
                    raise ApiError(401, "Unauthorized")
                bot = self._state(token)
                bot.calls.append((method, params))
                bot.call_times.append((time.time(), method))
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
                request.match_info["token"] in self._known
                and request.match_info["token"] not in self._revoked
            )
        if file is None or not known:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        with self._lock:
            self._state(request.match_info["token"]).call_times.append((time.time(), "download"))
        return web.Response(body=file.data, content_type=file.mime_type)
