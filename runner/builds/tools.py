"""The image clone jobs run from: it needs git and python3.

In order: RUNNER_TOOLS_IMAGE when set; else the runner's own image when the runner runs in a
container (compose's image has git); else a small image built once, `FROM <RUNNER_BASE_IMAGE>`
plus git and ca-certificates (and the operator's CA bundle), cached by a hash of its recipe.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

from runner.backend.base import Backend, BuildContext, BuildLimits
from runner.builds.images import TOOLS_REPO, base_image_id, ca_lines, digest, ensure_image

log = logging.getLogger(__name__)

# apt first, so that update-ca-certificates exists when the CA lines run.
_DOCKERFILE = """\
FROM {base}
RUN apt-get update \\
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends git ca-certificates \\
    && rm -rf /var/lib/apt/lists/*
{ca}"""


def tools_context(base: str, ca_bundle: Path | None) -> BuildContext:
    ca, files = ca_lines(ca_bundle)
    return BuildContext(_DOCKERFILE.format(base=base, ca=ca), files)


def in_container() -> bool:
    return Path("/.dockerenv").exists()


class ToolsImage:
    """Resolved once, on first use; a failed build is tried again on the next clone."""

    def __init__(
        self,
        backend: Backend,
        *,
        configured: str | None,
        base: str,
        ca_bundle: Path | None,
        limits: BuildLimits,
    ) -> None:
        self.backend, self.configured, self.base = backend, configured, base
        self.ca_bundle, self.limits = ca_bundle, limits
        self._tag: str | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        async with self._lock:
            if self._tag is None:
                self._tag = await self._resolve()
            return self._tag

    async def _resolve(self) -> str:
        if self.configured:
            return self.configured
        if in_container():
            own = await self.backend.container_image(socket.gethostname())
            if own:
                log.info("clone jobs run from the runner's own image %s", own)
                return own
        ctx = tools_context(self.base, self.ca_bundle)
        tag = f"{TOOLS_REPO}:{digest(ctx, await base_image_id(self.backend, self.base))}"
        if not await ensure_image(self.backend, ctx, tag, self.limits):
            log.info("built the clone jobs' image %s", tag)
        return tag
