"""The test rig itself: the services scripts/test.sh provides really answer."""

from __future__ import annotations

import re
import secrets
import socket
import time
from collections.abc import Callable

import docker
import pytest
from redis.asyncio import Redis

from tests.fixtures.services import (
    INSTANCE_LABEL,
    NAME_RE,
    TEST_LABEL,
    _doomed,
    cleanup_docker,
    free_port,
)

pytestmark = pytest.mark.integration


async def test_redis_answers(redis_client: Redis, unique_name: Callable[[str], str]) -> None:
    assert await redis_client.ping()
    key = f"rig:{unique_name('key')}"
    await redis_client.set(key, b"1", ex=10)
    assert await redis_client.get(key) == b"1"
    await redis_client.delete(key)


def test_docker_answers(docker_client: docker.DockerClient) -> None:
    assert docker_client.ping()


def test_base_image_runs_python(
    docker_client: docker.DockerClient,
    base_image: str,
    docker_labels: dict[str, str],
    unique_name: Callable[[str], str],
) -> None:
    out = docker_client.containers.run(
        base_image,
        ["python3", "-c", "print(1)"],
        name=unique_name("rig"),
        network_mode="host",
        labels=docker_labels,
        remove=True,
    )
    assert out == b"1\n"


def test_unique_names_are_valid_and_distinct(unique_name: Callable[[str], str]) -> None:
    names = [unique_name("Echo Bot!") for _ in range(200)] + [unique_name("x" * 60)]
    assert len(set(names)) == len(names)
    assert all(NAME_RE.match(n) for n in names)
    assert re.fullmatch(r"echo-bot-[0-9a-f]{4}", names[0])


def test_free_port_is_bindable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port()))


def test_cleanup_removes_a_sessions_objects_but_not_the_runtime_cache(
    docker_client: docker.DockerClient, base_image: str, unique_name: Callable[[str], str]
) -> None:
    other = f"t{secrets.token_hex(3)}"
    labels = {INSTANCE_LABEL: other}
    volume = docker_client.volumes.create(unique_name("rig"), labels=labels)
    network = docker_client.networks.create(unique_name("rig"), labels=labels, internal=True)
    container = docker_client.containers.create(base_image, ["true"], labels=labels, network_mode="none")
    image = container.commit("botrunner-test/rig", unique_name("rig"))
    cached = container.commit("botrunner/runtime", unique_name("rig"))
    try:
        assert image.labels[INSTANCE_LABEL] == other
        removed = cleanup_docker(docker_client, other)
        assert {r.split()[0] for r in removed} == {"container", "image", "volume", "network"}
        for coll, ident in [
            (docker_client.volumes, volume.id),
            (docker_client.networks, network.id),
            (docker_client.containers, container.id),
            (docker_client.images, image.id),
        ]:
            with pytest.raises(docker.errors.NotFound):
                coll.get(ident)
        docker_client.images.get(cached.id)
    finally:
        docker_client.images.remove(cached.id, force=True)


def test_cleanup_takes_stale_leftovers_only() -> None:
    now, hours_ago = time.time(), lambda h: time.time() - h * 3600
    assert _doomed({INSTANCE_LABEL: "t000001"}, now, "t000001", now)
    assert _doomed({TEST_LABEL: "1"}, hours_ago(2), "t000001", now)
    assert _doomed({INSTANCE_LABEL: "tabcdef"}, "2001-01-01T00:00:00.123456789Z", "t000001", now)
    assert not _doomed({INSTANCE_LABEL: "tabcdef"}, hours_ago(0.5), "t000001", now)
    assert not _doomed({INSTANCE_LABEL: "prod"}, hours_ago(2), "t000001", now)
    assert not _doomed(None, hours_ago(2), "t000001", now)
