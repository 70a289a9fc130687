"""What git mode refuses, before anything is cloned, and what it never echoes back."""

from __future__ import annotations

import asyncio
import io
import json
import os
import secrets
import stat
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from protocol import keys
from protocol.client import RunnerClient
from protocol.errors import ErrorCode
from protocol.models import Command, Op, SourceKind, SourceSpec, notes_text
from protocol.sealing import SEALED_PREFIX
from tests.fixtures.git_server import PRIVATE_PASSWORD, Deploys, GitServer, owner_id, sleeper, zip_bytes
from tests.fixtures.runner import RunnerProcess
from tests.integration.helpers import call, containers_of

pytestmark = pytest.mark.integration


def refused_urls(git_server: GitServer, repo: str, marker: Path) -> list[str]:
    bare = git_server.root / f"{repo}.git"
    return [
        f"file://{bare}",
        str(bare),
        f"{repo}.git",
        f"ext::sh -c touch% {marker}",
        f"--upload-pack=touch {marker}",
        f"-u touch {marker} {git_server.http_url(repo)}",
        f"git@127.0.0.1:{repo}.git",
        f"ssh://git@127.0.0.1:{git_server.git_port}/{repo}.git",
        f"ftp://127.0.0.1/{repo}.git",
        f"fd::3/{repo}",
    ]


async def assert_nothing_deployed(client: RunnerClient, owner: int, name: str, docker_client: Any) -> None:
    listed = await call(client, Op.LIST, owner)
    assert listed.quota is not None and listed.quota.used == 0, "a refused deploy took a slot"
    assert containers_of(docker_client, owner, name) == []


async def test_dangerous_urls_and_branches_are_refused_before_any_clone(
    runner: RunnerProcess,
    runner_client: RunnerClient,
    git_server: GitServer,
    docker_client: Any,
    unique_name: Any,
    tmp_path: Path,
) -> None:
    repo = unique_name("refuse")
    git_server.create(repo, {"main.py": sleeper("must not run")})
    marker = tmp_path / "pwned"
    owner, name = owner_id(), unique_name("refused")
    log_start = len(runner.log_text())
    cases = [SourceSpec(kind=SourceKind.GIT, git_url=url) for url in refused_urls(git_server, repo, marker)]
    cases += [
        SourceSpec(
            kind=SourceKind.GIT, git_url=git_server.http_url(repo), branch=f"--upload-pack=touch {marker}"
        ),
        SourceSpec(kind=SourceKind.GIT, git_url=git_server.http_url(repo), branch="-b"),
        SourceSpec(kind=SourceKind.GIT, git_url=git_server.http_url(repo), commit="--all"),
    ]
    for spec in cases:
        res = await runner_client.call(Command(op=Op.START, owner=owner, name=name, source=spec))
        assert not res.ok and res.error is not None, spec
        assert res.error.code is ErrorCode.GIT_REFUSED, (spec, res.error)
        assert res.error.message and "Traceback" not in res.error.message
    assert not marker.exists()
    assert git_server.http_requests(repo) == []  # nothing was fetched
    assert "cloning" not in runner.log_text()[log_start:]
    await assert_nothing_deployed(runner_client, owner, name, docker_client)


async def test_only_the_configured_schemes_are_allowed(
    runner_factory: Any, git_server: GitServer, unique_name: Any
) -> None:
    proc = runner_factory(GIT_ALLOWED_SCHEMES="https").start()
    client = Redis.from_url(proc.redis_url)
    try:
        rc = RunnerClient(client)
        repo = unique_name("https-only")
        git_server.create(repo, {"main.py": sleeper("must not run")})
        for url in (git_server.http_url(repo), git_server.git_url(repo)):
            spec = SourceSpec(kind=SourceKind.GIT, git_url=url)
            res = await rc.call(Command(op=Op.START, owner=owner_id(), name=unique_name("x"), source=spec))
            assert res.error is not None and res.error.code is ErrorCode.GIT_REFUSED
            assert "use one of: https://" in res.error.message
        assert git_server.http_requests(repo) == []
    finally:
        await client.aclose()


