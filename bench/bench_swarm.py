"""Swarm deploy latency against the docker backend's and the bare-SDK floors, and queue round trips.

Run:  .venv/bin/python bench/bench_swarm.py [--runs 8] [--queries 50]

Needs a swarm manager (scripts/test.sh makes one) besides dockerd, redis-server and the test base
image. It starts one redis-server and two runners on it (RUNNER_BACKEND=docker and =swarm, each
its own Redis database and instance label), then measures in one interleaved run:
  * swarm floor: a raw service create (local image, host network, Limits.Pids) until its task
    runs and its first line is in `docker service logs`, straight through the SDK
  * docker floor: create + start of a container until its first line is in its logs
  * deploy: Command(START) sent until the result says running and LOGS through the queue shows
    the first line, through each runner
  * status/logs round trips through the queue under swarm, against the SDK calls they wrap
Everything it creates carries the bench instance label and is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
from redis.asyncio import Redis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_runner import add_base_image, row, runner_env, spawn_runner, timed  # noqa: E402

from protocol.client import RunnerClient  # noqa: E402
from protocol.models import Command, Op, SourceKind, SourceSpec  # noqa: E402
from tests.fixtures.services import start_redis_server  # noqa: E402

CODE = b"print('up', flush=True)\nimport time\nwhile True:\n    time.sleep(1)\n"
OWNER = 4343
POLL_S = 0.02


def swarm_floor(client: docker.DockerClient, image: str, labels: dict[str, str], i: int) -> float:
    api = client.api
    name = f"bench-swfloor-{os.getpid()}-{i}"
    spec = {
        "Name": name,
        "Labels": labels,
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": image,
                "Args": ["python3", "-c", CODE.decode()],
                "Labels": labels,
                "User": "65534:65534",
                "ReadOnly": True,
                "Init": True,
            },
            "Resources": {"Limits": {"MemoryBytes": 256 << 20, "NanoCPUs": 500_000_000, "Pids": 128}},
            "Networks": [{"Target": "host"}],
        },
        "Mode": {"Replicated": {"Replicas": 1}},
    }
    t0 = time.perf_counter()
    resp = api._post_json(api._url("/services/create"), data=spec)
    sid = api._result(resp, json=True)["ID"]
    while b"up" not in b"".join(api.service_logs(sid, stdout=True, stderr=True)):
        time.sleep(POLL_S)
    elapsed = time.perf_counter() - t0
    api.remove_service(sid)
    return elapsed


def docker_floor(client: docker.DockerClient, image: str, labels: dict[str, str], i: int) -> float:
    t0 = time.perf_counter()
    c = client.containers.create(
        image,
        ["python3", "-c", CODE.decode()],
        labels=labels,
        user="65534:65534",
        read_only=True,
        init=True,
        network_mode="host",
        mem_limit="256m",
        pids_limit=128,
    )
    c.start()
    while b"up" not in c.logs():
        time.sleep(POLL_S)
    elapsed = time.perf_counter() - t0
    c.remove(force=True)
    return elapsed


async def deploy_once(rc: RunnerClient, name: str) -> float:
    cmd = Command(
        op=Op.START, owner=OWNER, name=name, source=SourceSpec(kind=SourceKind.FILE, filename="bot.py")
    )
    t0 = time.perf_counter()
    res = await rc.call(cmd, CODE)
    assert res.ok and res.bot is not None and res.bot.state.value == "running", res.error
    while "up" not in ((await rc.call(Command(op=Op.LOGS, owner=OWNER, name=name, tail=5))).logs or ""):
        await asyncio.sleep(POLL_S)
    elapsed = time.perf_counter() - t0
    await rc.call(Command(op=Op.DELETE, owner=OWNER, name=name))
    return elapsed


def start_runner(url: str, instance: str, backend: str, image: str, workdir: Path) -> subprocess.Popen[bytes]:
    env = runner_env(url, image, instance, RUNNER_BACKEND=backend)
    return spawn_runner(env, workdir / f"runner-{backend}.log")


def cleanup(client: docker.DockerClient, instance: str, backends: list[str]) -> None:
    """Remove what the bench made: services, containers, volumes and configs of its instances."""
    flt = {"label": f"botrunner.instance={instance}"}
    for s in client.api.services(filters={"label": "botrunner.instance"}):
        if str((s["Spec"].get("Labels") or {}).get("botrunner.instance", "")).startswith(instance):
            client.api.remove_service(s["ID"])
    for c in client.containers.list(all=True, filters=flt):
        c.remove(force=True)
    for b in backends:
        sub = {"label": f"botrunner.instance={instance}-{b}"}
        for c in client.containers.list(all=True, filters=sub):
            c.remove(force=True)
        for v in client.volumes.list(filters=sub):
            v.remove(force=True)
        for cfg in client.api.configs(filters=sub):
            client.api.remove_config(cfg["ID"])


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--queries", type=int, default=50)
    add_base_image(ap)
    args = ap.parse_args()
    instance = f"bench-{os.getpid()}"
    labels = {"botrunner.instance": instance, "botrunner.test": "1"}
    workdir = Path(tempfile.mkdtemp(prefix="botrunner-bench-swarm-"))
    redis_proc, url0 = start_redis_server(workdir)
    urls = {b: f"{url0.removesuffix('/0')}/{n}" for n, b in ((1, "docker"), (2, "swarm"))}
    runners = {b: start_runner(urls[b], f"{instance}-{b}", b, args.base_image, workdir) for b in urls}
    client = docker.from_env()
    redises = {b: Redis.from_url(u) for b, u in urls.items()}
    rcs = {b: RunnerClient(r) for b, r in redises.items()}
    try:
        for b, rc in rcs.items():
            deadline = time.monotonic() + 900
            log = workdir / f"runner-{b}.log"
            while "runtime image" not in log.read_text() or await rc.health() is None:
                if time.monotonic() > deadline or runners[b].poll() is not None:
                    raise SystemExit(f"{b} runner did not come up:\n" + log.read_text()[-3000:])
                await asyncio.sleep(0.2)
        image = (workdir / "runner-swarm.log").read_text().split("runtime image ", 1)[1].split()[0]
        sw_floor, dk_floor, sw_deploy, dk_deploy = [], [], [], []
        for i in range(args.runs):  # interleaved: drift on this noisy machine hits all alike
            sw_floor.append(await asyncio.to_thread(swarm_floor, client, image, labels, i))
            dk_floor.append(await asyncio.to_thread(docker_floor, client, image, labels, i))
            sw_deploy.append(await deploy_once(rcs["swarm"], f"bsw-{i}"))
            dk_deploy.append(await deploy_once(rcs["docker"], f"bdk-{i}"))

        rc = rcs["swarm"]
        start = Command(
            op=Op.START, owner=OWNER, name="bq", source=SourceSpec(kind=SourceKind.FILE, filename="bot.py")
        )
        assert (await rc.call(start, CODE)).ok
        svc = f"botrunner-{OWNER}-bq"
        d_status, q_status, d_logs, q_logs = [], [], [], []
        for _ in range(args.queries):
            d_status.append(
                await timed(
                    lambda: (client.api.inspect_service(svc), client.api.tasks(filters={"service": svc}))
                )
            )
            q_status.append(await timed(lambda: rc.call(Command(op=Op.STATUS, owner=OWNER, name="bq"))))
            d_logs.append(
                await timed(lambda: b"".join(client.api.service_logs(svc, stdout=True, stderr=True, tail=30)))
            )
            q_logs.append(await timed(lambda: rc.call(Command(op=Op.LOGS, owner=OWNER, name="bq", tail=30))))
        await rc.call(Command(op=Op.DELETE, owner=OWNER, name="bq"))

        print(f"runs={args.runs} queries={args.queries} image={image} cpus={os.cpu_count()}")
        print("| measurement | n | p50 ms | p95 ms | ratio of medians |")
        print("|---|---|---|---|---|")
        print(row("swarm floor: SDK service create -> task running + first line", sw_floor))
        print(row("swarm deploy through the runner (sent -> running + first line)", sw_deploy, sw_floor))
        print(row("docker floor: SDK create+start -> first line", dk_floor))
        print(row("docker deploy through the runner (sent -> running + first line)", dk_deploy, dk_floor))
        print(row("swarm deploy against docker deploy", sw_deploy, dk_deploy))
        print(row("inspect_service + tasks, direct SDK", d_status))
        print(row("status through the queue (swarm)", q_status, d_status))
        print(row("service_logs(tail=30), direct SDK", d_logs))
        print(row("logs through the queue (swarm)", q_logs, d_logs))
        ratio = statistics.median(sw_deploy) / statistics.median(sw_floor)
        print(f"median swarm deploy / swarm floor: {ratio:.2f}x")
    finally:
        for p in runners.values():
            p.terminate()
            p.wait(30)
        for rc in rcs.values():
            await rc.close()
        for r in redises.values():
            await r.aclose()
        redis_proc.terminate()
        cleanup(client, instance, list(urls))


if __name__ == "__main__":
    asyncio.run(main())
