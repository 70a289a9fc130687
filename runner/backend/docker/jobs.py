"""One-shot job containers: a command run to its end in the bots' sandbox, then removed."""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from typing import Any

import docker.errors
import requests.exceptions

from protocol.errors import BuildFailed
from runner.backend import names
from runner.backend.base import BotMount, JobResult, JobSpec
from runner.backend.docker.containers import LOG_CONFIG, tar_files
from runner.backend.docker.engine import Engine

log = logging.getLogger(__name__)


def _uid(user: str) -> int:
    head = user.partition(":")[0]
    return int(head) if head.isdigit() else 0


def _last(data: bytes, limit: int) -> tuple[bytes, bool]:
    return (data[-limit:], True) if len(data) > limit else (data, False)


def _wait(container: Any, timeout: float, cancelled: threading.Event) -> tuple[bool, int]:
    """(timed out, exit code): wait in slices, so that a cancelled caller is noticed; the job is
    killed at its timeout or on cancellation."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or cancelled.is_set():
            with contextlib.suppress(docker.errors.APIError):
                container.kill()
            container.wait(timeout=30)
            return True, -1
        try:
            status = container.wait(timeout=max(0.1, min(1.0, left)))
            return False, int(status.get("StatusCode", -1))
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as e:
            # docker-py's read timeout; a real outage raises past here.
            if not isinstance(e, requests.exceptions.ReadTimeout) and "timed out" not in str(e):
                raise


def _collect(container: Any, path: str, limit: int) -> tuple[bytes | None, bool]:
    """The tar of path in the stopped container (its volume still mounted), up to limit bytes."""
    try:
        stream, _stat = container.get_archive(path)
    except docker.errors.NotFound:
        return None, False
    buf = bytearray()
    for chunk in stream:
        buf += chunk
        if len(buf) > limit:
            return None, True
    return bytes(buf), False


class Jobs(Engine):
    async def run_job(self, spec: JobSpec) -> JobResult:
        try:
            # A daemon thread: a long pip or clone job never holds up the runner's shutdown; when
            # the caller is cancelled, the job is killed and removed at the next second.
            return await self._daemon(lambda cancelled: self._run_job(spec, cancelled), "job")
        except docker.errors.APIError as e:  # Docker refused (no such image, bad option)
            raise BuildFailed(f"the job could not run: {e.explanation or e}") from e

    def _bot_volume(self, mount: BotMount) -> str:
        """The named volume behind a bot mount, created (labelled as the bot's) when missing."""
        vol = names.bot_volume(mount.owner, mount.name, mount.role)
        try:
            self.client.volumes.get(vol)
        except docker.errors.NotFound:
            labels = names.base_labels(self.instance, mount.owner, mount.name)
            self.client.volumes.create(vol, labels={**labels, names.LABEL_KIND: f"{mount.role}-volume"})
        return vol

    def _run_job(self, spec: JobSpec, cancelled: threading.Event) -> JobResult:
        job_id = secrets.token_hex(6)
        labels = {
            names.LABEL_MANAGED: "true",
            names.LABEL_INSTANCE: self.instance,
            **spec.labels,
            names.LABEL_KIND: "job",  # never mistaken for a bot by events or reconciliation
        }
        # A read-only root refuses put_archive, so the files go into a scratch volume. (Not with a
        # writable root: a volume would be declared in a committed image's config.)
        scratch = f"botrunner-job-{job_id}" if spec.files and spec.read_only else None
        volumes: dict[str, dict[str, str]] = {}
        if scratch is not None:
            self.client.volumes.create(scratch, labels={**labels, names.LABEL_KIND: "job-volume"})
            volumes[scratch] = {"bind": spec.workdir, "mode": "rw"}
        for mount in spec.mounts:
            volumes[self._bot_volume(mount)] = {"bind": mount.path, "mode": "ro" if mount.read_only else "rw"}
        container: Any = None
        started = time.monotonic()
        try:
            container = self.client.containers.create(
                spec.image,
                spec.command,
                name=f"botrunner-job-{job_id}",
                labels=labels,
                environment=spec.env,
                user=spec.user,
                working_dir=spec.workdir,
                read_only=spec.read_only,
                tmpfs=spec.tmpfs,
                volumes=volumes,
                mem_limit=spec.memory_bytes,
                memswap_limit=spec.memory_bytes,
                nano_cpus=int(spec.cpu * 1e9),
                pids_limit=spec.pids,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                init=True,
                log_config=LOG_CONFIG,
                network_mode=spec.network or "none",
            )
            if spec.files:
                container.put_archive(spec.workdir, tar_files(spec.files, _uid(spec.user)))
            container.start()
            timed_out, exit_code = _wait(container, spec.timeout, cancelled)
            if cancelled.is_set():
                raise BuildFailed("the job was cancelled: the runner is shutting down")
            container.reload()
            oom = bool(container.attrs.get("State", {}).get("OOMKilled"))
            out, cut_out = _last(container.logs(stdout=True, stderr=False), spec.max_output_bytes)
            err, cut_err = _last(container.logs(stdout=False, stderr=True), spec.max_output_bytes)
            archive, cut_archive = None, False
            if spec.collect and exit_code == 0 and not timed_out:
                archive, cut_archive = _collect(container, spec.collect, spec.collect_max_bytes)
            image = None
            if spec.commit_to and exit_code == 0 and not timed_out:
                repo, _, tag = spec.commit_to.rpartition(":")
                if not repo or "/" in tag:  # "name" alone, or a registry port without a tag
                    repo, tag = spec.commit_to, "latest"
                committed = container.commit(repository=repo, tag=tag, conf=spec.commit_config or None)
                image = str(committed.id)
            return JobResult(
                exit_code=exit_code,
                stdout=out,
                stderr=err,
                timed_out=timed_out,
                oom_killed=oom,
                truncated=cut_out or cut_err or cut_archive,
                image=image,
                archive=archive,
                duration_s=time.monotonic() - started,
            )
        finally:
            if container is not None:
                with contextlib.suppress(docker.errors.NotFound):
                    container.remove(force=True)
            if scratch is not None:
                with contextlib.suppress(docker.errors.NotFound):
                    self.client.api.remove_volume(scratch, force=True)
