"""Deploy latency and queue overhead of the runner, against the bare docker SDK floor.

Run:  .venv/bin/python bench/bench_runner.py [--runs 20] [--base-image IMAGE]

It starts its own redis-server on a free loopback port and a real `python -m runner` (host
networking, instance label "bench-<pid>"), then measures in one run:
  * floor: volumes + create + put_archive + start, straight through the docker SDK
  * deploy: Command(START) sent -> Result with the container running, through the runner
  * status/logs round trips through the queue, against inspect / logs(tail=30) called directly
Everything it creates carries the bench label and is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors
from docker.models.containers import Container
from redis.asyncio import Redis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from protocol.client import RunnerClient  # noqa: E402
from protocol.models import Command, Op, SourceKind, SourceSpec  # noqa: E402
from tests.fixtures.services import start_redis_server  # noqa: E402

CODE = b"print('up', flush=True)\nimport time\nwhile True:\n    time.sleep(1)\n"
OWNER = 4242


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def row(label: str, xs: list[float], base: list[float] | None = None) -> str:
    p50, p95 = pct(xs, 50) * 1000, pct(xs, 95) * 1000
    ratio = f"{statistics.median(xs) / statistics.median(base):.2f}x" if base else "1.00x (floor)"
    return f"| {label} | {len(xs)} | {p50:.1f} | {p95:.1f} | {ratio} |"


def tar_of(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.uid, info.gid = len(data), 65534, 65534
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def floor_create(client: docker.DockerClient, image: str, labels: dict[str, str], name: str) -> Container:
    """The volumes, create and copy the runner does, with the same sandbox, done directly; not started."""
    client.volumes.create(f"{name}_app", labels=labels)
    client.volumes.create(f"{name}_data", labels=labels)
    c = client.containers.create(
        image,
        ["python", "bot.py"],
        name=name,
        labels=labels,
        working_dir="/app",
        user="65534:65534",
        read_only=True,
        tmpfs={"/tmp": "rw,size=64m"},
        volumes={
            f"{name}_app": {"bind": "/app", "mode": "rw"},
            f"{name}_data": {"bind": "/data", "mode": "rw"},
        },
        mem_limit="256m",
        nano_cpus=500_000_000,
        pids_limit=128,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        init=True,
        network_mode="host",
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 5},
        log_config={"type": "json-file", "config": {"max-size": "10m", "max-file": "3"}},
    )
    c.put_archive("/app", tar_of("bot.py", CODE))
    return c


def floor_remove(client: docker.DockerClient, c: Container, name: str) -> None:
    c.remove(force=True)
    client.volumes.get(f"{name}_app").remove(force=True)
    client.volumes.get(f"{name}_data").remove(force=True)


def floor_once(client: docker.DockerClient, image: str, labels: dict[str, str], i: int) -> float:
    """The same create, copy and start the runner does, with the same sandbox, done directly."""
    name = f"bench-floor-{os.getpid()}-{i}"
    t0 = time.perf_counter()
    c = floor_create(client, image, labels, name)
    c.start()
    elapsed = time.perf_counter() - t0
    floor_remove(client, c, name)
    return elapsed


def add_base_image(ap: argparse.ArgumentParser) -> None:
    """--base-image: what the bots run on; the test suite's base by default, so its images are reused."""
    ap.add_argument(
        "--base-image", default=os.environ.get("BOTRUNNER_TEST_BASE_IMAGE", "botrunner-test/python:bookworm")
    )


