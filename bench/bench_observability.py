"""Issue 13's figures from one run: metrics cost, chart time, resources at rest with 50 hosted bots.

Run:  .venv/bin/python bench/bench_observability.py [--bots 50] [--rest 60] [--base-image IMAGE]

It starts its own redis-server, a real `python -m runner` (host networking, instance label
"bench-<pid>", RUNNER_STATS_INTERVAL=10) and the fake Bot API, then:
  1. 50 users each deploy one bot through the chat (a .py sent with /start_bot), against a control
     bot whose aiogram types are built all at import (`eager`, what the control bot did before);
     at rest, its RSS. Then the same 50 deploys again against the control bot as it starts now
     (`lean`), and its RSS at rest.
  2. The runner's CPU (from /proc, over --rest seconds) and RSS with the 50 bots idle, and how long
     each stats sweep of the 50 takes (read back from the sample timestamps in Redis).
  3. The cost of metrics on the command path: status round trips through the gateway with the
     counters and the histogram, and with them replaced by no-ops, interleaved.
  4. Chart rendering for 1 h and 7 d of samples.
Everything it creates carries the bench label and is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
from redis.asyncio import Redis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_runner import add_base_image, pct  # noqa: E402

from controlbot import charts, metrics  # noqa: E402
from controlbot.gateway import Caller, Gateway, Target  # noqa: E402
from protocol import keys  # noqa: E402
from protocol.client import RunnerClient  # noqa: E402
from protocol.models import BotStats, Limits, Sample  # noqa: E402
from tests.fakes.telegram import FakeTelegram  # noqa: E402
from tests.fixtures.services import free_port, start_redis_server  # noqa: E402

BOT = b"import time\nprint('up', flush=True)\nwhile True:\n    time.sleep(3600)\n"
EAGER = "import aiogram.types; from controlbot.__main__ import main; main()"  # lean.py then does nothing
PY = str(REPO / ".venv" / "bin" / "python")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, env={**os.environ, **env, "PYTHONPATH": str(REPO)}, stdout=out, stderr=out
        )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)


def deploy_all(fake: FakeTelegram, token: str, users: list[int], names: list[str]) -> None:
    """Each user sends their bot with /start_bot; waits until every card shows it running."""
    for uid, name in zip(users, names, strict=True):
        fake.user(uid, f"user{uid}").send_document(token, "bot.py", BOT, f"/start_bot {name}")

    def done() -> bool:
        return all(
            any("🟢" in (m.text or "") and name in (m.text or "") for m in fake.sent(token, uid))
            for uid, name in zip(users, names, strict=True)
        )

    wait_until(done, 900, "every deploy to finish")


def controlbot_rss(
    args: argparse.Namespace, fake: FakeTelegram, redis_url: str, tmp: Path, eager: bool
) -> float:
    token = fake.new_token("bench")
    users = [880_001 + i + (1000 if eager else 0) for i in range(args.bots)]
    env = {
        "BOT_TOKEN": token,
        "ADMIN_IDS": "880000",
        "ALLOWED_USER_IDS": ",".join(map(str, users)),
        "REDIS_URL": redis_url,
        "TELEGRAM_API_URL": fake.url,
        "API_PORT": str(free_port()),
        "LOG_LEVEL": "WARNING",
    }
    argv = [PY, "-c", EAGER] if eager else [PY, "-m", "controlbot"]
    with process(argv, env, tmp / f"controlbot-{'eager' if eager else 'lean'}.log") as proc:
        wait_until(lambda: fake.poll_stats(token).polls > 0, 120, "the control bot to poll")
        names = [f"b{'e' if eager else 'l'}{i}" for i in range(args.bots)]
        t0 = time.perf_counter()
        deploy_all(fake, token, users, names)
        print(
            f"  {args.bots} chat deploys ({'eager' if eager else 'lean'}): {time.perf_counter() - t0:.1f} s"
        )
        time.sleep(args.rest / 2)
        return rss_mb(proc.pid)


async def delete_all(redis_url: str, owners: list[int]) -> None:
    from protocol.models import Command, Op

    redis = Redis.from_url(redis_url)
    client = RunnerClient(redis)
    for owner in owners:
        for name in [n.decode() for n in await redis.hkeys(keys.owner_bots(owner))]:
            await client.call(Command(op=Op.DELETE, owner=owner, name=name))
    await redis.aclose()


async def metrics_cost(redis_url: str, owner: int, name: str, n: int) -> tuple[list[float], list[float]]:
    """Status through the gateway with metrics, and with no-op metrics, interleaved in blocks."""

    class Nop:
        def labels(self, *a: str) -> Nop:
            return self

        def inc(self, *a: float) -> None: ...

        def observe(self, *a: float) -> None: ...

    redis = Redis.from_url(redis_url)
    gateway = Gateway(RunnerClient(redis), bot_token="1:TEST", max_upload_bytes=1)
    caller, target = Caller(id=owner, admin=False), Target(owner, name)
    real = (metrics.COMMANDS, metrics.COMMAND_DURATION)
    on: list[float] = []
    off: list[float] = []
    for i in range(2 * n):  # alternate call by call, so load on the machine hits both alike
        with_metrics = i % 2 == 0
        metrics.COMMANDS, metrics.COMMAND_DURATION = real if with_metrics else (Nop(), Nop())  # type: ignore[assignment]
        t0 = time.perf_counter()
        await gateway.status(caller, target)
        (on if with_metrics else off).append(time.perf_counter() - t0)
    metrics.COMMANDS, metrics.COMMAND_DURATION = real
    await redis.aclose()
    return on, off


def chart_times() -> dict[str, tuple[list[float], list[float]]]:
    now = time.time()
    limits = Limits(memory_bytes=256 * 2**20, cpu=0.5, pids=128)
    raw = [
        Sample(ts=now - 3600 + i * 10, memory_bytes=30_000_000 + i * 1000, cpu_percent=i % 5)
        for i in range(360)
    ]
    coarse = [
        Sample(ts=now - 7 * 86400 + i * 300, memory_bytes=30_000_000, cpu_percent=1.0) for i in range(2004)
    ]
    sets = {"1h": BotStats(owner=1, name="x", limits=limits, samples=raw, restarts=[now - 900])}
    sets["7d"] = BotStats(owner=1, name="x", limits=limits, samples=coarse + raw, restarts=[now - 90_000])
    t0, c0 = time.perf_counter(), time.process_time()
    charts.render(sets["1h"], "first", 3600)
    out = {"first chart (imports matplotlib)": ([time.perf_counter() - t0], [time.process_time() - c0])}
    for span, stats in sets.items():
        wall, cpu = [], []
        for _ in range(10):
            t0, c0 = time.perf_counter(), time.process_time()
            charts.render(stats, f"x · {span}", charts.RANGES[span])
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        out[f"{span}: {len(stats.samples)} samples"] = (wall, cpu)
    return out


async def sweep_durations(redis_url: str, owner: int, name: str, interval: float) -> list[float]:
    redis = Redis.from_url(redis_url)
    rows = await redis.zrange(keys.history_raw(owner, name), 0, -1, withscores=True)
    await redis.aclose()
    ts = [score for _m, score in rows]
    return [max(0.0, b - a - interval) for a, b in itertools.pairwise(ts)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bots", type=int, default=50)
    ap.add_argument("--rest", type=float, default=60.0)
    add_base_image(ap)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-obs-"))
    redis_proc, redis_url = start_redis_server(tmp)
    instance = f"bench-{os.getpid()}"
    interval = 10.0
    runner_env = {
        "REDIS_URL": redis_url,
        "RUNNER_BASE_IMAGE": args.base_image,
        "RUNNER_NETWORK_MODE": "host",
        "RUNNER_BUILD_NETWORK": "host",
        "RUNNER_INSTANCE": instance,
        "RUNNER_EGRESS": "open",
        "MAX_BOTS_PER_USER": "3",
        "RUNNER_STATS_INTERVAL": str(interval),
        "RUNNER_METRICS_PORT": str(free_port()),
    }
    ca = Path("/etc/ssl/certs/ca-certificates.crt")
    if ca.is_file():  # as the tests run it, so the runtime image they built is reused
        runner_env["RUNNER_CA_BUNDLE"] = str(ca)
    fake = FakeTelegram().start_thread()
    try:
        with process([PY, "-m", "runner"], runner_env, tmp / "runner.log") as runner:
            wait_until(
                lambda: b"runtime image" in (tmp / "runner.log").read_bytes(), 600, "the runtime image"
            )
            print("control bot RSS at rest, 50 users having deployed one bot each:")
            eager = controlbot_rss(args, fake, redis_url, tmp, eager=True)
            print(f"  eager aiogram types: {eager:.0f} MB")
            asyncio.run(delete_all(redis_url, [881_001 + i for i in range(args.bots)]))
            lean = controlbot_rss(args, fake, redis_url, tmp, eager=False)
            print(f"  lean (as shipped):   {lean:.0f} MB")

            print(f"runner at rest with {args.bots} idle bots, over {args.rest:.0f} s:")
            c0, t0 = cpu_s(runner.pid), time.monotonic()
            time.sleep(args.rest)
            share = (cpu_s(runner.pid) - c0) / (time.monotonic() - t0) * 100
            print(f"  CPU {share:.2f}% of one core, RSS {rss_mb(runner.pid):.0f} MB")
            sweeps = asyncio.run(sweep_durations(redis_url, 880_001, "bl0", interval))
            if sweeps:
                print(
                    f"  stats sweep of {args.bots} bots: p50 {pct(sweeps, 50):.2f} s, max {max(sweeps):.2f} s"
                )
            scrapes = []
            for _ in range(5):
                t = time.perf_counter()
                body = httpx.get(f"http://127.0.0.1:{runner_env['RUNNER_METRICS_PORT']}/metrics").text
                scrapes.append(time.perf_counter() - t)
            print(
                f"  runner /metrics scrape: p50 {statistics.median(scrapes) * 1000:.1f} ms, {len(body)} bytes"
            )

            on, off = asyncio.run(metrics_cost(redis_url, 880_001, "bl0", 400))
            m_on, m_off = statistics.median(on), statistics.median(off)
            print("metrics on the command path (status through the gateway, 400 + 400 alternating):")
            print(
                f"  with {m_on * 1000:.2f} ms, without {m_off * 1000:.2f} ms p50: "
                f"{(m_on / m_off - 1) * 100:+.1f}%"
            )
            t = time.perf_counter()
            for _ in range(10_000):
                metrics.COMMANDS.labels("status", "ok").inc()
                metrics.COMMAND_DURATION.labels("status").observe(0.002)
            print(
                "  one counter + one histogram observation: "
                f"{(time.perf_counter() - t) / 10_000 * 1e6:.1f} µs"
            )
            asyncio.run(delete_all(redis_url, [880_001 + i for i in range(args.bots)]))
        print("chart rendering (Agg, 800x450 PNG):")
        for label, (wall, cpu) in chart_times().items():
            print(
                f"  {label}: wall p50 {statistics.median(wall) * 1000:.0f} ms (max {max(wall) * 1000:.0f}), "
                f"CPU p50 {statistics.median(cpu) * 1000:.0f} ms"
            )
    finally:
        fake.stop_thread()
        client = docker.from_env()
        for c in client.containers.list(all=True, filters={"label": f"botrunner.instance={instance}"}):
            c.remove(force=True, v=True)
        for v in client.volumes.list(filters={"label": f"botrunner.instance={instance}"}):
            with contextlib.suppress(docker.errors.APIError):
                v.remove(force=True)
        redis_proc.terminate()
        print(f"logs in {tmp}")


if __name__ == "__main__":
    main()
