"""A bot's service spec (Docker Engine API 1.41 JSON), built from its ContainerSpec. Pure: no engine.

The spec is written raw rather than through docker-py's types, because those lack fields the
sandbox needs (`Limits.Pids`, `CapabilityDrop`, `Init`). What API 1.41 services cannot carry at
all is listed in docs/backends.md: no-new-privileges and a memory+swap limit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from runner.backend import names
from runner.backend.base import NOBODY, ContainerSpec
from runner.backend.docker.containers import LOG_CONFIG, tmp_bytes

# Swarm refuses configs over 1000 KB on engine 20.10 (and 500 KB before 1.37); a file above this
# travels in an image instead.
CONFIG_MAX_BYTES = 1000 * 1024
SEC = 1_000_000_000  # the API's durations are nanoseconds
# Between a failed task and its replacement. Swarm's default is 5 s; Docker's own on-failure
# restarts start at 100 ms. A short delay keeps a crash-looping bot's restarts close to Docker's.
RESTART_DELAY_S = 0.5
# How long an update watches the new task before calling the update done. The CLI's default of
# 5 s is what makes `docker service create` (without -d) take ~5 s; the runner watches tasks itself.
UPDATE_MONITOR_S = 1.0
KIND_SERVICE = "service"
KIND_CONFIG = "config"


@dataclass(frozen=True)
class CodeConfig:
    """A single-file bot's code as a Swarm config, mounted read-only at /app/<file>."""

    name: str  # <service>-<sha12>
    path: str  # relative to /app
    data: bytes
    config_id: str = ""  # filled in once the config exists


def sha12(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def config_for(spec: ContainerSpec) -> CodeConfig | None:
    """The config that carries spec's code, or None when it needs an image (trees, big files)."""
    if not spec.app_volume or len(spec.files) != 1:
        return None
    ((path, data),) = spec.files.items()
    if len(data) > CONFIG_MAX_BYTES:
        return None
    service = names.container_name(spec.owner, spec.name)
    digest = sha12(path.encode() + b"\0" + data)  # a renamed file is new code too
    return CodeConfig(name=f"{service}-{digest}", path=path, data=data)


def code_image_dockerfile(base: str) -> str:
    """The Dockerfile of an image that carries a tree's code at /app, owned by nobody."""
    return f"FROM {base}\nCOPY --chown={NOBODY} app/ /app/\nWORKDIR /app\n"


def service_spec(
    spec: ContainerSpec,
    *,
    instance: str,
    image: str,
    config: CodeConfig | None,
    network: str,
    constraints: list[str],
    restart_max: int,
    replicas: int,
    stop_timeout: float = 10.0,
    force_update: int = 0,
) -> dict[str, Any]:
    """The whole ServiceSpec of a bot. `image` is what the task runs (the spec's image, a code
    image, or either pushed to the registry); `config` the code when it travels as a config."""
    service = names.container_name(spec.owner, spec.name)
    base = names.base_labels(instance, spec.owner, spec.name)
    request = {names.LABEL_REQUEST: spec.request_id}
    # The same sandbox as the docker backend: nobody, a read-only root, no capabilities, init,
    # hard limits, only /data and a small /tmp writable.
    container: dict[str, Any] = {
        "Image": image,
        # Labels on the task's container too: `docker ps --filter label=botrunner.bot=x` finds it,
        # and the local engine's die events carry owner and bot.
        "Labels": {**base, **spec.labels, names.LABEL_KIND: "container", **request},
        "Env": [
            f"{k}={v}"
            for k, v in {**spec.env, "PYTHONUNBUFFERED": "1", "DATA_DIR": "/data", "HOME": "/tmp"}.items()
        ],
        "User": NOBODY,
        "ReadOnly": True,
        "CapabilityDrop": ["ALL"],
        "Init": True,  # a python PID 1 ignores SIGTERM; tini forwards it
        "StopGracePeriod": int(max(1.0, stop_timeout) * SEC),
        "Mounts": [
            {
                "Type": "volume",
                "Source": names.data_volume(spec.owner, spec.name),
                "Target": "/data",
                "VolumeOptions": {"Labels": {**base, names.LABEL_KIND: "data-volume"}},
            },
            # /tmp lives in memory: its size stays within the memory limit (as on the docker backend).
            {
                "Type": "tmpfs",
                "Target": "/tmp",
                "TmpfsOptions": {"SizeBytes": tmp_bytes(spec.memory_bytes), "Mode": 0o1777},
            },
        ],
    }
    if spec.command is not None:
        container["Args"] = spec.command  # like `docker run IMAGE CMD`: the image's ENTRYPOINT stays
    if spec.app_volume:
        container["Dir"] = "/app"
    if config is not None:
        container["Configs"] = [
            {
                "File": {"Name": f"/app/{config.path}", "UID": "65534", "GID": "65534", "Mode": 0o444},
                "ConfigID": config.config_id,
                "ConfigName": config.name,
            }
        ]
    limits: dict[str, Any] = {
        "NanoCPUs": int(spec.cpu * 1e9),
        "MemoryBytes": spec.memory_bytes,
        "Pids": spec.pids,  # API 1.41; docker-py's Resources has no field for it
    }
    placement: dict[str, Any] = {"Constraints": constraints} if constraints else {}
    return {
        "Name": service,
        "Labels": {**base, names.LABEL_KIND: KIND_SERVICE, **request},
        "TaskTemplate": {
            "ContainerSpec": container,
            "Resources": {"Limits": limits},
            "RestartPolicy": {
                "Condition": "on-failure",
                "Delay": int(RESTART_DELAY_S * SEC),
                "MaxAttempts": restart_max,
                "Window": 0,
            },
            "Placement": placement,
            "LogDriver": {"Name": LOG_CONFIG["type"], "Options": LOG_CONFIG["config"]},
            "Networks": [{"Target": network}],
            "ForceUpdate": force_update,
        },
        "Mode": {"Replicated": {"Replicas": replicas}},
        # stop-first: two pollers on one token get 409 Conflict from Telegram.
        "UpdateConfig": {
            "Parallelism": 1,
            "Order": "stop-first",
            "FailureAction": "continue",
            "Monitor": int(UPDATE_MONITOR_S * SEC),
        },
    }


def pinned(constraints: list[str], node_id: str | None) -> list[str]:
    """The placement: RUNNER_PLACEMENT's constraints, plus the node holding the bot's /data."""
    return [*constraints, f"node.id=={node_id}"] if node_id else list(constraints)
