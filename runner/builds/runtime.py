"""The runtime image that simple-mode bots run on: the base plus common bot libraries."""

from __future__ import annotations

import asyncio
from pathlib import Path

from runner.backend.base import Backend, BuildContext, BuildLimits
from runner.builds.images import RUNTIME_REPO, base_image_id, ca_lines, digest, ensure_image

# A venv, so the same Dockerfile works on the official python image and on Debian's python
# (which refuses system-wide pip installs, PEP 668). /app and /data belong to the bot's user so
# the volumes mounted there start writable for it. /opt/venv belongs to it too, in the same layer
# (no copy of the venv): dependency sets are installed into it by pip running as 65534 in a job
# container (pipjob.py); bots' roots are read-only, so they cannot change it.
_DOCKERFILE = """\
FROM {base}
{ca}ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --upgrade {packages} \
    && chown -R 65534:65534 /opt/venv
ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv PYTHONUNBUFFERED=1 DATA_DIR=/data
RUN mkdir -p /app /data && chown 65534:65534 /app /data
WORKDIR /app
"""


def runtime_context(base: str, packages: list[str], ca_bundle: Path | None) -> BuildContext:
    ca, files = ca_lines(ca_bundle)
    quoted = " ".join(f"'{p}'" for p in packages)
    return BuildContext(_DOCKERFILE.format(base=base, ca=ca, packages=quoted), files)


async def ensure_runtime_image(
    backend: Backend, *, base: str, packages: list[str], ca_bundle: Path | None, limits: BuildLimits
) -> str:
    """The runtime image's tag, built first when no image has it."""
    ctx = runtime_context(base, packages, ca_bundle)
    tag = f"{RUNTIME_REPO}:{digest(ctx, await base_image_id(backend, base))}"
    await ensure_image(backend, ctx, tag, limits)
    return tag


class RuntimeImage:
    """The shared runtime image, built once in the background; operations await it."""

    def __init__(self) -> None:
        self._ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def set(self, tag: str) -> None:
        if not self._ready.done():
            self._ready.set_result(tag)

    def fail(self, exc: BaseException) -> None:
        if not self._ready.done():
            self._ready.set_exception(exc)

    def reset(self) -> None:
        if self._ready.done():
            self._ready = asyncio.get_running_loop().create_future()

    async def get(self) -> str:
        return await asyncio.shield(self._ready)
