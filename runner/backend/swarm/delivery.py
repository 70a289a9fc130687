"""How a bot's code and image reach whichever node runs it, and which node that is.

- One file up to 1000 KB: a Swarm config, mounted read-only at /app/<file>; no image is built.
- Trees and bigger files: an image FROM the bot's image with the code at /app.
- With RUNNER_REGISTRY every image a bot runs is pushed there and services pull it by that name,
  so any node can run it. Without one, images exist on this node only: a one-node swarm.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from typing import Any

import docker.errors

from protocol.errors import BuildFailed
from runner.backend import names
from runner.backend.base import BuildContext, BuildLimits, ContainerSpec, ImageBuild
from runner.backend.docker.images import Images
from runner.backend.swarm import spec as sp
from runner.backend.swarm.cluster import Cluster

log = logging.getLogger(__name__)

CODE_REPO = "botrunner/code"
CODE_BUILD = BuildLimits(network="none", timeout=300.0, memory_bytes=256 << 20)


def constraint_holds(constraint: str, node: dict[str, Any]) -> bool:
    """The common forms of a placement constraint against a node (node.id, node.hostname,
    node.role, node.labels.X, node.platform.os, with == or !=). An unknown form holds: Swarm
    itself has the last word when it schedules."""
    op = "!=" if "!=" in constraint else "=="
    key, _, want = (part.strip() for part in constraint.partition(op))
    spec, desc = node.get("Spec", {}), node.get("Description", {})
    values = {
        "node.id": node.get("ID"),
        "node.hostname": desc.get("Hostname"),
        "node.role": spec.get("Role"),
        "node.platform.os": desc.get("Platform", {}).get("OS"),
    }
    if key.startswith("node.labels."):
        have = (spec.get("Labels") or {}).get(key.removeprefix("node.labels."))
    elif key in values:
        have = values[key]
    else:
        return True
    return (have == want) if op == "==" else (have != want)


class Delivery(Cluster, Images):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pushed: dict[str, str] = {}  # local image id -> the registry reference it has there

    def _deliver(self, spec: ContainerSpec) -> tuple[str, sp.CodeConfig | None]:
        """(the image the task runs, the code's config or None)."""
        config = sp.config_for(spec)
        image = spec.image
        if config is not None:
            config = self._ensure_config(spec, config)
        elif spec.app_volume and spec.files:
            image = self._code_image(spec)
        return self._publish(image), config

    def _ensure_config(self, spec: ContainerSpec, config: sp.CodeConfig) -> sp.CodeConfig:
        found = self.client.api.configs(filters={"name": config.name})
        for c in found:
            if c.get("Spec", {}).get("Name") == config.name:
                return sp.CodeConfig(config.name, config.path, config.data, str(c["ID"]))
        labels = {
            **names.base_labels(self.instance, spec.owner, spec.name),
            names.LABEL_KIND: sp.KIND_CONFIG,
        }
        try:
            made = self.client.api.create_config(config.name, config.data, labels=labels)
        except docker.errors.APIError as e:
            if e.status_code != 409:  # 409: a redelivered command made it a moment ago
                raise
            return self._ensure_config(spec, config)
        return sp.CodeConfig(config.name, config.path, config.data, str(made["ID"]))

    def _code_image(self, spec: ContainerSpec) -> str:
        base_id = self._image_id(spec.image) or spec.image
        h = hashlib.sha256(base_id.encode())
        for path, data in sorted(spec.files.items()):
            h.update(path.encode() + b"\0" + hashlib.sha256(data).digest())
        tag = f"{CODE_REPO}:{h.hexdigest()[:16]}"
        ctx = BuildContext(
            dockerfile=sp.code_image_dockerfile(spec.image),
            files={f"app/{p}": d for p, d in spec.files.items()},
        )
        labels = {names.LABEL_INSTANCE: self.instance, names.LABEL_OWNER: str(spec.owner)}
        self._build(ImageBuild(ctx, tag, CODE_BUILD, labels), threading.Event())
        return tag

    def _publish(self, image: str) -> str:
        """With a registry: the image pushed there, by the name services pull. Else the local one."""
        if not self.registry:
            return image
        image_id = self._image_id(image)
        if image_id is None:
            raise BuildFailed(f"image {image} is not on this node, so it cannot be pushed")
        if image_id in self._pushed:
            return self._pushed[image_id]
        repo, _, tag = image.rpartition(":")
        if not repo or "/" in tag:
            repo, tag = image, "latest"
        first, _, rest = repo.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            repo = rest  # it names a registry already: keep only the path
        ref_repo = f"{self.registry}/{repo}"
        self.client.api.tag(image_id, ref_repo, tag)
        for line in self.client.api.push(ref_repo, tag, stream=True, decode=True):
            if "error" in line:
                raise BuildFailed(f"pushing {ref_repo}:{tag} to RUNNER_REGISTRY failed: {line['error']}")
        ref = f"{ref_repo}:{tag}"
        self._pushed[image_id] = ref
        log.info("pushed %s as %s", image, ref)
        return ref

    def _prune_configs(self, owner: int | None, name: str | None, keep: set[str]) -> None:
        """Remove this instance's code configs no service uses any more (one bot's, or all)."""
        flt = [f"{names.LABEL_INSTANCE}={self.instance}", f"{names.LABEL_KIND}={sp.KIND_CONFIG}"]
        if owner is not None and name is not None:
            flt += [f"{names.LABEL_OWNER}={owner}", f"{names.LABEL_BOT}={name}"]
        for c in self.client.api.configs(filters={"label": flt}):
            if c["ID"] in keep or c.get("Spec", {}).get("Name") in keep:
                continue
            # Swarm refuses while a service still refers to it: then a later sweep removes it.
            with contextlib.suppress(docker.errors.APIError):
                self.client.api.remove_config(c["ID"])

    def _place(self, pinned: str | None) -> str | None:
        """The node a new bot's /data lives on: where it was, or the least used node that meets
        RUNNER_PLACEMENT (this one when it does, on a tie)."""
        if pinned:
            return pinned
        nodes = [
            n
            for n in self.client.api.nodes()
            if n.get("Status", {}).get("State") == "ready"
            and n.get("Spec", {}).get("Availability") == "active"
            and all(constraint_holds(c, n) for c in self.placement)
        ]
        if not nodes:
            return None  # Swarm keeps the task pending and says why in its status
        load: dict[str, int] = {}
        flt = {"label": [f"{names.LABEL_INSTANCE}={self.instance}", f"{names.LABEL_KIND}={sp.KIND_SERVICE}"]}
        for s in self.client.api.services(filters=flt):
            for c in s["Spec"]["TaskTemplate"].get("Placement", {}).get("Constraints") or []:
                if c.startswith("node.id=="):
                    load[c.removeprefix("node.id==")] = load.get(c.removeprefix("node.id=="), 0) + 1
        me = self.local_node()
        best = min(nodes, key=lambda n: (load.get(n["ID"], 0), n["ID"] != me, n["ID"]))
        return str(best["ID"])
