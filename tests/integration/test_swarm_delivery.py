"""Swarm code delivery against a real swarm: a tree becomes an image, and with RUNNER_REGISTRY
(a registry on loopback here) the service runs the image by its name in that registry."""

from __future__ import annotations

import secrets

import docker
import pytest

from runner.backend.base import ContainerSpec
from runner.backend.swarm import SwarmBackend
from tests.fixtures.services import TEST_LABEL
from tests.integration.helpers import eventually

pytestmark = pytest.mark.integration

MAIN = b"import helper\nprint('tree says', helper.WORD, flush=True)\nimport time\ntime.sleep(600)\n"


async def test_a_tree_through_the_registry(
    swarm_manager: str,
    local_registry: str,
    base_image: str,
    swarm_instance: str,
    docker_client: docker.DockerClient,
) -> None:
    backend = SwarmBackend(
        instance=f"{swarm_instance}-reg", network_mode="host", restart_max=0, registry=local_registry
    )
    await backend.prepare()
    owner, name = 700_000_000 + secrets.randbelow(99_999_999), f"tree-{secrets.token_hex(2)}"
    spec = ContainerSpec(
        owner=owner,
        name=name,
        image=base_image,
        command=["python3", "main.py"],
        env={},
        files={"main.py": MAIN, "helper.py": b"WORD = 'from-a-tree'\n"},
        request_id="req-tree",
        memory_bytes=128 << 20,
        cpu=0.5,
        pids=64,
        labels={TEST_LABEL: "1"},
    )
    try:
        info = await backend.deploy(spec)
        assert info.running, info
        assert info.image.startswith(f"{local_registry}/botrunner/code:"), info.image
        assert info.node == swarm_manager  # /data lives here: the service is pinned to this node
        service = docker_client.api.inspect_service(f"botrunner-{owner}-{name}")
        constraints = service["Spec"]["TaskTemplate"]["Placement"]["Constraints"]
        assert f"node.id=={swarm_manager}" in constraints
        assert "Configs" not in service["Spec"]["TaskTemplate"]["ContainerSpec"]  # a tree: no config

        async def said() -> bool:
            return "tree says from-a-tree" in await backend.logs(owner, name, 10, None)

        await eventually(said, timeout=20)
    finally:
        await backend.remove(owner, name, volumes=True)
        for image in docker_client.images.list(name=f"{local_registry}/botrunner/code"):
            for tag in image.tags:
                docker_client.images.remove(tag)
