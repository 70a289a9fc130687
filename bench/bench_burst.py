"""A burst of chat deploys: many users upload a .py with /start_bot at the same instant.

Run:  .venv/bin/python bench/bench_burst.py [--users 50] [--per-user 2] [--rounds 1]

It starts its own redis-server, the fake Bot API, a real runner (host networking, instance label
"bench-<pid>") and a real control bot, then has every user upload their bots at once and times,
from the test side, each deploy from its upload to its card showing the bot running. Between
rounds and at the end every bot is deleted through the runner; the label sweeps what is left.
Needs dockerd, redis-server and the test base image (BOTRUNNER_TEST_BASE_IMAGE).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fakes.telegram import FakeTelegram  # noqa: E402
from tests.fixtures.burst import BurstFigures, run_burst  # noqa: E402
from tests.fixtures.controlbot import ControlbotProcess, controlbot_env, delete_bots_of  # noqa: E402
from tests.fixtures.runner import RunnerProcess, runner_env  # noqa: E402
from tests.fixtures.services import INSTANCE_LABEL, start_redis_server  # noqa: E402

FIRST_USER = 860_001


def sweep(instance: str) -> None:
    client = docker.from_env()
    try:
        for c in client.containers.list(all=True, filters={"label": f"{INSTANCE_LABEL}={instance}"}):
            c.remove(force=True)
        for v in client.volumes.list(filters={"label": f"{INSTANCE_LABEL}={instance}"}):
            v.remove(force=True)
    finally:
        client.close()


def row(label: str, figures: BurstFigures) -> str:
    return (
        f"| {label} | {figures.deploys} | {figures.users} | {len(figures.to_card_s)} | "
        f"{len(figures.failures)} | {figures.last_running_s:.1f} | {figures.percentile(50):.1f} | "
        f"{figures.percentile(99):.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--per-user", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument(
        "--base-image", default=os.environ.get("BOTRUNNER_TEST_BASE_IMAGE", "python:3.12-slim")
    )
    args = parser.parse_args()
    users = list(range(FIRST_USER, FIRST_USER + args.users))
    instance = f"bench-{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="bench-burst-") as tmp, FakeTelegram() as fake:
        work = Path(tmp)
        redis_proc, url = start_redis_server(work)
        env = runner_env(url, args.base_image, instance, MAX_BOTS_PER_USER=str(args.per_user + 1))
        runner = RunnerProcess(env, work / "runner.log", work)
        bot = ControlbotProcess(
            controlbot_env(fake, url, ALLOWED_USER_IDS=",".join(map(str, users)), API_ENABLED="false"),
            work / "controlbot.log",
            work,
        )
        rows: list[str] = []
        try:
            runner.start()
            bot.start(fake)
            for n in range(args.rounds):
                figures = run_burst(fake, bot.token, users, args.per_user, args.timeout, prefix=f"b{n}")
                print(figures.summary(), flush=True)
                for failure in figures.failures[:5]:
                    print("  ", failure)
                rows.append(row(f"round {n + 1}", figures))
                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(lambda uid: delete_bots_of(url, uid), users))
        finally:
            bot.stop()
            runner.stop()
            redis_proc.terminate()
            redis_proc.wait(10)
            sweep(instance)
    print("| run | deploys | users | running | failed | last running s | p50 s | p99 s |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
