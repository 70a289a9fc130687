"""`python -m controlbot` / `botrunner-controlbot`: the Telegram control bot."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from pydantic import ValidationError

from controlbot.settings import Settings, describe_errors
from protocol.aio import keep_cancels

EXIT_CONFIG = 2


def main() -> None:
    try:
        settings = Settings()  # required fields come from the environment
    except ValidationError as e:
        for line in describe_errors(e):
            print(f"controlbot: {line}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aiogram's types are imported before anything else touches them, so their validators are
    # built on first use rather than all at import (about 100 MB less at rest: see lean.py).
    from controlbot.lean import import_aiogram_lazily

    import_aiogram_lazily()
    from controlbot.app import run  # after the settings check: a bad config fails fast and quietly

    keep_cancels()  # before the event loop: Python 3.11's wait_for drops cancels (protocol/aio.py)
    with contextlib.suppress(KeyboardInterrupt):  # aiogram already stopped polling gracefully
        asyncio.run(run(settings))


if __name__ == "__main__":
    main()
