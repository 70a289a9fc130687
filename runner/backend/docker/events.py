"""Docker's container events for this runner instance, as an async stream."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

from protocol.errors import DockerUnavailable
from runner.backend import names
from runner.backend.base import DockerEvent
from runner.backend.docker.engine import Engine

T = TypeVar("T")

log = logging.getLogger(__name__)


def parse_event(ev: dict[str, Any]) -> DockerEvent | None:
    attrs = ev.get("Actor", {}).get("Attributes", {})
    if attrs.get(names.LABEL_KIND) != "container":
        return None  # jobs, builds and volumes carry other kinds
    try:
        owner, bot = int(attrs[names.LABEL_OWNER]), attrs[names.LABEL_BOT]
    except (KeyError, ValueError):
        return None
    code = attrs.get("exitCode")
    return DockerEvent(
        action=str(ev.get("Action") or ev.get("status", "")),
        owner=owner,
        name=bot,
        container_id=str(ev.get("id", "")),
        exit_code=int(code) if code is not None else None,
        at=event_time(ev),
    )


def event_time(ev: dict[str, Any]) -> float | None:
    """The engine's own time of an event, to the nanosecond when it gives it."""
    if nanos := ev.get("timeNano"):
        return int(nanos) / 1e9
    return float(ev["time"]) if ev.get("time") else None


class EventFeed(Generic[T]):
    """This engine's container events of an instance, parsed in a daemon thread and handed to the
    loop; other items (the swarm's task poller's) may join them. A broken stream, or an exception
    put in, ends the feed: `get` raises DockerUnavailable. The docker and swarm backends read it."""

    def __init__(self, source: str, on_break: Callable[[], None]) -> None:
        self.source = source  # "docker event stream": what broke, in the error
        self.on_break = on_break  # the backend forgets its client
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[T | Exception] = asyncio.Queue()
        self._stop = threading.Event()
        self._stream: Any = None

    def put(self, item: T | Exception) -> None:
        """From any thread."""
        self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def start(
        self,
        client: Any,
        instance: str,
        parse: Callable[[dict[str, Any]], T | None],
        name: str,
        since: float | None = None,
    ) -> None:
        args = (client, instance, parse, since)
        threading.Thread(target=self._pump, args=args, name=name, daemon=True).start()

    def _pump(
        self, client: Any, instance: str, parse: Callable[[dict[str, Any]], T | None], since: float | None
    ) -> None:
        """Blocking: the events, parsed, until close() or a broken stream (put in for `get`).

        The stream opens in this thread, a moment after the caller asked for it (longer on a busy
        host). With `since`, the engine first replays what it still holds from then on (its last
        few hundred events): a bot that died in that moment is not missed."""
        try:
            flt = {"type": "container", "label": [f"{names.LABEL_INSTANCE}={instance}"]}
            at = None if since is None else f"{since:.9f}"  # the engine's "seconds.nanoseconds"
            self._stream = client.events(decode=True, filters=flt, since=at)
            for ev in self._stream:
                if self._stop.is_set():
                    return
                parsed = parse(ev)
                if parsed is not None:
                    self.put(parsed)
            raise ConnectionError("docker event stream ended")
        except Exception as e:
            if not self._stop.is_set():
                self.put(e)

    async def get(self) -> T:
        item = await self._queue.get()
        if isinstance(item, Exception):
            self.on_break()
            raise DockerUnavailable(f"{self.source} broke: {item}") from item
        return item

    def close(self) -> None:
        """Stop the pump and close its stream, if any (it may be dead)."""
        self._stop.set()
        if self._stream is not None:
            try:
                self._stream.close()
            except Exception:  # the stream may already be dead
                log.debug("closing event stream failed", exc_info=True)


class Events(Engine):
    async def events(self, since: float | None = None) -> AsyncIterator[DockerEvent]:
        """Stream container events from a thread; a broken stream raises DockerUnavailable."""
        feed: EventFeed[DockerEvent] = EventFeed("docker event stream", self._reset)
        feed.start(self.client, self.instance, parse_event, "docker-events", since)
        try:
            while True:
                yield await feed.get()
        finally:
            feed.close()
