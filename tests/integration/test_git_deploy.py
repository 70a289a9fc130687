"""Git mode end to end: clone from a local git server, dependency images, the cache, pulls.

Dependency sets carry an environment marker unique to the session (always true), so the first
deploy of a set really runs pip even though images are a cache shared across sessions; the
images those sets produce are removed at the end.
"""

from __future__ import annotations

from typing import Any

import docker
import docker.errors
import pytest

from protocol.client import RunnerClient
from protocol.models import Op, SourceKind, SourceSpec, notes_text
from tests.fixtures.git_server import Deploys, GitServer, owner_id, sleeper, zip_bytes
from tests.fixtures.runner import RunnerProcess
from tests.integration.helpers import call, containers_of

pytestmark = pytest.mark.integration


async def test_requirements_repo_zip_cache_hit_and_pulls(
    runner: RunnerProcess,
    runner_client: RunnerClient,
    deploys: Deploys,
    git_server: GitServer,
    docker_client: docker.DockerClient,
    unique_name: Any,
    test_session_id: str,
) -> None:
    req = f'six==1.16.0; os_name != "{test_session_id}"'
    repo_name = unique_name("reqs")
    v1 = "import six\nprint('v1 six', six.__version__, flush=True)\nimport time\ntime.sleep(600)\n"
    repo = git_server.create(
        repo_name,
        {"requirements.txt": f"# pinned\n{req}\n", "main.py": v1, "bot.py": "raise SystemExit(3)\n"},
        "first version",
    )
    sha1 = repo.commit({"README.md": "docs\n"}, "docs only")
    owner, name = owner_id(), unique_name("gitreq")

    res = await deploys.git(owner, name, git_server.git_url(repo_name))
    assert res.ok, res.error
    assert deploys.stages[0] == "cloning" and "installing" in deploys.stages
    assert deploys.stages[-1] == "starting"
    assert notes_text(res.notes) == "entry point: main.py; dependencies: installed (1)"
    assert res.bot is not None
    src = res.bot.source
    assert src.kind is SourceKind.GIT and src.git_url == git_server.git_url(repo_name)
    assert (src.branch, src.commit, src.commit_subject) == ("main", sha1, "docs only")
    assert src.entrypoint == "main.py" and src.dependencies == [req]
    tag = res.bot.image
    assert tag is not None and tag.startswith("botrunner/deps:")
    await deploys.logs_contain(owner, name, "v1 six 1.16.0")
    [c] = containers_of(docker_client, owner, name)
    assert c.attrs["Config"]["User"] == "65534:65534" and c.attrs["HostConfig"]["ReadonlyRootfs"]

    # A second bot with the same dependency set, from a .zip this time: no pip run at all.
    other, zipped = owner_id(), unique_name("zipreq")
    payload = zip_bytes(
        {"pkg/bot.py": sleeper("zip bot up"), "pkg/requirements.txt": f"  {req}  \n\n# same set\n"}
    )
    res = await deploys.run(
        Op.START, other, zipped, payload, source=SourceSpec(kind=SourceKind.ZIP, filename="pkg.zip")
    )
    assert res.ok, res.error
    assert notes_text(res.notes) == "entry point: bot.py; dependencies: cached (1)"
    assert "installing" not in deploys.stages
    assert res.bot is not None and res.bot.image == tag and res.bot.source.kind is SourceKind.ZIP
    await deploys.logs_contain(other, zipped, "zip bot up")
    assert runner.log_text().count(f"pip install of 1 package(s) into {tag}") == 1

    # A code-only commit: the pull reuses the dependency image and shows the new commit.
    v2 = v1.replace("v1 six", "v2 six")
    sha2 = repo.commit({"main.py": v2}, "second version")
    res = await deploys.run(Op.UPDATE, owner, name, pull=True)
    assert res.ok, res.error
    assert notes_text(res.notes) == "entry point: main.py; dependencies: cached (1)"
    assert "installing" not in deploys.stages and deploys.stages[0] == "cloning"
    status = (await call(runner_client, Op.STATUS, owner, name)).bot
    assert status is not None and status.image == tag
    assert (status.source.commit, status.source.commit_subject) == (sha2, "second version")
    await deploys.logs_contain(owner, name, "v2 six 1.16.0")
    assert len(containers_of(docker_client, owner, name)) == 1

    # Back to an older commit by its full sha, then forward by a short one.
    res = await deploys.run(
        Op.UPDATE, owner, name, pull=True, source=SourceSpec(kind=SourceKind.GIT, commit=sha1)
    )
    assert res.ok, res.error
    assert res.bot is not None and res.bot.source.commit == sha1
    res = await deploys.run(
        Op.UPDATE, owner, name, pull=True, source=SourceSpec(kind=SourceKind.GIT, commit=sha2[:10])
    )
    assert res.ok, res.error
    assert res.bot is not None and res.bot.source.commit == sha2
    assert runner.log_text().count(f"pip install of 1 package(s) into {tag}") == 1


