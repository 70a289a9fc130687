"""Dependency images: PEP 723 single files, failed installs, and pruning of the cache."""

from __future__ import annotations

import contextlib
import io
import secrets
import tarfile
import threading
import time
from typing import Any

import docker
import docker.errors
import pytest
from redis.asyncio import Redis

from protocol import keys
from protocol.client import RunnerClient
from protocol.errors import ErrorCode
from protocol.models import Op, SourceKind, SourceSpec, notes_text
from runner.backend.docker import DockerBackend
from runner.builds.prune import prune
from tests.fixtures.git_server import Deploys, GitServer, owner_id
from tests.integration.helpers import call, containers_of, eventually

pytestmark = pytest.mark.integration


async def test_pep723_single_file_gets_its_dependencies(
    deploys: Deploys, unique_name: Any, test_session_id: str
) -> None:
    dep = f'tomli==2.0.1; os_name != "{test_session_id}"'
    code = (
        "# /// script\n"
        "# requires-python = '>=3.11'\n"
        f"# dependencies = [\n#   '{dep}',\n# ]\n"
        "# ///\n"
        "import tomli\nprint('tomli', tomli.loads('a = 1')['a'], flush=True)\n"
        "import time\ntime.sleep(600)\n"
    )
    owner, name = owner_id(), unique_name("pep723")
    spec = SourceSpec(kind=SourceKind.FILE, filename="inline.py")
    res = await deploys.run(Op.START, owner, name, code.encode(), source=spec)
    assert res.ok, res.error
    assert notes_text(res.notes) == "dependencies: installed (1)"
    assert deploys.stages[0] == "installing" and deploys.stages[-1] == "starting"
    assert res.bot is not None and res.bot.source.dependencies == [dep]
    assert res.bot.image is not None and res.bot.image.startswith("botrunner/deps:")
    await deploys.logs_contain(owner, name, "tomli 1")

    # A plain file, and one whose metadata declares nothing, stay on the runtime image: no build.
    for extra in (b"", b"# /// script\n# dependencies = []\n# ///\n"):
        plain = unique_name("plain")
        res = await deploys.run(Op.START, owner, plain, extra + b"print('plain')\n", source=spec)
        assert res.ok, res.error
        assert notes_text(res.notes) is None and deploys.stages == ["starting"]
        assert res.bot is not None and res.bot.image is not None
        assert res.bot.image.startswith("botrunner/runtime:")


async def test_a_failed_install_is_build_failed_with_the_log_tail_and_takes_no_slot(
    deploys: Deploys, git_server: GitServer, docker_client: docker.DockerClient, unique_name: Any
) -> None:
    missing = f"botrunner-no-such-package-{secrets.token_hex(4)}==0.0.1"
    repo = unique_name("baddeps")
    git_server.create(repo, {"requirements.txt": f"{missing}\n", "main.py": "print('never')\n"})
    owner, name = owner_id(), unique_name("baddeps")
    res = await deploys.git(owner, name, git_server.git_url(repo))
    assert not res.ok and res.error is not None
    assert res.error.code is ErrorCode.BUILD_FAILED
    assert res.error.detail is not None and missing.split("==")[0] in res.error.detail
    assert "No matching distribution" in res.error.detail or "ERROR" in res.error.detail
    assert "$ pip install -r requirements.txt" in res.error.detail  # the whole log, for the chat's .txt
    assert "installing" in deploys.stages
    listed = await call(deploys.client, Op.LIST, owner)
    assert listed.quota is not None and listed.quota.used == 0
    assert containers_of(docker_client, owner, name) == []


def _tiny_image(client: docker.DockerClient, base: str, tag: str, labels: dict[str, str]) -> None:
    dockerfile = f"FROM {base}\nRUN head -c 300000 /dev/urandom > /blob\n".encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    buf.seek(0)
    client.images.build(
        fileobj=buf, custom_context=True, tag=tag, labels=labels, rm=True, nocache=True, network_mode="host"
    )


