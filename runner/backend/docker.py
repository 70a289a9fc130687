"""The Docker backend: where bot containers are created, started, stopped and removed.

Every docker-py call is blocking, so each goes through `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import tarfile
import threading
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions

from protocol.errors import DockerUnavailable
from runner.backend import names
from runner.backend.base import ContainerInfo, ContainerSpec, DockerEvent, ResourceUsage

log = logging.getLogger(__name__)
T = TypeVar("T")

BOT_UID = "65534:65534"  # nobody
LOG_CONFIG = {"type": "json-file", "config": {"max-size": "10m", "max-file": "3"}}
_BUILTIN_NETWORKS = {"host", "bridge", "none", "default"}


def _ts(value: str | None) -> float | None:
    if not value or value.startswith("0001-"):
        return None
    # Docker gives nanoseconds; Python parses at most microseconds.
    head, _, frac = value.rstrip("Z").partition(".")
    iso = f"{head}.{(frac + '000000')[:6]}+00:00" if frac else f"{head}+00:00"
    return datetime.fromisoformat(iso).timestamp()


def _info(attrs: dict[str, Any]) -> ContainerInfo:
    state = attrs.get("State", {})
    labels = attrs.get("Config", {}).get("Labels") or {}
    status = state.get("Status", "")
    return ContainerInfo(
        id=attrs["Id"],
        status=status,
        running=bool(state.get("Running")) and not state.get("Restarting"),
        restarting=bool(state.get("Restarting")),
        exit_code=state.get("ExitCode") if status in ("exited", "dead") else None,
        oom_killed=bool(state.get("OOMKilled")),
        started_at=_ts(state.get("StartedAt")),
        finished_at=_ts(state.get("FinishedAt")),
        restart_count=int(attrs.get("RestartCount", 0)),
        image=attrs.get("Config", {}).get("Image", ""),
        request_id=labels.get(names.LABEL_REQUEST),
    )


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs: set[str] = set()
        for path, data in sorted(files.items()):
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, 65534, 65534
                    tar.addfile(info)
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.uid, info.gid = len(data), 0o644, 65534, 65534
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class DockerBackend:
    def __init__(
        self,
        *,
        instance: str,
        network_mode: str,
        restart_max: int,
        client_factory: Callable[[], docker.DockerClient] = docker.from_env,
    ) -> None:
        self.instance = instance
        self.network_mode = network_mode
        self.restart_max = restart_max
        self._client_factory = client_factory
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def client(self) -> docker.DockerClient:
        with self._lock:
            if self._client is None:
                self._client = self._client_factory()
            return self._client

    def _reset(self) -> None:
        with self._lock:
            if self._client is not None:
                try:
                    self._client.close()
                except Exception:  # closing a broken client must not mask the real error
                    log.debug("closing docker client failed", exc_info=True)
            self._client = None

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except (docker.errors.APIError, docker.errors.NotFound, docker.errors.InvalidArgument):
            raise  # Docker answered: not an outage
        except (requests.exceptions.ConnectionError, docker.errors.DockerException, OSError) as e:
            self._reset()
            raise DockerUnavailable() from e

    def _get(self, owner: int, name: str) -> Any:
        try:
            return self.client.containers.get(names.container_name(owner, name))
        except docker.errors.NotFound:
            return None

    # -- Backend ----------------------------------------------------------------------------
    async def version(self) -> str:
        data = await self._call(lambda: self.client.version())
        return str(data.get("Version", "?"))

    async def prepare(self) -> None:
        if self.network_mode in _BUILTIN_NETWORKS:
            return
        await self._call(self._ensure_network)

    def _ensure_network(self) -> None:
        if self.client.networks.list(names=[self.network_mode]):
            return
        # A bridge of its own: bots reach the internet, not Redis or each other (icc off).
        self.client.networks.create(
            self.network_mode,
            driver="bridge",
            labels={names.LABEL_MANAGED: "true", names.LABEL_INSTANCE: self.instance},
            options={"com.docker.network.bridge.enable_icc": "false"},
        )
        log.info("created network %s for bots", self.network_mode)

    async def deploy(self, spec: ContainerSpec, *, start: bool = True) -> ContainerInfo:
        return await self._call(self._deploy, spec, start)

    def _deploy(self, spec: ContainerSpec, start: bool) -> ContainerInfo:
        existing = self._get(spec.owner, spec.name)
        if existing is not None:
            if existing.labels.get(names.LABEL_REQUEST) == spec.request_id:
                # A redelivered command: the container is already ours; just make sure it runs.
                if start and existing.status not in ("running", "restarting"):
                    existing.start()
                existing.reload()
                return _info(existing.attrs)
            existing.remove(force=True)
        labels = names.base_labels(self.instance, spec.owner, spec.name)
        app_vol = names.app_volume(spec.owner, spec.name)
        data_vol = names.data_volume(spec.owner, spec.name)
        volumes = {data_vol: {"bind": "/data", "mode": "rw"}}
        extra: dict[str, Any] = {}
        if spec.app_volume:
            self._fresh_volume(app_vol, {**labels, names.LABEL_KIND: "app-volume"})
            volumes[app_vol] = {"bind": "/app", "mode": "rw"}
            extra["working_dir"] = "/app"
        self._ensure_volume(data_vol, {**labels, names.LABEL_KIND: "data-volume"})
        container = self.client.containers.create(
            spec.image,
            spec.command,
            name=names.container_name(spec.owner, spec.name),
            labels={
                **labels,
                **spec.labels,
                names.LABEL_KIND: "container",
                names.LABEL_REQUEST: spec.request_id,
            },
            environment={**spec.env, "PYTHONUNBUFFERED": "1", "DATA_DIR": "/data", "HOME": "/tmp"},
            user=BOT_UID,
            read_only=True,
            tmpfs={"/tmp": "rw,nosuid,nodev,size=64m,mode=1777"},
            volumes=volumes,
            mem_limit=spec.memory_bytes,
            memswap_limit=spec.memory_bytes,  # no swap: an over-limit bot is OOM-killed, visibly
            nano_cpus=int(spec.cpu * 1e9),
            pids_limit=spec.pids,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            init=True,  # a python PID 1 ignores SIGTERM; tini forwards it
            log_config=LOG_CONFIG,
            restart_policy={"Name": "on-failure", "MaximumRetryCount": self.restart_max},
            network_mode=self.network_mode,
            **extra,
        )
        if spec.app_volume and spec.files:
            container.put_archive("/app", _tar(spec.files))
        if start:
            container.start()
        container.reload()
        return _info(container.attrs)

    def _fresh_volume(self, vol: str, labels: dict[str, str]) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.client.volumes.get(vol).remove(force=True)
        self.client.volumes.create(vol, labels=labels)

    def _ensure_volume(self, vol: str, labels: dict[str, str]) -> None:
        try:
            self.client.volumes.get(vol)
        except docker.errors.NotFound:
            self.client.volumes.create(vol, labels=labels)

    async def inspect(self, owner: int, name: str) -> ContainerInfo | None:
        def run() -> ContainerInfo | None:
            try:
                attrs = self.client.api.inspect_container(names.container_name(owner, name))
            except docker.errors.NotFound:
                return None
            return _info(attrs)

        return await self._call(run)

    async def start(self, owner: int, name: str) -> None:
        await self._call(lambda: self.client.api.start(names.container_name(owner, name)))

    async def stop(self, owner: int, name: str, timeout: float) -> None:
        def run() -> None:
            with contextlib.suppress(docker.errors.NotFound):
                self.client.api.stop(names.container_name(owner, name), timeout=int(max(1, timeout)))

        await self._call(run)

    async def restart(self, owner: int, name: str, timeout: float) -> None:
        await self._call(
            lambda: self.client.api.restart(names.container_name(owner, name), timeout=int(max(1, timeout)))
        )

    async def remove(self, owner: int, name: str, *, volumes: bool) -> None:
        def run() -> None:
            with contextlib.suppress(docker.errors.NotFound):
                self.client.api.remove_container(names.container_name(owner, name), force=True)
            if volumes:
                for vol in (names.app_volume(owner, name), names.data_volume(owner, name)):
                    with contextlib.suppress(docker.errors.NotFound):
                        self.client.api.remove_volume(vol, force=True)

        await self._call(run)

    async def logs(self, owner: int, name: str, tail: int | None, since: float | None) -> str:
        def run() -> str:
            kwargs: dict[str, Any] = {"stdout": True, "stderr": True, "tail": tail if tail else "all"}
            if since is not None and since > 0:  # docker-py refuses 0 and below; they filter nothing
                kwargs["since"] = float(since)
            try:
                raw = self.client.api.logs(names.container_name(owner, name), **kwargs)
            except docker.errors.NotFound:
                return ""
            return bytes(raw).decode("utf-8", "replace")

        return await self._call(run)

    async def stats(self, owner: int, name: str) -> ResourceUsage | None:
        def run() -> ResourceUsage | None:
            try:
                s = self.client.api.stats(names.container_name(owner, name), stream=False)
            except docker.errors.NotFound:
                return None
            mem = s.get("memory_stats", {})
            usage = int(mem.get("usage", 0)) - int(mem.get("stats", {}).get("cache", 0))
            cpu, pre = s.get("cpu_stats", {}), s.get("precpu_stats", {})
            cpu_delta = cpu.get("cpu_usage", {}).get("total_usage", 0) - pre.get("cpu_usage", {}).get(
                "total_usage", 0
            )
            sys_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
            ncpu = cpu.get("online_cpus") or len(cpu.get("cpu_usage", {}).get("percpu_usage") or [1])
            pct = (cpu_delta / sys_delta) * ncpu * 100.0 if sys_delta > 0 and cpu_delta > 0 else 0.0
            return ResourceUsage(memory_bytes=max(usage, 0), cpu_percent=round(pct, 2))

        return await self._call(run)

    async def managed(self) -> list[tuple[int, str, ContainerInfo]]:
        def run() -> list[tuple[int, str, ContainerInfo]]:
            out = []
            flt = {"label": [f"{names.LABEL_INSTANCE}={self.instance}", f"{names.LABEL_KIND}=container"]}
            for c in self.client.api.containers(all=True, filters=flt):
                labels = c.get("Labels") or {}
                try:
                    owner, bot = int(labels[names.LABEL_OWNER]), labels[names.LABEL_BOT]
                    attrs = self.client.api.inspect_container(c["Id"])
                except (KeyError, ValueError, docker.errors.NotFound):
                    continue
                out.append((owner, bot, _info(attrs)))
            return out

        return await self._call(run)

    async def events(self) -> AsyncIterator[DockerEvent]:
        """Stream container events from a thread; on a broken stream, reconnect with backoff."""
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
                    parsed = self._parse_event(ev)
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

    @staticmethod
    def _parse_event(ev: dict[str, Any]) -> DockerEvent | None:
        attrs = ev.get("Actor", {}).get("Attributes", {})
        if attrs.get(names.LABEL_KIND) != "container":
            return None
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
