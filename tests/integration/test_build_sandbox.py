"""Builds in the bots' sandbox, played as a hostile member against the real runner and Docker.

- an sdist's setup.py runs as a non-root user without capabilities and with no-new-privileges;
- a Dockerfile with `ADD http://…` is refused before any build (dockerd would fetch it from the
  host, so it could read the host's loopback);
- RUNNER_DOCKERFILE_POLICY: admins (default), off;
- a clone runs in a job container, never in the runner.
"""

from __future__ import annotations

import io
import secrets
import tarfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import docker
import pytest
from redis.asyncio import Redis

from protocol.client import RunnerClient
from protocol.errors import ErrorCode
from protocol.models import Command, Op, SourceKind, SourceSpec
from tests.fixtures.git_server import Deploys, GitServer, owner_id
from tests.integration.helpers import containers_of

pytestmark = pytest.mark.integration

_SETUP_PY = """\
import os
status = open('/proc/self/status').read()
fields = dict(line.split(':', 1) for line in status.splitlines() if ':' in line)
raise SystemExit(
    'PROBE uid=%d CapEff=%s NoNewPrivs=%s END'
    % (os.getuid(), fields['CapEff'].strip(), fields['NoNewPrivs'].strip())
)
"""


class FileServer:
    """Serves bytes by path on 127.0.0.1 and records every request."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                data = server.files.get(self.path)
                self.send_response(200 if data is not None else 404)
                self.send_header("Content-Length", str(len(data or b"")))
                self.end_headers()
                self.wfile.write(data or b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    server = FileServer()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def sdist(name: str, setup_py: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, text in {
            f"{name}-1.0/setup.py": setup_py,
            f"{name}-1.0/PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        }.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


async def test_an_sdists_setup_py_runs_without_root_or_capabilities(
    deploys: Deploys, file_server: FileServer, unique_name: Any
) -> None:
    pkg = f"probe{secrets.token_hex(4)}"
    file_server.files[f"/{pkg}-1.0.tar.gz"] = sdist(pkg, _SETUP_PY)
    line = f"{pkg} @ {file_server.url(f'/{pkg}-1.0.tar.gz')}"
    code = f"# /// script\n# dependencies = ['{line}']\n# ///\nprint('never')\n"
    owner, name = owner_id(), unique_name("probe")
    res = await deploys.run(
        Op.START, owner, name, code.encode(), source=SourceSpec(kind=SourceKind.FILE, filename="p.py")
    )
    assert not res.ok and res.error is not None and res.error.code is ErrorCode.BUILD_FAILED, res
    assert file_server.requests, "pip never fetched the sdist"
    detail = res.error.detail or ""
    assert "PROBE uid=" in detail, detail[-3000:]
    probe = detail.split("PROBE ", 1)[1].split(" END", 1)[0]
    fields = dict(part.split("=", 1) for part in probe.split())
    assert fields["uid"] != "0", probe
    assert fields["CapEff"] == "0000000000000000", probe
    assert fields["NoNewPrivs"] == "1", probe


async def test_a_dockerfile_with_add_url_is_refused_before_any_build(
    deploys: Deploys,
    git_server: GitServer,
    file_server: FileServer,
    docker_client: docker.DockerClient,
    base_image: str,
    unique_name: Any,
) -> None:
    """Under the legacy builder dockerd itself downloads ADD URLs, from the host's network."""
    secret = f"host-only-{secrets.token_hex(4)}"
    file_server.files["/secret"] = secret.encode()
    dockerfile = (
        f"FROM {base_image}\nADD {file_server.url('/secret')} /srv/secret\n"
        'CMD ["python3", "-c", "print(open(\'/srv/secret\').read())"]\n'
    )
    repo = unique_name("addurl")
    git_server.create(repo, {"Dockerfile": dockerfile})
    owner, name = owner_id(), unique_name("addurl")
    res = await deploys.git(owner, name, git_server.git_url(repo), admin=True)
    assert not res.ok and res.error is not None, "the ADD URL Dockerfile was built"
    assert res.error.code is ErrorCode.INVALID_SOURCE
    assert "ADD with a URL is not allowed" in res.error.message
    assert "building" not in deploys.stages
    assert file_server.requests == []
    assert containers_of(docker_client, owner, name) == []


async def test_dockerfile_policy_admins_by_default(
    deploys: Deploys, git_server: GitServer, base_image: str, unique_name: Any
) -> None:
    marker = secrets.token_hex(4)
    dockerfile = (
        f'FROM {base_image}\nCMD ["python3", "-c", "print(\'own {marker}\'); import time; time.sleep(600)"]\n'
    )
    repo = unique_name("policy")
    git_server.create(repo, {"Dockerfile": dockerfile})
    owner = owner_id()
    res = await deploys.git(owner, unique_name("member"), git_server.git_url(repo))
    assert not res.ok and res.error is not None
    assert res.error.code is ErrorCode.DOCKERFILE_NOT_ALLOWED
    assert "Dockerfile" in res.error.message and "An admin can allow it" in res.error.message
    assert "building" not in deploys.stages

    name = unique_name("admin")
    res = await deploys.git(owner, name, git_server.git_url(repo), admin=True)
    assert res.ok, res.error
    await deploys.logs_contain(owner, name, f"own {marker}")


async def test_dockerfile_policy_off_refuses_admins_too(
    runner_factory: Any, git_server: GitServer, base_image: str, unique_name: Any
) -> None:
    repo = unique_name("off")
    git_server.create(repo, {"Dockerfile": f"FROM {base_image}\n"})
    proc = runner_factory(RUNNER_DOCKERFILE_POLICY="off").start()
    client = Redis.from_url(proc.redis_url)
    try:
        spec = SourceSpec(kind=SourceKind.GIT, git_url=git_server.git_url(repo))
        cmd = Command(op=Op.START, owner=owner_id(), name=unique_name("off"), source=spec, admin=True)
        res = await RunnerClient(client).call(cmd, timeout=120)
        assert res.error is not None and res.error.code is ErrorCode.DOCKERFILE_NOT_ALLOWED
        assert "RUNNER_DOCKERFILE_POLICY=off" in res.error.message
    finally:
        await client.aclose()


async def test_a_clone_runs_in_a_sandboxed_job_container(
    deploys: Deploys,
    git_server: GitServer,
    docker_client: docker.DockerClient,
    test_session_id: str,
    unique_name: Any,
) -> None:
    repo = unique_name("jobclone")
    git_server.create(
        repo, {"main.py": "print('cloned in a job', flush=True)\nimport time\ntime.sleep(600)\n"}
    )
    since = int(time.time()) - 1
    owner, name = owner_id(), unique_name("jobclone")
    res = await deploys.git(owner, name, git_server.git_url(repo))
    assert res.ok, res.error
    await deploys.logs_contain(owner, name, "cloned in a job")
    until = int(time.time()) + 1
    filters = {
        "type": "container",
        "event": "create",
        "label": ["botrunner.kind=job", f"botrunner.instance={test_session_id}"],
    }
    events = list(docker_client.events(since=since, until=until, filters=filters, decode=True))
    images = [str(e.get("Actor", {}).get("Attributes", {}).get("image", "")) for e in events]
    # The runner runs on the host here, so clones run from the image it built with git in it.
    assert any(image.startswith("botrunner/tools:") for image in images), events
