"""At start: every private host in GIT_ALLOWED_HOSTS must be reachable through the egress guard.

Clones run in job containers on the bots' guarded network, which reaches public addresses only.
A private git server the operator allowed (GIT_ALLOWED_HOSTS) therefore also needs an exception in
RUNNER_EGRESS_ALLOW; otherwise every clone from it fails with "could not reach". Say so once, at
start, naming what is missing.
"""

from __future__ import annotations

import ipaddress
import logging
import socket

from runner.backend.egress_rules import parse_allow
from runner.settings import Settings

log = logging.getLogger(__name__)


def clones_are_guarded(s: Settings) -> bool:
    network = s.runner_build_network or s.runner_network_mode
    return (
        s.runner_egress == "public" and s.runner_network_mode != "host" and network == s.runner_network_mode
    )


def missing_egress(s: Settings) -> list[str]:
    """'host (address)' for each private address of an allowed git host the guard would block."""
    allowed = [ipaddress.ip_network(a.cidr) for a in parse_allow(s.runner_egress_allow)]
    missing: list[str] = []
    for host in s.git_allowed_hosts:
        host = host.strip().lower().rstrip(".")
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            continue  # unresolvable now; the clone will say so
        for addr in sorted({str(i[4][0]).split("%", 1)[0] for i in infos}):
            ip = ipaddress.ip_address(addr)
            if not ip.is_global and not any(ip in net for net in allowed):
                missing.append(f"{host} ({addr})")
    return missing


def check_git_egress(s: Settings) -> None:
    """Blocking (DNS): run it in a thread."""
    if not clones_are_guarded(s):
        return
    missing = missing_egress(s)
    if missing:
        log.warning(
            "GIT_ALLOWED_HOSTS names private hosts the egress guard blocks for clones: %s; add "
            "them to RUNNER_EGRESS_ALLOW (a CIDR or host:port)",
            ", ".join(missing),
        )
