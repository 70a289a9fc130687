"""Builds in the bots' sandbox: Dockerfile checks, the policy, the pip job, reading a clone's tar."""

from __future__ import annotations

import io
import tarfile

import pytest

from protocol.errors import BotrunnerError, ErrorCode, InvalidSource
from runner.backend.base import JobLimits
from runner.builds.clonejob import extract_tree
from runner.builds.dockerfile_check import check_dockerfile, registry_host, scan
from runner.builds.pipjob import pip_job
from runner.sources import check_policy


@pytest.mark.parametrize(
    "dockerfile",
    [
        "FROM python:3.12-slim\nADD http://127.0.0.1:8080/secret /s\n",
        "FROM python:3.12-slim\nADD --chown=1:1 https://example.com/x.tgz /x\n",
        'FROM python:3.12-slim\nADD ["http://169.254.169.254/latest/meta-data", "/m"]\n',
        "FROM python:3.12-slim\nRUN true\nADD \\\n  http://localhost/x \\\n  /x\n",
        "# escape=`\nFROM python:3.12-slim\nADD `\n  http://localhost/x /x\n",
        "FROM python:3.12-slim\nadd http://localhost/x /x\n",
    ],
)
def test_add_with_a_url_is_refused(dockerfile: str) -> None:
    with pytest.raises(InvalidSource, match="ADD with a URL"):
        scan(dockerfile)


@pytest.mark.parametrize(
    "dockerfile",
    [
        "FROM 127.0.0.1:5000/evil\n",
        "FROM localhost:5000/evil:1\n",
        "FROM [::1]:5000/evil\n",
        "ARG REG=10.0.0.1\nFROM ${REG}/evil\n",
        "FROM python:3.12-slim\nCOPY --from=127.0.0.1/evil /x /x\n",
        "FROM localhost/evil\n",
    ],
)
def test_private_registries_are_refused(dockerfile: str) -> None:
    with pytest.raises(InvalidSource, match=r"registry|local"):
        check_dockerfile(dockerfile)


def test_variables_without_a_default_are_refused() -> None:
    with pytest.raises(InvalidSource, match=r"\$REG has no default"):
        scan("ARG REG\nFROM $REG/evil\n")


def test_what_a_dockerfile_pulls() -> None:
    plan = scan(
        "ARG V=3.12\nFROM python:${V}-slim AS build\nRUN pip wheel x\n"
        "FROM build AS again\nFROM scratch\nCOPY --from=build /a /a\nCOPY --from=0 /b /b\n"
        "COPY --from=busybox:1 /bin/sh /sh\nADD local.tar.gz /x\n"
    )
    assert plan.bases == ["python:3.12-slim"]
    assert plan.copied_from == ["busybox:1"]
    assert registry_host("python:3.12") is None and registry_host("library/python") is None
    assert registry_host("ghcr.io/a/b") == "ghcr.io" and registry_host("reg:5000/x") == "reg:5000"


def test_dockerfile_policy() -> None:
    check_policy("everyone", False)
    check_policy("admins", True)
    for policy, admin in (("admins", False), ("off", True), ("off", False)):
        with pytest.raises(BotrunnerError) as e:
            check_policy(policy, admin)
        assert e.value.code is ErrorCode.DOCKERFILE_NOT_ALLOWED
        assert "Dockerfile" in str(e.value) and "An admin can allow it" in str(e.value)


def test_the_pip_job_is_sandboxed_and_committed() -> None:
    limits = JobLimits(network="botrunner-bots", timeout=60, memory_bytes=1 << 30, cpu=1.0, pids=256)
    spec = pip_job("botrunner/runtime:x", ["tomli==2.0.1"], "botrunner/deps:abc", limits)
    assert spec.user == "65534:65534" and not spec.read_only and spec.network == "botrunner-bots"
    assert spec.commit_to == "botrunner/deps:abc" and spec.pids == 256 and spec.timeout == 60
    assert spec.commit_config["User"] == "65534:65534" and spec.commit_config["WorkingDir"] == "/app"
    assert spec.files == {"botrunner-requirements.txt": b"tomli==2.0.1\n"}


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buf.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, mode
    return info


def test_a_clones_tar_is_read_like_a_tree() -> None:
    archive = _tar(
        [
            (_member("repo", tarfile.DIRTYPE), b""),
            (_member("repo/main.py"), b"print(1)\n"),
            (_member("repo/run.sh", mode=0o755), b"#!/bin/sh\n"),
            (_member("repo/../escape.py"), b"x"),
            (_member("repo/leak", tarfile.SYMTYPE, "/etc/hostname"), b""),
            (_member("repo/alias.py", tarfile.SYMTYPE, "main.py"), b""),
        ]
    )
    tree = extract_tree(archive, 1 << 20)
    assert tree.files == {"main.py": b"print(1)\n", "run.sh": b"#!/bin/sh\n", "alias.py": b"print(1)\n"}
    assert tree.executables == {"run.sh"} and tree.dropped_links == ["leak"]
    with pytest.raises(InvalidSource, match="larger than"):
        extract_tree(_tar([(_member("repo/big"), b"x" * 2048)]), 1024)


def test_private_git_hosts_need_an_egress_exception() -> None:
    from runner.builds.gitcheck import clones_are_guarded, missing_egress
    from runner.settings import Settings

    s = Settings(git_allowed_hosts=["127.0.0.1", "localhost"], runner_egress_allow=[])
    assert clones_are_guarded(s)
    assert "127.0.0.1 (127.0.0.1)" in missing_egress(s)
    s = Settings(git_allowed_hosts=["127.0.0.1"], runner_egress_allow=["127.0.0.0/8"])
    assert missing_egress(s) == []
    assert not clones_are_guarded(Settings(runner_network_mode="host"))
    assert not clones_are_guarded(Settings(runner_build_network="host"))
