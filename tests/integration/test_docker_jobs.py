"""One-shot job containers on real Docker: the sandbox, files in, output out, the timeout, commit."""

from __future__ import annotations

import contextlib
import secrets

import docker
import docker.errors
import pytest

from runner.backend.base import JobSpec
from runner.backend.docker import DockerBackend
from tests.fixtures.services import TEST_LABEL

pytestmark = pytest.mark.integration


@pytest.fixture
def backend(test_session_id: str) -> DockerBackend:
    return DockerBackend(instance=test_session_id, network_mode="none", restart_max=0)


def jobs_left(docker_client: docker.DockerClient, run: str) -> list[object]:
    flt = {"label": [f"{TEST_LABEL}-run={run}"]}
    return [*docker_client.containers.list(all=True, filters=flt), *docker_client.volumes.list(filters=flt)]


async def test_a_job_runs_sandboxed_with_its_files_and_leaves_nothing(
    backend: DockerBackend, base_image: str, docker_client: docker.DockerClient
) -> None:
    run = secrets.token_hex(3)
    script = (
        "import os, pathlib\n"
        "print(os.getuid(), os.getcwd(), pathlib.Path('in.txt').read_text(), os.environ['X'])\n"
        "pathlib.Path('/tmp/ok').write_text('tmp is writable')\n"
        "try:\n    pathlib.Path('/etc/nope').write_text('x')\n"
        "except OSError as e:\n    print('ro', e.errno)\n"
        "print('e' * 5000, file=__import__('sys').stderr)\n"
        "raise SystemExit(3)\n"
    )
    result = await backend.run_job(
        JobSpec(
            image=base_image,
            command=["python3", "job.py"],
            env={"X": "42"},
            files={"job.py": script.encode(), "in.txt": b"data"},
            labels={TEST_LABEL: "1", f"{TEST_LABEL}-run": run},
            max_output_bytes=1000,
        )
    )
    assert result.exit_code == 3 and not result.timed_out and not result.oom_killed
    assert result.stdout.decode().splitlines() == ["65534 /work data 42", "ro 30"]  # EROFS
    assert result.truncated and len(result.stderr) == 1000 and result.stderr.endswith(b"e\n")
    assert jobs_left(docker_client, run) == []


async def test_a_job_is_killed_at_its_timeout(
    backend: DockerBackend, base_image: str, docker_client: docker.DockerClient
) -> None:
    run = secrets.token_hex(3)
    result = await backend.run_job(
        JobSpec(
            image=base_image,
            command=["python3", "-c", "import time; print('up', flush=True); time.sleep(60)"],
            timeout=1.5,
            labels={TEST_LABEL: "1", f"{TEST_LABEL}-run": run},
        )
    )
    assert result.timed_out and result.exit_code == -1 and result.duration_s < 20
    assert result.stdout == b"up\n"
    assert jobs_left(docker_client, run) == []


async def test_a_finished_job_is_committed_with_its_config(
    backend: DockerBackend, base_image: str, docker_client: docker.DockerClient
) -> None:
    tag = f"botrunner-test/job:{secrets.token_hex(4)}"
    labels = {TEST_LABEL: "1"}
    try:
        first = await backend.run_job(
            JobSpec(
                image=base_image,
                command=["python3", "-c", "open('/tmp/marker', 'w').write('kept')"],
                read_only=False,
                tmpfs={},  # /tmp in the container's own layer, so the commit keeps it
                labels=labels,
                commit_to=tag,
                commit_config={"Env": ["MARK=1"], "WorkingDir": "/tmp"},
            )
        )
        assert first.exit_code == 0 and first.image
        assert docker_client.images.get(tag).id == first.image
        second = await backend.run_job(
            JobSpec(
                image=tag,
                command=["python3", "-c", "import os; print(open('marker').read(), os.environ['MARK'])"],
                labels=labels,
                workdir="/tmp",
                tmpfs={},
            )
        )
        assert second.stdout == b"kept 1\n", second.stderr
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(tag, force=True)