async def test_credentials_in_the_url_are_used_but_never_echoed(
    runner: RunnerProcess, deploys: Deploys, git_server: GitServer, unique_name: Any
) -> None:
    repo = unique_name("private")
    local = git_server.create(repo, {"main.py": sleeper("private v1")}, "private first")
    owner, name = owner_id(), unique_name("private")
    url = git_server.http_url(repo, private=True)
    assert PRIVATE_PASSWORD in url

    res = await deploys.git(owner, name, url)
    assert res.ok, res.error
    assert res.bot is not None and res.bot.source.git_url == git_server.http_url(repo).replace(
        f"/{repo}.git", f"/private/{repo}.git"
    )
    assert PRIVATE_PASSWORD not in res.model_dump_json()
    await deploys.logs_contain(owner, name, "private v1")

    # The pull uses the recorded credentials; nothing shows them.
    sha = local.commit({"main.py": sleeper("private v2")}, "private second")
    res = await deploys.run(Op.UPDATE, owner, name, pull=True)
    assert res.ok, res.error
    assert res.bot is not None and res.bot.source.commit == sha
    status = await call(deploys.client, Op.STATUS, owner, name)
    listed = await call(deploys.client, Op.LIST, owner)
    assert PRIVATE_PASSWORD not in status.model_dump_json() + listed.model_dump_json()
    # At rest the record keeps the URL sealed (#10), yet the pull above could open it.
    record = await deploys.client.redis.get(keys.bot(owner, name))
    assert record is not None and PRIVATE_PASSWORD.encode() not in record
    assert json.loads(record)["git_url"].startswith(SEALED_PREFIX)

    # Wrong credentials: a clear failure that does not repeat them either.
    wrong = git_server.http_url(repo, private=True, password="wrong-password-123")
    res = await deploys.git(owner_id(), unique_name("wrong"), wrong)
    assert res.error is not None and res.error.code is ErrorCode.GIT_FAILED
    assert "wrong-password-123" not in res.model_dump_json()
    assert "could not read the repository" in res.error.message
    assert PRIVATE_PASSWORD not in runner.log_text() and "wrong-password-123" not in runner.log_text()


async def test_entry_point_rules(
    deploys: Deploys, git_server: GitServer, docker_client: Any, unique_name: Any
) -> None:
    repo = unique_name("noentry")
    git_server.create(
        repo,
        {"src/app.py": sleeper("src app up"), "README.md": "no main here\n"},
        symlinks={"outside.py": "/etc/hostname"},
    )
    owner, name = owner_id(), unique_name("noentry")
    url = git_server.git_url(repo)

    res = await deploys.git(owner, name, url)
    assert res.error is not None and res.error.code is ErrorCode.INVALID_SOURCE
    assert "__main__.py, main.py, bot.py" in res.error.message and "--entrypoint" in res.error.message
    for bad in ("../src/app.py", "/etc/hostname", "src/../../x.py", "outside.py", "missing.py"):
        res = await deploys.git(owner, name, url, entrypoint=bad)
        assert res.error is not None and res.error.code is ErrorCode.INVALID_SOURCE, bad
    await assert_nothing_deployed(deploys.client, owner, name, docker_client)

    res = await deploys.git(owner, name, url, entrypoint="./src/app.py")
    assert res.ok, res.error
    assert notes_text(res.notes) == "entry point: src/app.py; ignored 1 symlink(s) leading outside"
    await deploys.logs_contain(owner, name, "src app up")