async def test_prune_removes_least_recently_used_unreferenced_images(
    docker_client: docker.DockerClient, base_image: str, docker_labels: dict[str, str], test_session_id: str
) -> None:
    backend = DockerBackend(instance=test_session_id, network_mode="host", restart_max=0)
    stem = f"botrunner/deps:test-{secrets.token_hex(3)}"
    old, older, kept, busy = (f"{stem}-{n}" for n in ("old", "older", "kept", "busy"))
    for tag in (old, older, kept, busy):
        _tiny_image(docker_client, base_image, tag, docker_labels)
    container = docker_client.containers.create(busy, ["true"], labels=docker_labels)
    now = time.time()
    last_used = {older: now - 400, old: now - 300, kept: now - 500, busy: now - 600, f"{stem}-gone": now - 50}
    try:
        removed, forgotten = await prune(backend, last_used, keep={kept}, cap_bytes=0, grace=0)
        assert removed == [older, old]  # least recently used first; kept is referenced, busy in use
        assert forgotten == [f"{stem}-gone"]
        for tag in (kept, busy):
            docker_client.images.get(tag)
        for tag in (old, older):
            with pytest.raises(docker.errors.ImageNotFound):
                docker_client.images.get(tag)

        # Under the cap nothing goes; a recent use is protected by the grace period.
        assert await prune(backend, {kept: now - 500}, keep=set(), cap_bytes=1 << 40, grace=0) == ([], [])
        assert await prune(backend, {kept: now}, keep=set(), cap_bytes=0, grace=600) == ([], [])
    finally:
        container.remove(force=True)
        for tag in (old, older, kept, busy):
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(tag, force=True)


async def test_disk_usage_waits_out_a_df_that_is_already_running(
    docker_client: docker.DockerClient, base_image: str, docker_labels: dict[str, str], test_session_id: str
) -> None:
    """The engine runs one `docker system df` at a time and answers any other 500 "a disk usage
    operation is already running". Pruning's image sizes and the disk quota's volume sizes must wait
    for it, as when a user (or another runner) runs `docker system df` meanwhile."""
    backend = DockerBackend(instance=test_session_id, network_mode="host", restart_max=0)
    tag = f"botrunner/deps:test-{secrets.token_hex(3)}"
    _tiny_image(docker_client, base_image, tag, docker_labels)
    done = threading.Event()
    clashes: list[str] = []

    def someone_elses_df() -> None:
        # Busy about half the time: a call made without waiting fails about every other time.
        while not done.is_set():
            began = time.monotonic()
            try:
                docker_client.api.df()
            except docker.errors.APIError as e:
                clashes.append(str(e))
            time.sleep(max(0.02, time.monotonic() - began))

    others = [threading.Thread(target=someone_elses_df, daemon=True)]
    for t in others:
        t.start()
    try:
        for _ in range(10):
            assert (await backend.image_usage(("botrunner/deps",))).get(tag, -1) >= 0
            await backend.volume_usage()
    finally:
        done.set()
        for t in others:
            t.join(timeout=60)
        docker_client.images.remove(tag, force=True)
    assert any("already running" in c for c in clashes)  # the engine did refuse concurrent ones


async def test_runner_prunes_unused_dependency_images_least_recently_used_first(
    runner_factory: Any, docker_client: docker.DockerClient, unique_name: Any, test_session_id: str
) -> None:
    """A runner with a 1-byte cache: after each build, unused images older than the grace go."""
    proc = runner_factory(RUNNER_IMAGE_CACHE_BYTES="1").start()
    redis = Redis.from_url(proc.redis_url)
    client = RunnerClient(redis)
    deploys = Deploys(client)
    tags: dict[str, str] = {}
    try:
        owner = owner_id()
        for which in ("unused", "running", "new"):
            code = (
                f"# /// script\n# dependencies = ['six==1.16.0; os_name != \"{test_session_id}-{which}\"']\n"
                f"# ///\nprint('{which}', flush=True)\nimport time\ntime.sleep(600)\n"
            )
            name = unique_name(which)
            spec = SourceSpec(kind=SourceKind.FILE, filename="bot.py")
            res = await deploys.run(Op.START, owner, name, code.encode(), source=spec)
            assert res.ok and res.bot is not None and res.bot.image is not None, res.error
            assert notes_text(res.notes) == "dependencies: installed (1)"
            tags[which] = res.bot.image
            if which == "unused":
                assert (await call(client, Op.DELETE, owner, name)).ok
            if which != "new":  # as if last used an hour ago: past the grace period
                await redis.hset(keys.IMAGE_CACHE, tags[which], str(time.time() - 3600))

        async def pruned() -> bool:
            try:
                docker_client.images.get(tags["unused"])
            except docker.errors.ImageNotFound:
                return True
            return False

        await eventually(pruned, timeout=30)
        docker_client.images.get(tags["running"])  # a bot record names it
        docker_client.images.get(tags["new"])  # just used
        cached = {k.decode() for k in await redis.hkeys(keys.IMAGE_CACHE)}
        assert cached == {tags["running"], tags["new"]}
        assert f"cache: pruned {tags['unused']}" in proc.log_text()
    finally:
        for owner, name in deploys.bots:
            await call(client, Op.DELETE, owner, name)
        await redis.aclose()
        for tag in tags.values():
            with contextlib.suppress(docker.errors.APIError):
                docker_client.images.remove(tag)
