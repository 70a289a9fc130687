"""Docker's container events for this runner instance, as an async stream."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

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


def pump_container_events(
    client: Any,
    instance: str,
    parse: Callable[[dict[str, Any]], T | None],
    put: Callable[[T], None],
    stop: threading.Event,
    holder: dict[str, Any],
) -> None:
    """Blocking: this engine's container events of an instance, parsed, until stop or a broken
    stream (raised: the caller reports it). Both the docker and the swarm backends read with it."""
    flt = {"type": "container", "label": [f"{names.LABEL_INSTANCE}={instance}"]}
    stream = client.events(decode=True, filters=flt)
    holder["stream"] = stream
    for ev in stream:
        if stop.is_set():
            return
        parsed = parse(ev)
        if parsed is not None:
            put(parsed)
    raise ConnectionError("docker event stream ended")


def close_stream(holder: dict[str, Any]) -> None:
    """Close the event stream pump_container_events left in holder, if any (it may be dead)."""
    stream = holder.get("stream")
    if stream is not None:
        try:
            stream.close()
        except Exception:  # the stream may already be dead
            log.debug("closing event stream failed", exc_info=True)


class Events(Engine):
    async def events(self) -> AsyncIterator[DockerEvent]:
        """Stream container events from a thread; a broken stream raises DockerUnavailable."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[DockerEvent | Exception] = asyncio.Queue()
        stop = threading.Event()
        holder: dict[str, Any] = {}

        def put(item: DockerEvent | Exception) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def pump() -> None:
            try:
                pump_container_events(self.client, self.instance, parse_event, put, stop, holder)
            except Exception as e:
                if not stop.is_set():
                    put(e)

        thread = threading.Thread(target=pump, name="docker-events", daemon=True)
        thread.start()
        try:
            while True:
                item = await queue.get()
                if isinstance(item, Exception):
                    self._reset()
                    raise DockerUnavailable(f"docker event stream broke: {item}") from item
                yield item
        finally:
            stop.set()
            close_stream(holder)
