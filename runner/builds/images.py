"""Build images through the docker SDK, cached by a content hash of everything that goes in."""

from __future__ import annotations

import hashlib
import io
import logging
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

from protocol.errors import BuildFailed
from runner.backend import names

log = logging.getLogger(__name__)

RUNTIME_REPO = "botrunner/runtime"
DEPS_REPO = "botrunner/deps"
REPO_REPO = "botrunner/repo"
# Images in these repositories are a cache shared by every bot (and every test session).
CACHE_REPOS = (RUNTIME_REPO, DEPS_REPO, REPO_REPO)

CA_FILE = "botrunner-ca.crt"


@dataclass
class BuildContext:
    """A Dockerfile and the files beside it, as the legacy builder wants them: one tar."""

    dockerfile: str
    files: dict[str, bytes] = field(default_factory=dict)

    def digest(self, *extra: str) -> str:
        h = hashlib.sha256()
        for part in (*extra, self.dockerfile):
            h.update(part.encode())
            h.update(b"\0")
        for path in sorted(self.files):
            h.update(path.encode() + b"\0")
            h.update(hashlib.sha256(self.files[path]).digest())
        return h.hexdigest()[:16]

    def tar(self) -> io.BytesIO:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for path, data in {"Dockerfile": self.dockerfile.encode(), **self.files}.items():
                info = tarfile.TarInfo(path)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
        buf.seek(0)
        return buf


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


def image_exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def base_image_id(client: docker.DockerClient, image: str) -> str:
    """The local id of a base image, so a changed base gives new cache keys; the name otherwise."""
    try:
        return str(client.images.get(image).id)
    except docker.errors.ImageNotFound:
        return image


def build(
    client: docker.DockerClient,
    ctx: BuildContext,
    tag: str,
    *,
    network: str | None,
    timeout: float,
    memory_bytes: int,
    labels: dict[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> str:
    """Build ctx as tag unless it exists; return the tag. Raises BuildFailed with the log's tail."""
    if image_exists(client, tag):
        return tag
    started = time.monotonic()
    logs: list[str] = []
    kwargs: dict[str, Any] = {
        "fileobj": ctx.tar(),
        "custom_context": True,
        "tag": tag,
        "rm": True,
        "forcerm": True,  # a failed legacy build leaves its container behind otherwise
        "decode": True,
        "labels": {names.LABEL_MANAGED: "true", names.LABEL_KIND: "image", **(labels or {})},
        "container_limits": {"memory": memory_bytes, "memswap": memory_bytes},
        "timeout": int(timeout) + 30,
    }
    if network:
        kwargs["network_mode"] = network
    try:
        stream = client.api.build(**kwargs)
        for chunk in stream:
            if "stream" in chunk:
                for line in str(chunk["stream"]).splitlines():
                    logs.append(line)
                    if on_line is not None:
                        on_line(line)
            if "error" in chunk:
                logs.append(str(chunk["error"]))
                raise BuildFailed("the image build failed; see the build log", detail=tail(logs))
            if time.monotonic() - started > timeout:
                # Closing the connection makes dockerd cancel the legacy build.
                stream.close()
                raise BuildFailed(f"the build took longer than {int(timeout)} s", detail=tail(logs))
    except docker.errors.APIError as e:
        raise BuildFailed(f"the image build failed: {e.explanation or e}", detail=tail(logs)) from e
    if not image_exists(client, tag):
        raise BuildFailed("the image build produced no image", detail=tail(logs))
    log.info("built %s in %.1f s", tag, time.monotonic() - started)
    return tag


# A failed build's log travels whole in ErrorInfo.detail, so the chat can send it as a .txt and
# show its last lines; only a runaway log is cut, from the top.
MAX_LOG_LINES = 5_000
MAX_LOG_CHARS = 256_000


def tail(lines: list[str], n: int = MAX_LOG_LINES) -> str:
    return "\n".join(lines[-n:])[-MAX_LOG_CHARS:]