def _zip_with(entries: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return buf.getvalue()


async def test_zip_slip_and_symlinks_in_archives_are_refused(
    deploys: Deploys, docker_client: Any, unique_name: Any
) -> None:
    link = zipfile.ZipInfo("bot/link.py")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archives = {
        "slip": _zip_with(
            [(zipfile.ZipInfo("main.py"), b"print(1)\n"), (zipfile.ZipInfo("../evil.py"), b"x")]
        ),
        "deep slip": _zip_with([(zipfile.ZipInfo("bot/../../evil.py"), b"x")]),
        "absolute": _zip_with([(zipfile.ZipInfo("/etc/evil.py"), b"x")]),
        "symlink": _zip_with([(zipfile.ZipInfo("bot/main.py"), b"print(1)\n"), (link, b"/etc/passwd")]),
        "not a zip": b"PK\x03\x04 definitely not",
    }
    owner, name = owner_id(), unique_name("zipslip")
    for what, payload in archives.items():
        res = await deploys.run(
            Op.START, owner, name, payload, source=SourceSpec(kind=SourceKind.ZIP, filename="b.zip")
        )
        assert res.error is not None and res.error.code is ErrorCode.INVALID_SOURCE, what
    await assert_nothing_deployed(deploys.client, owner, name, docker_client)

    ok = zip_bytes({"main.py": sleeper("zip ok"), "lib/util.py": "X = 1\n"})
    res = await deploys.run(
        Op.START, owner, name, ok, source=SourceSpec(kind=SourceKind.ZIP, filename="b.zip")
    )
    assert res.ok, res.error
    assert notes_text(res.notes) == "entry point: main.py"
    await deploys.logs_contain(owner, name, "zip ok")


async def test_clone_time_and_size_limits(
    runner_factory: Any, git_server: GitServer, unique_name: Any
) -> None:
    proc = runner_factory(GIT_CLONE_TIMEOUT="2", GIT_MAX_REPO_BYTES="256k").start()
    client = Redis.from_url(proc.redis_url)
    try:
        rc = RunnerClient(client)
        big = unique_name("big")
        git_server.create(big, {"main.py": sleeper("big"), "blob.bin": os.urandom(600_000)})
        small = unique_name("small")
        git_server.create(small, {"main.py": sleeper("small")})
        owner = owner_id()

        async def start(url: str) -> Any:
            spec = SourceSpec(kind=SourceKind.GIT, git_url=url)
            return await rc.call(Command(op=Op.START, owner=owner, name=unique_name("lim"), source=spec))

        res = await start(git_server.git_url(big))
        assert res.error is not None and res.error.code is ErrorCode.GIT_FAILED
        assert res.error.message == "the repository is larger than 256 KB, the limit of this runner"
        t0 = time.monotonic()
        res = await start(git_server.slow_url(small))
        assert res.error is not None and res.error.code is ErrorCode.GIT_FAILED
        assert res.error.message == "the clone took longer than 2 s"
        assert time.monotonic() - t0 < 8
        res = await start(git_server.git_url(small))
        assert res.ok, res.error
        listed = await call(rc, Op.LIST, owner)
        assert listed.quota is not None and listed.quota.used == 1
    finally:
        await client.aclose()


async def test_sigterm_during_a_long_build_exits_in_bounded_time(
    runner_factory: Any, git_server: GitServer, docker_client: Any, base_image: str, unique_name: Any
) -> None:
    """A build runs in a thread no one can cancel: the runner must not wait for it to finish."""
    marker = secrets.token_hex(4)
    repo = unique_name("slowbuild")
    dockerfile = f'FROM {base_image}\nRUN echo {marker} && sleep 120\nCMD ["python3", "-c", "1"]\n'
    git_server.create(repo, {"Dockerfile": dockerfile})
    proc = runner_factory().start()
    client = Redis.from_url(proc.redis_url)
    try:
        spec = SourceSpec(kind=SourceKind.GIT, git_url=git_server.git_url(repo))
        await RunnerClient(client).submit(
            Command(op=Op.START, owner=owner_id(), name=unique_name("slow"), source=spec, admin=True)
        )

        def building() -> list[Any]:
            # The low-level list inspects nothing, so a build container vanishing meanwhile is fine.
            return [c for c in docker_client.api.containers(all=True) if marker in (c.get("Command") or "")]

        deadline = time.monotonic() + 60
        while not building():
            assert time.monotonic() < deadline, "the build never started"
            await asyncio.sleep(0.2)
        t0 = time.monotonic()
        assert proc.stop(timeout=40) == 0
        assert time.monotonic() - t0 < 30  # the drain timeout, not the 120 s build
        deadline = time.monotonic() + 20
        while building():  # dockerd cancels a legacy build whose client went away
            assert time.monotonic() < deadline, "the build container outlived the runner"
            await asyncio.sleep(0.5)
    finally:
        await client.aclose()