def runner_env(redis_url: str, base_image: str, instance: str, **overrides: str) -> dict[str, str]:
    """A bench runner: host networking, its own instance label, no quota, no periodic sweeps."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "REDIS_URL": redis_url,
        "RUNNER_BASE_IMAGE": base_image,
        "RUNNER_NETWORK_MODE": "host",
        "RUNNER_BUILD_NETWORK": "host",
        "RUNNER_INSTANCE": instance,
        "MAX_BOTS_PER_USER": "1000",
        "RUNNER_STATS_INTERVAL": "3600",
        "RUNNER_RECONCILE_INTERVAL": "3600",
    }
    if Path("/etc/ssl/certs/ca-certificates.crt").is_file():
        env["RUNNER_CA_BUNDLE"] = "/etc/ssl/certs/ca-certificates.crt"
    return {**env, **overrides}


def spawn_runner(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`python -m runner` with env, its output in log, in log's folder."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "runner"], env=env, cwd=log.parent, stdout=out, stderr=subprocess.STDOUT
        )


async def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    res = fn()
    if asyncio.iscoroutine(res):
        res = await res
    return time.perf_counter() - t0


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--builds", type=int, default=5, help="cold/warm dependency deploys (0 to skip)")
    add_base_image(ap)
    args = ap.parse_args()
    instance = f"bench-{os.getpid()}"
    labels = {"botrunner.instance": instance, "botrunner.test": "1"}
    workdir = Path(tempfile.mkdtemp(prefix="botrunner-bench-"))
    redis_proc, url = start_redis_server(workdir)
    runner = spawn_runner(runner_env(url, args.base_image, instance), workdir / "runner.log")
    client = docker.from_env()
    redis = Redis.from_url(url)
    rc = RunnerClient(redis)
    try:
        deadline = time.monotonic() + 900
        while "runtime image" not in (workdir / "runner.log").read_text() or await rc.health() is None:
            if time.monotonic() > deadline or runner.poll() is not None:
                raise SystemExit("runner did not come up:\n" + (workdir / "runner.log").read_text()[-3000:])
            await asyncio.sleep(0.2)
        image = (workdir / "runner.log").read_text().split("runtime image ", 1)[1].split()[0]

        floor: list[float] = []
        deploy: list[float] = []
        for i in range(args.runs):  # interleaved, so drift on this noisy machine hits both alike
            floor.append(await asyncio.to_thread(floor_once, client, image, labels, i))
            name = f"bench-{i}"
            cmd = Command(
                op=Op.START,
                owner=OWNER,
                name=name,
                source=SourceSpec(kind=SourceKind.FILE, filename="bot.py"),
            )
            t0 = time.perf_counter()
            res = await rc.call(cmd, CODE)
            deploy.append(time.perf_counter() - t0)
            assert res.ok and res.bot is not None and res.bot.state.value == "running", res.error
            await rc.call(Command(op=Op.DELETE, owner=OWNER, name=name))

        res = await rc.call(
            Command(
                op=Op.START,
                owner=OWNER,
                name="bench-q",
                source=SourceSpec(kind=SourceKind.FILE, filename="bot.py"),
            ),
            CODE,
        )
        assert res.ok, res.error
        cname = f"botrunner-{OWNER}-bench-q"
        direct_status, queue_status, direct_logs, queue_logs = [], [], [], []
        for _ in range(args.queries):
            direct_status.append(await timed(lambda: client.api.inspect_container(cname)))
            queue_status.append(
                await timed(lambda: rc.call(Command(op=Op.STATUS, owner=OWNER, name="bench-q")))
            )
            direct_logs.append(await timed(lambda: client.api.logs(cname, tail=30)))
            queue_logs.append(
                await timed(lambda: rc.call(Command(op=Op.LOGS, owner=OWNER, name="bench-q", tail=30)))
            )
        await rc.call(Command(op=Op.DELETE, owner=OWNER, name="bench-q"))

        cold, warm, plain = await build_rounds(rc, client, args.builds) if args.builds else ([], [], [])

        print(
            f"runs={args.runs} queries={args.queries} builds={args.builds} image={image} "
            f"cpus={os.cpu_count()}"
        )
        print("| measurement | n | p50 ms | p95 ms | ratio of medians |")
        print("|---|---|---|---|---|")
        print(row("floor: SDK volumes+create+put_archive+start", floor))
        print(row("deploy through the runner (sent -> running)", deploy, floor))
        print(row("inspect, direct SDK", direct_status))
        print(row("status through the queue", queue_status, direct_status))
        print(row("logs(tail=30), direct SDK", direct_logs))
        print(row("logs through the queue", queue_logs, direct_logs))
        if args.builds:
            print(row("zip bot, no dependencies (runtime image)", plain))
            print(row("zip bot + requirements.txt, cold (pip runs)", cold, plain))
            print(row("zip bot + requirements.txt, warm (cached deps image)", warm, plain))
        added_status = statistics.median(queue_status) - statistics.median(direct_status)
        added_logs = statistics.median(queue_logs) - statistics.median(direct_logs)
        print(
            f"queue overhead at p50: status +{added_status * 1000:.1f} ms, logs +{added_logs * 1000:.1f} ms"
        )
    finally:
        runner.terminate()
        runner.wait(30)
        await rc.close()
        await redis.aclose()
        redis_proc.terminate()
        for c in client.containers.list(all=True, filters={"label": f"botrunner.instance={instance}"}):
            c.remove(force=True)
        for v in client.volumes.list(filters={"label": f"botrunner.instance={instance}"}):
            v.remove(force=True)


def zip_of(files: dict[str, bytes]) -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


async def build_rounds(rc: RunnerClient, client: docker.DockerClient, n: int) -> tuple[list[float], ...]:
    """Deploys of a package with dependencies: cold (a new set, pip runs) against warm (same set)."""
    cold: list[float] = []
    warm: list[float] = []
    plain: list[float] = []
    run_marker = f"bench{os.getpid()}"
    images: set[str] = set()

    async def deploy(name: str, requirements: str | None) -> float:
        files = {"main.py": CODE}
        if requirements is not None:
            files["requirements.txt"] = requirements.encode()
        cmd = Command(
            op=Op.START, owner=OWNER, name=name, source=SourceSpec(kind=SourceKind.ZIP, filename="bot.zip")
        )
        t0 = time.perf_counter()
        res = await rc.call(cmd, zip_of(files), timeout=600)
        elapsed = time.perf_counter() - t0
        assert res.ok and res.bot is not None, res.error
        if res.bot.image and res.bot.image.startswith("botrunner/deps:"):
            images.add(res.bot.image)
        await rc.call(Command(op=Op.DELETE, owner=OWNER, name=name))
        return elapsed

    # Environment markers that are always true make each set distinct without a new package.
    await deploy("bench-warmup", f'tomli==2.0.1; os_name != "{run_marker}-warm"\n')
    for i in range(n):
        plain.append(await deploy(f"bench-plain-{i}", None))
        cold.append(await deploy(f"bench-cold-{i}", f'tomli==2.0.1; os_name != "{run_marker}-{i}"\n'))
        warm.append(await deploy(f"bench-warm-{i}", f'tomli==2.0.1; os_name != "{run_marker}-warm"\n'))
    for tag in images:
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(tag, force=True)
    return cold, warm, plain


if __name__ == "__main__":
    asyncio.run(main())