async def test_pyproject_repo_over_http_drops_symlinks_leaving_it(
    deploys: Deploys, git_server: GitServer, unique_name: Any, test_session_id: str
) -> None:
    dep = f'idna==3.7; os_name != "{test_session_id}"'
    pyproject = f"[project]\nname = 'probe'\nversion = '1'\ndependencies = [\n  '{dep}',\n]\n"
    probe = (
        "import os, idna\n"
        "print('idna', idna.__version__, 'leak', os.path.exists('leak.txt'),"
        " 'alias', open('alias.txt').read().strip(), flush=True)\n"
        "import time\ntime.sleep(600)\n"
    )
    repo_name = unique_name("pyproj")
    git_server.create(
        repo_name,
        {
            "pyproject.toml": pyproject,
            "__main__.py": probe,
            "main.py": "raise SystemExit(3)\n",
            "real.txt": "ok\n",
        },
        symlinks={"leak.txt": "/etc/hostname", "alias.txt": "real.txt"},
    )
    owner, name = owner_id(), unique_name("pyproj")
    res = await deploys.git(owner, name, git_server.http_url(repo_name), branch="main")
    assert res.ok, res.error
    assert notes_text(res.notes) == (
        "entry point: __main__.py; ignored 1 symlink(s) leading outside; dependencies: installed (1)"
    )
    assert res.bot is not None and res.bot.source.dependencies == [dep]
    await deploys.logs_contain(owner, name, "idna 3.7 leak False alias ok")
    assert git_server.http_requests(repo_name)


async def test_repository_with_its_own_dockerfile_runs_in_the_sandbox(
    deploys: Deploys,
    git_server: GitServer,
    docker_client: docker.DockerClient,
    base_image: str,
    unique_name: Any,
) -> None:
    app = (
        "import os\n"
        "open('/data/state', 'w').write('x')\n"
        "try:\n    open('/srv/x', 'w')\nexcept OSError:\n    print('root fs read-only', flush=True)\n"
        "print('own image uid', os.getuid(), 'cwd', os.getcwd(), flush=True)\n"
        "import time\ntime.sleep(600)\n"
    )
    dockerfile = (
        f"FROM {base_image}\nCOPY app.py /srv/app.py\nCOPY run.sh /srv/run.sh\n"
        'WORKDIR /srv\nRUN test -x /srv/run.sh\nCMD ["python3", "/srv/app.py"]\n'
    )
    repo_name = unique_name("ownimg")
    repo = git_server.create(
        repo_name, {"Dockerfile": dockerfile, "app.py": app, "run.sh": "#!/bin/sh\nexit 0\n"}
    )
    (repo.work / "run.sh").chmod(0o755)
    repo.commit({}, "run.sh is executable")
    owner, name = owner_id(), unique_name("ownimg")
    # RUNNER_DOCKERFILE_POLICY=admins (the default): an admin deploys it.
    res = await deploys.git(owner, name, git_server.git_url(repo_name), admin=True)
    assert res.ok, res.error
    assert notes_text(res.notes) == "built from its Dockerfile"
    assert "building" in deploys.stages
    assert res.bot is not None and res.bot.image is not None and res.bot.image.startswith("botrunner/repo:")
    await deploys.logs_contain(owner, name, "own image uid 65534 cwd /srv")
    await deploys.logs_contain(owner, name, "root fs read-only")
    [c] = containers_of(docker_client, owner, name)
    hc = c.attrs["HostConfig"]
    assert hc["ReadonlyRootfs"] and hc["CapDrop"] == ["ALL"] and c.attrs["Config"]["User"] == "65534:65534"
    assert {m["Destination"] for m in c.attrs["Mounts"]} == {"/data"}

    # The same tree again: the image is reused.
    other = unique_name("ownimg")
    res = await deploys.git(owner, other, git_server.git_url(repo_name), admin=True)
    assert res.ok, res.error
    assert notes_text(res.notes) == "built from its Dockerfile (cached)"
    assert "building" in deploys.stages  # the stage is reported; the build itself is a cache hit
