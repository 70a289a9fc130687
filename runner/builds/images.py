"""What the runner builds, engine-neutral: the image repositories, cache keys, the CA lines.

The engine does the building (`Backend.build_image`); this module decides what goes in and what
the result is called: a tag made of a content hash of everything that goes in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from runner.backend.base import Backend, BuildContext, BuildLimits, ImageBuild

RUNTIME_REPO = "botrunner/runtime"
DEPS_REPO = "botrunner/deps"
REPO_REPO = "botrunner/repo"
# The image clone jobs run from, when the runner builds it (tools.py); never pruned.
TOOLS_REPO = "botrunner/tools"
# Images in these repositories are a cache shared by every bot (and every test session).
CACHE_REPOS = (RUNTIME_REPO, DEPS_REPO, REPO_REPO)

CA_FILE = "botrunner-ca.crt"


def digest(ctx: BuildContext, *extra: str) -> str:
    """The cache key of a context: its Dockerfile, its files, and whatever else it depends on."""
    h = hashlib.sha256()
    for part in (*extra, ctx.dockerfile):
        h.update(part.encode())
        h.update(b"\0")
    for path in sorted(ctx.files):
        h.update(path.encode() + b"\0")
        h.update(hashlib.sha256(ctx.files[path]).digest())
    return h.hexdigest()[:16]


def ca_lines(ca_bundle: Path | None) -> tuple[str, dict[str, bytes]]:
    """Dockerfile lines and files that make an image trust the operator's CA bundle."""
    if ca_bundle is None:
        return "", {}
    lines = (
        f"COPY {CA_FILE} /usr/local/share/ca-certificates/{CA_FILE}\n"
        "RUN (update-ca-certificates >/dev/null 2>&1 || "
        f"cat /usr/local/share/ca-certificates/{CA_FILE} >> /etc/ssl/certs/ca-certificates.crt)\n"
        "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt "
        "REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt "
        "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt\n"
    )
    return lines, {CA_FILE: ca_bundle.read_bytes()}


async def base_image_id(backend: Backend, image: str) -> str:
    """The local id of a base image, so a changed base gives new cache keys; the name otherwise."""
    return await backend.image_id(image) or image


async def ensure_image(
    backend: Backend,
    ctx: BuildContext,
    tag: str,
    limits: BuildLimits,
    on_line: Callable[[str], None] | None = None,
) -> bool:
    """Build ctx as tag unless it exists; True when it already did (a cache hit)."""
    if await backend.image_exists(tag):
        return True
    await backend.build_image(ImageBuild(ctx, tag, limits, on_line=on_line))
    return False
