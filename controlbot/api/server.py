"""Serving the API inside the control bot's event loop, next to aiogram's polling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from redis.asyncio import Redis

from controlbot.api.app import create_app
from controlbot.gateway import Gateway
from controlbot.settings import Settings

log = logging.getLogger(__name__)

# How long in-flight requests get to finish once the API is told to stop.
SHUTDOWN_GRACE_S = 5.0


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves SIGINT/SIGTERM to its host (aiogram handles them)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a taken port is an OSError, not uvicorn's sys.exit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as e:
        msg = f"the HTTP API cannot listen on {host}:{port} (API_HOST/API_PORT): {e.strerror}"
        raise OSError(e.errno, msg) from e


async def serve(settings: Settings, gateway: Gateway, redis: Redis) -> None:
    """Serve the HTTP API until cancelled; then stop taking requests and let in-flight ones finish."""
    app = create_app(settings, gateway, redis)
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,
        timeout_graceful_shutdown=int(SHUTDOWN_GRACE_S),
        server_header=False,
    )
    server = _EmbeddedServer(config)
    sock = bind(settings.api_host, settings.api_port)
    host, port = sock.getsockname()[:2]
    log.info("HTTP API listening on http://%s:%s", host, port)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="botrunner-api")
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        server.should_exit = True
        _, pending = await asyncio.wait({task}, timeout=SHUTDOWN_GRACE_S + 2)
        if pending:
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        raise
    finally:
        sock.close()
        log.info("HTTP API stopped")
