"""`python -m runner` (console script `botrunner-runner`): the daemon; `--check` for health."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time

from pydantic import ValidationError

from protocol.aio import keep_cancels
from runner.settings import Settings


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as e:
        for err in e.errors():
            var = str(err["loc"][0]).upper() if err["loc"] else "settings"
            print(f"runner: invalid setting {var}: {err['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


async def check(settings: Settings) -> int:
    """0 while this runner's own heartbeat is fresh, 1 otherwise (compose healthchecks use it)."""
    from redis.asyncio import Redis

    from protocol import keys
    from protocol.models import RunnerHealth

    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=3)
    try:
        raw = await redis.get(keys.heartbeat(settings.runner_id))
    except Exception as e:
        print(f"runner: redis unreachable: {e}", file=sys.stderr)
        return 1
    finally:
        await redis.aclose()
    if raw is None:
        print(f"runner {settings.runner_id}: no heartbeat", file=sys.stderr)
        return 1
    health = RunnerHealth.model_validate_json(raw)
    age = time.time() - health.ts
    if age > keys.HEARTBEAT_TTL:
        print(f"runner: heartbeat is {age:.0f} s old", file=sys.stderr)
        return 1
    print(f"runner {health.runner_id}: ok, docker {'ok' if health.docker_ok else 'DOWN'}")
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="botrunner-runner", description="The botrunner runner daemon.")
    parser.add_argument("--check", action="store_true", help="exit 0 if the runner's heartbeat is fresh")
    args = parser.parse_args(argv)
    keep_cancels()  # before any event loop: Python 3.11's wait_for drops cancels (protocol/aio.py)
    settings = load_settings()
    if args.check:
        raise SystemExit(asyncio.run(check(settings)))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    from runner.app import Runner
    from runner.keys import KeyFileError, KeyMismatch

    async def run() -> None:
        await Runner(settings).run()

    try:
        asyncio.run(run())
    except (KeyFileError, KeyMismatch) as e:
        print(f"runner: refusing to start: {e}", file=sys.stderr)  # one line, no traceback
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
