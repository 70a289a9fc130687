"""Releases (issue 12): rollback against a plain update of the same bot, and deploy -> first output
with the health gate on and off.

Run:  .venv/bin/python bench/bench_releases.py [--runs 10] [--base-image IMAGE]

It starts its own redis-server on a free loopback port and two real runners on two databases of
it: one with the health gate on (RUNNER_HEALTH_GRACE=10, the default) and one with it off (0).
Measurements alternate between the two, so load on the machine hits both alike.
  * first output: Command(START) sent -> the bot's first line in `docker logs`, gate on vs off;
    also the reply (sent -> Result running), which must not wait for the gate
  * update vs rollback of the same bot (gate on): sent -> Result running, and -> first output
Everything it creates carries the bench label and is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
from redis.asyncio import Redis

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_runner import add_base_image, row, runner_env, spawn_runner  # noqa: E402

from protocol.client import RunnerClient  # noqa: E402
from protocol.models import Command, Op, SourceKind, SourceSpec  # noqa: E402
from tests.fixtures.services import start_redis_server  # noqa: E402

OWNER = 4343


def code(tag: str) -> bytes:
    return f"print('up {tag}', flush=True)\nimport time\nwhile True:\n    time.sleep(1)\n".encode()


def start_runner(url: str, instance: str, grace: str, image: str, workdir: Path) -> subprocess.Popen[bytes]:
    env = runner_env(url, image, instance, RUNNER_HEALTH_GRACE=grace)
    return spawn_runner(env, workdir / f"runner-{grace}.log")


async def first_output(client: docker.DockerClient, name: str, needle: bytes, t0: float) -> float:
    """Seconds from t0 until the bot's container printed needle."""
    while True:
        with contextlib.suppress(docker.errors.NotFound):
            logs = await asyncio.to_thread(client.containers.get(f"botrunner-{OWNER}-{name}").logs)
            if needle in logs:
                return time.perf_counter() - t0
        await asyncio.sleep(0.005)


async def send(rc: RunnerClient, op: Op, name: str, payload: bytes | None = None, **kw: object) -> float:
    source = SourceSpec(kind=SourceKind.FILE, filename="bot.py") if payload is not None else None
    t0 = time.perf_counter()
    res = await rc.call(Command(op=op, owner=OWNER, name=name, source=source, **kw), payload, timeout=300)  # type: ignore[arg-type]
    assert res.ok, res.error
    return t0


async def first_outputs(
    rcs: dict[str, RunnerClient], client: docker.DockerClient, runs: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Deploy reply and first output, alternating the gate-on and gate-off runners."""
    reply: dict[str, list[float]] = {"10": [], "0": []}
    output: dict[str, list[float]] = {"10": [], "0": []}
    for i in range(runs):
        for g in ("10", "0") if i % 2 == 0 else ("0", "10"):
            name = f"first-{g}-{i}"
            t0 = await send(rcs[g], Op.START, name, code(name))
            reply[g].append(time.perf_counter() - t0)
            output[g].append(await first_output(client, name, f"up {name}".encode(), t0))
    return reply, output


async def rollbacks(
    rc: RunnerClient, client: docker.DockerClient, runs: int
) -> tuple[list[float], list[float], list[float], list[float]]:
    """A plain update of one bot, then a rollback to the release before it, `runs` times."""
    await send(rc, Op.START, "roll", code("v0"))
    upd_reply: list[float] = []
    upd_out: list[float] = []
    rb_reply: list[float] = []
    rb_out: list[float] = []
    for i in range(runs):
        t0 = await send(rc, Op.UPDATE, "roll", code(f"u{i}"))
        upd_reply.append(time.perf_counter() - t0)
        upd_out.append(await first_output(client, "roll", f"up u{i}".encode(), t0))
        await asyncio.sleep(0.5)
        t0 = await send(rc, Op.ROLLBACK, "roll")  # the previous release: always v0's code here
        rb_reply.append(time.perf_counter() - t0)
        rb_out.append(await first_output(client, "roll", b"up v0", t0))
        await asyncio.sleep(0.5)
    return upd_reply, upd_out, rb_reply, rb_out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    add_base_image(ap)
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="botrunner-bench-rel-"))
    redis_proc, url0 = start_redis_server(workdir)
    instances = {g: f"benchrel-{g}-{os.getpid()}" for g in ("10", "0")}
    urls = {"10": url0, "0": url0.removesuffix("/0") + "/1"}
    runners = {g: start_runner(urls[g], instances[g], g, args.base_image, workdir) for g in ("10", "0")}
    client = docker.from_env()
    redises = {g: Redis.from_url(urls[g]) for g in urls}
    rcs = {g: RunnerClient(redises[g]) for g in urls}
    try:
        for g, proc in runners.items():
            deadline = time.monotonic() + 900
            while (
                "runtime image" not in (workdir / f"runner-{g}.log").read_text()
                or await rcs[g].health() is None
            ):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(
                        "runner did not come up:\n" + (workdir / f"runner-{g}.log").read_text()[-3000:]
                    )
                await asyncio.sleep(0.2)
        reply, output = await first_outputs(rcs, client, args.runs)
        upd_reply, upd_out, rb_reply, rb_out = await rollbacks(rcs["10"], client, args.runs)
        log_text = (workdir / "runner-10.log").read_text()
        print("| measurement | n | p50 ms | p95 ms | ratio of medians |")
        print("|---|---|---|---|---|")
        print(row("deploy -> first output, gate off", output["0"]))
        print(row("deploy -> first output, gate on (10 s)", output["10"], output["0"]))
        print(row("deploy reply (sent -> running), gate off", reply["0"]))
        print(row("deploy reply (sent -> running), gate on", reply["10"], reply["0"]))
        print(row("update .py (sent -> running)", upd_reply))
        print(row("rollback to the previous release (sent -> running)", rb_reply, upd_reply))
        print(row("update .py -> first output", upd_out))
        print(row("rollback -> first output", rb_out, upd_out))
        pip_runs = log_text.count("pip install")
        print(
            f"\npip runs in the gate-on runner's log: {pip_runs}; median ratios: rollback/update "
            f"{statistics.median(rb_reply) / statistics.median(upd_reply):.2f}x"
        )
    finally:
        for proc in runners.values():
            proc.terminate()
        for proc in runners.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
        for g in instances.values():
            for c in client.containers.list(all=True, filters={"label": f"botrunner.instance={g}"}):
                c.remove(force=True, v=True)
            for v in client.volumes.list(filters={"label": f"botrunner.instance={g}"}):
                with contextlib.suppress(docker.errors.APIError):
                    v.remove(force=True)
        for rc in rcs.values():
            await rc.close()
        for r in redises.values():
            await r.aclose()
        redis_proc.terminate()


if __name__ == "__main__":
    asyncio.run(main())
