"""Docker's container events for this runner instance, as an async stream."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from protocol.errors import DockerUnavailable
from runner.backend import names
from runner.backend.base import DockerEvent
from runner.backend.docker.engine import Engine

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
    )


class Events(Engine):
    async def events(self) -> AsyncIterator[DockerEvent]:
        """Stream container events from a thread; a broken stream raises DockerUnavailable."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[DockerEvent | Exception] = asyncio.Queue()
        stop = threading.Event()
        holder: dict[str, Any] = {}

        def pump() -> None:
            flt = {"type": "container", "label": [f"{names.LABEL_INSTANCE}={self.instance}"]}
            try:
                stream = self.client.events(decode=True, filters=flt)
                holder["stream"] = stream
                for ev in stream:
                    if stop.is_set():
                        break
                    parsed = parse_event(ev)
                    if parsed is not None:
                        loop.call_soon_threadsafe(queue.put_nowait, parsed)
                raise ConnectionError("docker event stream ended")
            except Exception as e:
                if not stop.is_set():
                    loop.call_soon_threadsafe(queue.put_nowait, e)

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
            stream = holder.get("stream")
            if stream is not None:
                try:
                    stream.close()
                except Exception:  # the stream may already be dead
                    log.debug("closing event stream failed", exc_info=True)
