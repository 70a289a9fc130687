"""Fault-injection points the tests switch on through the environment. Not settings: production
never sets them, and neither the README nor .env.example lists them."""

from __future__ import annotations

import os

ACK_DELAY_ENV = "BOTRUNNER_FAULT_ACK_DELAY"


def ack_delay() -> float:
    """Seconds to pause between a command's effect and its acknowledgement (0: none)."""
    try:
        return max(0.0, float(os.environ.get(ACK_DELAY_ENV) or 0))
    except ValueError:
        return 0.0
