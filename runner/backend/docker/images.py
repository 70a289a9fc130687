"""Images through docker-py: the legacy builder, the image cache's sizes, removal and leftovers."""

from __future__ import annotations

import io
import logging
import tarfile
import threading
import time
from typing import Any

import docker.errors

from protocol.errors import BuildFailed
from runner.backend import names
from runner.backend.base import BuildContext, ImageBuild, ImageRemoval
from runner.backend.docker.engine import Engine, disk_usage

log = logging.getLogger(__name__)

# A failed build's log travels whole in ErrorInfo.detail, so the chat can send it as a .txt and
# show its last lines; only a runaway log is cut, from the top.
MAX_LOG_LINES = 5_000
MAX_LOG_CHARS = 256_000


def tail(lines: list[str], n: int = MAX_LOG_LINES) -> str:
    return "\n".join(lines[-n:])[-MAX_LOG_CHARS:]


def context_tar(ctx: BuildContext) -> io.BytesIO:
    """The context as the legacy builder wants it: one tar, the Dockerfile at its root."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, data in {"Dockerfile": ctx.dockerfile.encode(), **ctx.files}.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o755 if path in ctx.executables else 0o644
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


class Images(Engine):
    def _image_id(self, ref: str) -> str | None:
        try:
            return str(self.client.images.get(ref).id)
        except docker.errors.ImageNotFound:
            return None

    async def image_id(self, ref: str) -> str | None:
        return await self._call(self._image_id, ref)

    async def image_exists(self, ref: str) -> bool:
        return await self.image_id(ref) is not None

    async def build_image(self, build: ImageBuild) -> None:
        await self._daemon(lambda cancelled: self._build(build, cancelled), "image-build")

    def _build(self, build: ImageBuild, cancelled: threading.Event) -> None:
        """Build it unless its tag exists. Raises BuildFailed with the log's tail."""
        tag, limits = build.tag, build.limits
        if self._image_id(tag) is not None:
            return
        started = time.monotonic()
        logs: list[str] = []
        kwargs: dict[str, Any] = {
            "fileobj": context_tar(build.context),
            "custom_context": True,
            "tag": tag,
            "rm": True,
            "forcerm": True,  # a failed legacy build leaves its container behind otherwise
            "decode": True,
            "labels": {names.LABEL_MANAGED: "true", names.LABEL_KIND: "image", **build.labels},
            "container_limits": {"memory": limits.memory_bytes, "memswap": limits.memory_bytes},
            "timeout": int(limits.timeout) + 30,
        }
        if limits.network:
            kwargs["network_mode"] = limits.network
        try:
            stream = self.client.api.build(**kwargs)
            for chunk in stream:
                if cancelled.is_set():
                    stream.close()  # closing the connection makes dockerd cancel the legacy build
                    raise BuildFailed("the build was cancelled", detail=tail(logs))
                if "stream" in chunk:
                    for line in str(chunk["stream"]).splitlines():
                        logs.append(line)
                        if build.on_line is not None:
                            build.on_line(line)
                if "error" in chunk:
                    logs.append(str(chunk["error"]))
                    raise BuildFailed("the image build failed; see the build log", detail=tail(logs))
                if time.monotonic() - started > limits.timeout:
                    stream.close()
                    raise BuildFailed(
                        f"the build took longer than {int(limits.timeout)} s", detail=tail(logs)
                    )
        except docker.errors.APIError as e:
            raise BuildFailed(f"the image build failed: {e.explanation or e}", detail=tail(logs)) from e
        if self._image_id(tag) is None:
            raise BuildFailed("the image build produced no image", detail=tail(logs))
        log.info("built %s in %.1f s", tag, time.monotonic() - started)

    async def container_image(self, ref: str) -> str | None:
        def run() -> str | None:
            try:
                attrs = self.client.api.inspect_container(ref)
            except docker.errors.NotFound:
                return None
            return str((attrs.get("Config") or {}).get("Image") or "") or None

        return await self._call(run)

    async def image_onbuild(self, ref: str) -> list[str] | None:
        def run() -> list[str] | None:
            try:
                image = self.client.images.get(ref)
            except docker.errors.ImageNotFound:
                try:  # the legacy builder would pull it; pull it now so that it can be inspected
                    repo, _, tag = ref.rpartition(":") if ":" in ref.rpartition("/")[2] else (ref, "", "")
                    self.client.images.pull(repo, tag=tag or "latest")
                    image = self.client.images.get(ref)
                except docker.errors.APIError as e:
                    log.info("cannot inspect the base image %s: %s", ref, e)
                    return None
            return [str(t) for t in (image.attrs.get("Config") or {}).get("OnBuild") or []]

        return await self._call(run)

    async def image_usage(self, repos: tuple[str, ...]) -> dict[str, int]:
        def run() -> dict[str, int]:
            out: dict[str, int] = {}
            prefixes = tuple(f"{r}:" for r in repos)
            for image in disk_usage(self.client).get("Images") or []:
                shared = max(0, int(image.get("SharedSize") or 0))
                own = max(0, int(image.get("Size") or 0) - shared)
                for tag in image.get("RepoTags") or []:
                    if tag.startswith(prefixes):
                        out[tag] = own
            return out

        return await self._call(run)

    async def remove_image(self, tag: str) -> ImageRemoval:
        def run() -> ImageRemoval:
            try:
                self.client.api.remove_image(tag)  # no force: an image in use stays
            except docker.errors.NotFound:
                return ImageRemoval.MISSING
            except docker.errors.APIError as e:  # a container still uses it
                log.info("cache: keeping %s: %s", tag, e.explanation or e)
                return ImageRemoval.IN_USE
            return ImageRemoval.REMOVED

        return await self._call(run)

    async def remove_build_leftovers(self) -> int:
        """Untagged layers our failed builds left behind. An intermediate layer of a build in
        progress is dangling only for the instant between two steps, hence the age limit."""
        flt = {"dangling": True, "label": f"{names.LABEL_MANAGED}=true", "until": "1m"}
        result = await self._call(lambda: self.client.images.prune(filters=flt))
        return int(result.get("SpaceReclaimed") or 0)
