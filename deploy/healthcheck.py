"""The image's HEALTHCHECK: exit 0 when the service in this container is healthy, 1 otherwise.

    python /opt/botrunner/healthcheck.py [runner|controlbot]

Without an argument it reads which service runs here from PID 1's command line (with or without
an init in front of it), so one image-level HEALTHCHECK serves both services.

- runner: `python -m runner --check`, i.e. the runner's Redis heartbeat is fresh.
- controlbot: its HTTP API answers `/healthz` and reports Redis reachable. A 503 that only says
  the runner is down still counts as healthy here: the runner has its own healthcheck, and the
  control bot stays up to tell chat users "runner unavailable". With `API_ENABLED=false` the
  check is that Redis answers with the control bot's settings.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

TIMEOUT_S = 5.0


def detect_service() -> str:
    try:
        argv = Path("/proc/1/cmdline").read_bytes().split(b"\0")
    except OSError:
        argv = []
    words = [os.path.basename(a.decode(errors="replace")) for a in argv]
    # Checked first: the console script botrunner-controlbot also contains "runner".
    if any("controlbot" in w for w in words):
        return "controlbot"
    if any(w in ("runner", "botrunner-runner") for w in words):
        return "runner"
    return "controlbot"  # the image's default command


def check_runner() -> int:
    os.execvp(sys.executable, [sys.executable, "-m", "runner", "--check"])
    return 1  # not reached


def _api_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def check_controlbot() -> int:
    from pydantic import ValidationError

    from controlbot.settings import Settings

    try:
        settings = Settings()  # required values come from the environment
    except ValidationError as e:
        print(f"controlbot: invalid settings: {e.error_count()} error(s)", file=sys.stderr)
        return 1
    if not settings.api_enabled:
        from redis import Redis

        client = Redis.from_url(
            settings.redis_url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S
        )
        try:
            client.ping()
        except Exception as e:
            print(f"controlbot: redis unreachable: {e}", file=sys.stderr)
            return 1
        finally:
            client.close()
        print("controlbot: ok (API disabled; redis answers)")
        return 0
    url = f"http://{_api_host(settings.api_host)}:{settings.api_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
            body = resp.read()
    except urllib.error.HTTPError as e:
        body = e.read()  # 503: read on, it says which part is down
    except OSError as e:
        print(f"controlbot: {url} does not answer: {e}", file=sys.stderr)
        return 1
    try:
        health = json.loads(body)
    except ValueError:
        print(f"controlbot: {url} answered something that is not JSON", file=sys.stderr)
        return 1
    if not health.get("redis"):
        print("controlbot: the API answers but Redis is unreachable", file=sys.stderr)
        return 1
    runner = "ok" if health.get("status") == "ok" else "unavailable"
    print(f"controlbot: ok (API answers, redis ok, runner {runner})")
    return 0


def main() -> int:
    service = sys.argv[1] if len(sys.argv) > 1 else detect_service()
    if service == "runner":
        return check_runner()
    if service == "controlbot":
        return check_controlbot()
    print(f"usage: {sys.argv[0]} [runner|controlbot]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
