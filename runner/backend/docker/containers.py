"""A bot's container: where it is created with its sandbox flags, and its lifecycle after that."""

from __future__ import annotations

import contextlib
import io
import logging
import tarfile
from datetime import datetime
from typing import Any

import docker.errors

from runner.backend import names
from runner.backend.base import NOBODY, ContainerInfo, ContainerSpec
from runner.backend.docker.engine import Engine, disk_usage, retry_while

log = logging.getLogger(__name__)

LOG_CONFIG = {"type": "json-file", "config": {"max-size": "10m", "max-file": "3"}}
_BUILTIN_NETWORKS = {"host", "bridge", "none", "default"}


def parse_ts(value: str | None) -> float | None:
    if not value or value.startswith("0001-"):
        return None
    # Docker gives nanoseconds; Python parses at most microseconds.
    head, _, frac = value.rstrip("Z").partition(".")
    iso = f"{head}.{(frac + '000000')[:6]}+00:00" if frac else f"{head}+00:00"
    return datetime.fromisoformat(iso).timestamp()


def container_info(attrs: dict[str, Any]) -> ContainerInfo:
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
        started_at=parse_ts(state.get("StartedAt")),
        finished_at=parse_ts(state.get("FinishedAt")),
        restart_count=int(attrs.get("RestartCount", 0)),
        image=attrs.get("Config", {}).get("Image", ""),
        request_id=labels.get(names.LABEL_REQUEST),
    )


def volume_usage(client: Any, instance: str) -> dict[tuple[int, str], int]:
    """What each bot of an instance holds in /app and /data (not its backups), from one `df` call.
    This engine's volumes only; under swarm, the runner's node (docs/backends.md)."""
    out: dict[tuple[int, str], int] = {}
    for vol in disk_usage(client).get("Volumes") or []:
        labels = vol.get("Labels") or {}
        if labels.get(names.LABEL_INSTANCE) != instance:
            continue
        if labels.get(names.LABEL_KIND) not in ("app-volume", "data-volume"):
            continue
        try:
            key = (int(labels[names.LABEL_OWNER]), labels[names.LABEL_BOT])
        except (KeyError, ValueError):
            continue
        size = int((vol.get("UsageData") or {}).get("Size") or 0)
        out[key] = out.get(key, 0) + max(size, 0)  # -1: the engine could not tell
    return out


def on_failure(restart_max: int) -> dict[str, Any]:
    """Restart a bot that failed, up to restart_max times. Docker reads a MaximumRetryCount of 0
    as no limit at all, so 0 (RUNNER_RESTART_MAX=0: never) is no policy."""
    return {"Name": "on-failure", "MaximumRetryCount": restart_max} if restart_max > 0 else {"Name": "no"}


def tmp_bytes(memory_bytes: int) -> int:
    """A bot's /tmp: a quarter of its memory limit, at most 64 MiB."""
    return min(64 << 20, max(1 << 20, memory_bytes // 4))


def tar_files(files: dict[str, bytes], uid: int = 65534) -> bytes:
    """Files (and their parent directories) as one tar, owned by uid, for put_archive."""
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
                    info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, uid, uid
                    tar.addfile(info)
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.uid, info.gid = len(data), 0o644, uid, uid
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Containers(Engine):
    def _get(self, owner: int, name: str) -> Any:
        try:
            return self.client.containers.get(names.container_name(owner, name))
        except docker.errors.NotFound:
            return None

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
            # A redelivered command: the container is already ours; just make sure it runs. Not one
            # never started (ContainerInfo.never_started): a bot started without its files dies
            # at once, again and again.
            ours = existing.labels.get(names.LABEL_REQUEST) == spec.request_id
            if ours and not container_info(existing.attrs).never_started:
                if start and existing.status not in ("running", "restarting"):
                    existing.start()
                existing.reload()
                return container_info(existing.attrs)
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
        # The sandbox every bot gets: nobody, a read-only root, no capabilities, no new
        # privileges, hard limits, and only /app, /data and a small /tmp writable.
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
            user=NOBODY,
            read_only=True,
            # /tmp lives in memory: its size stays within the memory limit.
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={tmp_bytes(spec.memory_bytes)},mode=1777"},
            volumes=volumes,
            mem_limit=spec.memory_bytes,
            memswap_limit=spec.memory_bytes,  # no swap: an over-limit bot is OOM-killed, visibly
            nano_cpus=int(spec.cpu * 1e9),
            pids_limit=spec.pids,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            init=True,  # a python PID 1 ignores SIGTERM; tini forwards it
            log_config=LOG_CONFIG,
            restart_policy=on_failure(self.restart_max),
            network_mode=self.network_mode,
            **extra,
        )
        # A read-only root refuses put_archive; the /app volume takes it.
        if spec.app_volume and spec.files:
            container.put_archive("/app", tar_files(spec.files))
        if start:
            container.start()
        container.reload()
        return container_info(container.attrs)

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
            return container_info(attrs)

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

    async def set_restart_policy(self, owner: int, name: str, *, restart: bool) -> None:
        # dockerd restarts every on-failure container whose last exit was non-zero when it starts,
        # a SIGTERM'd one (143) included: a stopped bot must carry no policy at all.
        policy = on_failure(self.restart_max) if restart else {"Name": "no"}

        def update() -> None:
            self.client.api.update_container(names.container_name(owner, name), restart_policy=policy)

        def run() -> None:
            # A container between states (its process just exited, or runc is still starting it
            # after a restart) answers 500 "Cannot update container <id>: cannot update a stopped
            # container" or "...: container not running" for a moment: seen under load, with
            # /restart pressed again and again.
            with contextlib.suppress(docker.errors.NotFound):
                retry_while(update, "Cannot update container", attempts=5, pause=0.2)

        await self._call(run)

    async def remove(self, owner: int, name: str, *, volumes: bool) -> None:
        def run() -> None:
            with contextlib.suppress(docker.errors.NotFound):
                self.client.api.remove_container(names.container_name(owner, name), force=True)
            if volumes:
                roles = ("data", "data-prev", "backups")
                for vol in (
                    names.app_volume(owner, name),
                    *(names.bot_volume(owner, name, r) for r in roles),
                ):
                    with contextlib.suppress(docker.errors.NotFound):
                        self.client.api.remove_volume(vol, force=True)

        await self._call(run)

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
                out.append((owner, bot, container_info(attrs)))
            return out

        return await self._call(run)

    async def volume_usage(self) -> dict[tuple[int, str], int]:
        return await self._call(volume_usage, self.client, self.instance)

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
