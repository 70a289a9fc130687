"""Deploy latency through the chat: a .py uploaded to the real control bot, against the bare SDK floor.

Run:  .venv/bin/python bench/bench_chat.py [--runs 20] [--profile 5] [--base-image IMAGE]

It starts its own redis-server on a free loopback port, the fake Bot API (in a thread), a real
`python -m runner` (host networking, instance label "bench-chat-<pid>") and a real
`python -m controlbot` polling the fake over HTTP, then measures, interleaved, `--runs` times:
  * floor: volumes + create + put_archive + start straight through the docker SDK, to first output
  * chat: a user uploads bot.py with the caption `/start_bot <name>` -> the container's first output
    (and -> the edit that shows the 🟢 card)
  * the control bot's share: getUpdates hands the update over -> the START command is on the stream
"First output" is the docker daemon's timestamp of the bot's first log line, so polling adds nothing.
Then `--profile` more chat deploys with Redis MONITOR on (and as many with a token-shaped env value)
show which Redis commands the control bot sends before the START lands. All times are wall clock
(time.time()), comparable across the processes on this host. Everything is removed by label at the end.
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
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import docker
import docker.errors
from redis.asyncio import Redis

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO), str(BENCH)]

from bench_runner import CODE, add_base_image, floor_create, floor_remove, pct, row, runner_env  # noqa: E402
from chat_probes import (  # noqa: E402
    STEP_TIMEOUT,
    ChatRun,
    Monitor,
    StartEvents,
    StreamWatch,
    first_output,
)

from protocol.client import RunnerClient  # noqa: E402
from protocol.models import Command, Op  # noqa: E402
from tests.fakes.telegram import FakeTelegram  # noqa: E402
from tests.fixtures.services import start_redis_server  # noqa: E402

ADMIN = 920_001
OWNER = 920_002  # an allowed user, not an admin: the common case
ENV_TOKEN = "123456:TESTbenchtokenvalue"  # token-shaped, obviously fake


def floor_first_output(
    client: docker.DockerClient, image: str, labels: dict[str, str], name: str
) -> tuple[float, float]:
    """(start time, first output time) of one container made straight through the SDK."""
    t0 = time.time()
    c = floor_create(client, image, labels, name)
    c.start()
    first = first_output(client, name)
    floor_remove(client, c, name)
    return t0, first


async def chat_deploy(
    fake: FakeTelegram,
    token: str,
    watch: StreamWatch,
    starts: StartEvents,
    client: docker.DockerClient,
    name: str,
    caption: str,
) -> ChatRun:
    """One deploy as the user does it, timed at every hop the fake and Redis can see."""
    user = fake.user(OWNER, "Bench")
    mark = len(fake.messages(token, OWNER))
    t0 = time.time()
    upload = user.send_document(token, "bot.py", CODE, caption)
    xadd = await watch.wait(Op.START, name)
    started = await starts.wait(f"botrunner-{OWNER}-{name}")
    first = await asyncio.to_thread(first_output, client, f"botrunner-{OWNER}-{name}")
    card = await fake.wait_for(
        token,
        OWNER,
        lambda m: m.message_id > mark and "🟢" in (m.text or ""),
        STEP_TIMEOUT,
    )
    del card
    calls = [c for c in fake.call_times(token) if c[0] >= t0]
    edits = [t for t, m in calls if m == "editmessagetext"]
    delivered = fake.delivered_at(token, upload)
    assert delivered is not None
    return ChatRun(t0, delivered, calls, xadd, started, first, edits[-1])


def ms_row(label: str, xs: list[float]) -> str:
    return f"| {label} | {len(xs)} | {pct(xs, 50) * 1000:.1f} | {pct(xs, 95) * 1000:.1f} |"


def breakdown(runs: list[ChatRun]) -> list[str]:
    """Medians of each hop of the chat path, in order."""
    hops: dict[str, list[float]] = {}

    def add(label: str, a: float, b: float) -> None:
        hops.setdefault(label, []).append(b - a)

    for r in runs:
        sent = r.first_call("sendmessage", r.delivered)
        get_file = r.first_call("getfile", sent)
        download = r.first_call("download", get_file)
        add("upload -> getUpdates hands it over", r.upload, r.delivered)
        add("handed over -> sendMessage '⏳ downloading' arrives", r.delivered, sent)
        add("sendMessage -> getFile arrives", sent, get_file)
        add("getFile -> file download arrives", get_file, download)
        add("download -> START on the stream", download, r.xadd)
        add("START on the stream -> container started (runner + docker)", r.xadd, r.started)
        add("container started -> first output (python)", r.started, r.first_output)
        add("first output -> 🟢 card edit arrives", r.first_output, r.card)
    return [ms_row(label, xs) for label, xs in hops.items()]


def report(floor: list[float], floor_split: list[tuple[float, float]], chat: list[ChatRun]) -> None:
    first = [r.first_output - r.upload for r in chat]
    share = [r.xadd - r.delivered for r in chat]
    print("| measurement | n | p50 ms | p95 ms | ratio of medians |")
    print("|---|---|---|---|---|")
    print(row("floor: SDK volumes+create+put_archive+start -> first output", floor))
    print(row("chat: upload with `/start_bot name` -> first output", first, floor))
    print(row("chat: upload -> 🟢 card edit", [r.card - r.upload for r in chat], floor))
    queue = [r.first_output - r.xadd for r in chat]
    print(row("its queue part: START on the stream -> first output", queue, floor))
    print(ms_row("control bot's share: update handed over -> START on the stream", share) + " (own) |")
    print()
    print("| hop of the chat path (main runs) | n | p50 ms | p95 ms |")
    print("|---|---|---|---|")
    print("\n".join(breakdown(chat)))
    print(ms_row("floor: SDK calls -> container started", [a for a, _b in floor_split]))
    print(ms_row("floor: container started -> first output", [b for _a, b in floor_split]))
    ratio = statistics.median(first) / statistics.median(floor)
    print(f"\nchat path {ratio:.2f}x the floor (target <= 1.2x)", end="; ")
    print(f"control bot's share p50 {statistics.median(share) * 1000:.1f} ms (target <= 10 ms)")


def report_profile(monitor: Monitor, plain: list[ChatRun], with_token: list[ChatRun]) -> None:
    """Redis MONITOR on: the control bot's commands before the START, plain and with a token env."""
    print("\n| profile (Redis MONITOR on) | n | p50 ms | p95 ms |")
    print("|---|---|---|---|")
    for label, runs in (
        ("`/start_bot name`", plain),
        (f"`/start_bot name BOT_TOKEN={ENV_TOKEN}`", with_token),
    ):
        print(ms_row(f"share, {label}", [r.xadd - r.delivered for r in runs]))
        print(ms_row(f"first output, {label}", [r.first_output - r.upload for r in runs]))
    for label, runs in (("plain", plain), ("token env", with_token)):
        counts: Counter[str] = Counter()
        for r in runs:
            counts.update(c.split(" ", 1)[1] for _t, c in monitor.until_start(r) if c.startswith("bot:"))
        per_deploy = ", ".join(f"{k} x{v / len(runs):g}" for k, v in counts.most_common())
        print(f"\ncontrol bot's Redis commands before the START, {label}, per deploy: {per_deploy}")
        r = runs[len(runs) // 2]
        steps = [(t, f"tg {m}") for t, m in r.calls if r.delivered <= t <= r.xadd + 0.005]
        steps += monitor.until_start(r)
        print(f"one {label} deploy, ms after the hand-over:")
        print("  " + ", ".join(f"+{(t - r.delivered) * 1000:.1f} {what}" for t, what in sorted(steps)))


async def wait_up(runner: subprocess.Popen[bytes], log: Path, rc: RunnerClient) -> str:
    """The runtime image's tag once the runner has it (it may build it: minutes) and beats."""
    deadline = time.monotonic() + 900
    while "runtime image" not in log.read_text() or await rc.health() is None:
        if time.monotonic() > deadline or runner.poll() is not None:
            raise SystemExit("runner did not come up:\n" + log.read_text()[-3000:])
        await asyncio.sleep(0.2)
    return log.read_text().split("runtime image ", 1)[1].split()[0]


async def wait_polling(fake: FakeTelegram, token: str, bot: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while fake.poll_stats(token).polls == 0:
        if time.monotonic() > deadline or bot.poll() is not None:
            raise SystemExit("controlbot did not poll:\n" + log.read_text()[-3000:])
        await asyncio.sleep(0.05)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--profile", type=int, default=5, help="MONITORed deploys, plain and token env")
    add_base_image(ap)
    args = ap.parse_args()
    instance = f"bench-chat-{os.getpid()}"
    labels = {"botrunner.instance": instance, "botrunner.test": "1"}
    workdir = Path(tempfile.mkdtemp(prefix="botrunner-bench-chat-"))
    redis_proc, url = start_redis_server(workdir)
    fake = FakeTelegram().start_thread()
    token = fake.new_token("control")
    fake.user(ADMIN, "Admin")
    fake.user(OWNER, "Bench")
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(module: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
        path = workdir / f"{module}.log"
        with path.open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", module], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT
                )
            )
        return procs[-1], path

    runner, runner_log = spawn("runner", runner_env(url, args.base_image, instance))
    bot_env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "BOT_TOKEN": token,
        "ADMIN_IDS": str(ADMIN),
        "ALLOWED_USER_IDS": str(OWNER),
        "REDIS_URL": url,
        "TELEGRAM_API_URL": fake.url,
        "API_ENABLED": "false",
        "LOG_LEVEL": "INFO",  # as in production; DEBUG logs every aiogram update
    }
    client = docker.from_env()
    redis = Redis.from_url(url)
    watch_redis = Redis.from_url(url)
    rc = RunnerClient(redis)
    watch = StreamWatch(watch_redis)
    starts = StartEvents(client, instance)
    try:
        image = await wait_up(runner, runner_log, rc)
        bot, bot_log = spawn("controlbot", bot_env)
        await wait_polling(fake, token, bot, bot_log)
        watch.start()

        async def deploy(name: str, caption: str) -> ChatRun:
            run = await chat_deploy(fake, token, watch, starts, client, name, caption)
            res = await rc.call(Command(op=Op.DELETE, owner=OWNER, name=name))
            assert res.ok, res.error
            return run

        await deploy("warmup", "/start_bot warmup")  # first-use costs: imports, connections, i18n
        floor: list[float] = []
        floor_split: list[tuple[float, float]] = []  # SDK calls -> started, started -> first output
        chat: list[ChatRun] = []
        for i in range(args.runs):  # interleaved, so drift on this noisy machine hits both alike
            name = f"bench-chatfloor-{os.getpid()}-{i}"
            t0, first = await asyncio.to_thread(floor_first_output, client, image, labels, name)
            floor.append(first - t0)
            if (started := starts.started.get(name)) is not None:
                floor_split.append((started - t0, first - started))
            chat.append(await deploy(f"c{i}", f"/start_bot c{i}"))

        monitor = Monitor(int(urlsplit(url).port or 6379), workdir / "monitor.txt")
        procs.append(monitor.proc)  # stopped in `finally` too, should a profile deploy fail
        await asyncio.sleep(0.2)
        plain: list[ChatRun] = []
        with_token: list[ChatRun] = []
        for i in range(args.profile):
            plain.append(await deploy(f"p{i}", f"/start_bot p{i}"))
            with_token.append(await deploy(f"t{i}", f"/start_bot t{i} BOT_TOKEN={ENV_TOKEN}"))
        await monitor.stop(after=time.time())
        print(f"runs={args.runs} profile={args.profile} image={image} cpus={os.cpu_count()}")
        report(floor, floor_split, chat)
        if args.profile:
            report_profile(monitor, plain, with_token)
    finally:
        await watch.stop()
        starts.close()
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        await rc.close()
        await redis.aclose()
        await watch_redis.aclose()
        fake.stop_thread()
        redis_proc.terminate()
        for c in client.containers.list(all=True, filters={"label": f"botrunner.instance={instance}"}):
            c.remove(force=True)
        for v in client.volumes.list(filters={"label": f"botrunner.instance={instance}"}):
            v.remove(force=True)
        print(f"logs in {workdir}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
