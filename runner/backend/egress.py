"""The egress guard: bots on the bots' bridge reach public addresses and nothing else.

Docker has no egress filter, so the guard keeps iptables rules tagged `botrunner:<instance>`:
- forwarded traffic (other networks, the internet): rules in Docker's `DOCKER-USER`, `-i <bridge>`
- traffic to the host itself (the gateway, any host address) never passes FORWARD: it goes through
  INPUT, which jumps to `BOTRUNNER-INPUT` for `-i <bridge>`

The runner applies them itself when it can (root with NET_ADMIN, as in tests on the host). Under
compose it runs as uid 10001 without capabilities, so a short-lived helper container with
`network_mode=host` and NET_ADMIN applies them instead. Installed at start, re-checked on every
reconcile, removed once the network is gone; a check that finds them in place changes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import subprocess
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import docker
import docker.errors

from protocol.errors import BotrunnerError
from runner.backend import egress_rules as rules
from runner.backend import names

log = logging.getLogger(__name__)

HELPER_REPO = "botrunner/egress-helper"
HELPER_TIMEOUT_S = 60.0
_UNFILTERED_NETWORKS = {"host", "none"}


class EgressMode(StrEnum):
    PUBLIC = "public"
    OPEN = "open"


class EgressError(BotrunnerError):
    """The guard could not be installed: bots must not start unguarded."""


def bridge_of(attrs: dict[str, Any]) -> str:
    """The Linux interface of a bridge network: its explicit name, or Docker's `br-<id[:12]>`."""
    options = attrs.get("Options") or {}
    return str(options.get("com.docker.network.bridge.name") or f"br-{attrs['Id'][:12]}")


def subnets_of(attrs: dict[str, Any]) -> list[str]:
    configs = (attrs.get("IPAM") or {}).get("Config") or []
    return [str(c["Subnet"]) for c in configs if "." in str(c.get("Subnet", ""))]


class EgressGuard:
    def __init__(
        self,
        *,
        mode: EgressMode,
        allow: list[str],
        instance: str,
        network: str,
        base_image: str,
        build_network: str | None,
        client: Callable[[], docker.DockerClient],
        helper: bool | None = None,
    ) -> None:
        self.mode = mode
        self.allow = rules.parse_allow(allow)
        self.instance = instance
        self.network = network
        self.base_image = base_image
        self.build_network = build_network
        self._client = client
        # None until the first try tells whether the runner may call iptables itself; tests force
        # the helper with helper=True.
        self._direct: bool | None = None if helper is None else not helper
        self._lock = asyncio.Lock()

    @property
    def active(self) -> bool:
        return self.mode is EgressMode.PUBLIC and self.network not in _UNFILTERED_NETWORKS

    @property
    def describe(self) -> str:
        """One line for the heartbeat and /system."""
        if self.network == "host":
            return "open (host network)"
        if self.network == "none":
            return "none (no network)"
        return self.mode.value

    def warn_at_start(self) -> None:
        if self.network == "host":
            log.warning(
                "!!! RUNNER_NETWORK_MODE=host: bots share the host's network and NO egress guard can "
                "apply; they reach the host, its loopback, private networks and the metadata address !!!"
            )
        elif self.mode is EgressMode.OPEN:
            log.warning("RUNNER_EGRESS=open: bots reach the host and private networks (no egress guard)")

    async def ensure(self) -> None:
        """Install or repair this instance's rules, or remove them when the network is gone."""
        if not self.active:
            return
        async with self._lock:
            await asyncio.to_thread(self._ensure)

    async def remove(self) -> None:
        """Remove this instance's rules whatever the network's state (teardown, tests)."""
        async with self._lock:
            await asyncio.to_thread(self._apply_desired, None, [])

    # -- blocking ----------------------------------------------------------------------------
    def _ensure(self) -> None:
        attrs = self._network_attrs()
        if attrs is not None and attrs.get("Driver") != "bridge":
            log.warning(
                "egress guard: network %s is a %s network, not guarded", self.network, attrs.get("Driver")
            )
            return
        bridge = bridge_of(attrs) if attrs is not None else None
        self._apply_desired(bridge, subnets_of(attrs) if attrs is not None else [])

    def _network_attrs(self) -> dict[str, Any] | None:
        try:
            net = self._client().networks.get(self.network)
        except docker.errors.NotFound:
            return None
        attrs: dict[str, Any] = net.attrs
        return attrs if attrs.get("Name") == self.network else None

    def _apply_desired(self, bridge: str | None, subnets: list[str]) -> None:
        snap = rules.parse_snapshot(self._run(rules.SNAPSHOT_SCRIPT))
        if not snap.binary:
            raise EgressError("egress guard: no iptables backend holds Docker's DOCKER-USER chain")
        want = rules.desired(self.instance, bridge, snap.nameservers, self.allow, subnets)
        cmds = rules.plan(snap, want, self.instance)
        if not cmds:
            return
        self._run(rules.script(snap.binary, cmds))
        if bridge is None:
            log.info("egress guard: network %s is gone; rules removed", self.network)
        else:
            log.info(
                "egress guard: %d rules on %s (%s), DNS to %s",
                sum(len(r) for r in want.values()),
                bridge,
                snap.binary,
                ", ".join(snap.nameservers) or "-",
            )

    def _run(self, script: str) -> str:
        if self._direct is not False:
            out = self._run_direct(script)
            if out is not None:
                self._direct = True
                return out
            if self._direct:
                raise EgressError("egress guard: iptables stopped working in the runner")
            log.info("egress guard: no iptables access here; using a helper container")
            self._direct = False
        return self._run_helper(script)

    @staticmethod
    def _run_direct(script: str) -> str | None:
        """The script's output, or None when iptables is missing or not allowed here."""
        try:
            proc = subprocess.run(
                ["sh", "-c", script], capture_output=True, text=True, timeout=HELPER_TIMEOUT_S, check=False
            )
        except OSError:
            return None
        if proc.returncode != 0:
            raise EgressError(f"egress guard: iptables failed: {proc.stderr.strip()[-500:]}")
        # Unprivileged or without iptables, the snapshot finds no backend: try the helper.
        return None if proc.stdout.startswith("@bin \n") else proc.stdout

    def _run_helper(self, script: str) -> str:
        client = self._client()
        image = self._helper_image(client)
        try:
            out = client.containers.run(
                image,
                ["sh", "-c", script],
                network_mode="host",
                cap_drop=["ALL"],
                cap_add=["NET_ADMIN", "NET_RAW"],
                security_opt=["no-new-privileges"],
                user="0:0",
                labels={names.LABEL_INSTANCE: self.instance, "botrunner.role": "egress-helper"},
                remove=True,
                stdout=True,
                stderr=False,
            )
        except docker.errors.ContainerError as e:
            raise EgressError(f"egress guard: the helper failed: {e}") from e
        return out.decode() if isinstance(out, bytes) else str(out)

    def _helper_image(self, client: docker.DockerClient) -> str:
        """`FROM <base image>` plus Debian's iptables (both the nft and legacy binaries), by tag."""
        dockerfile = (
            f"FROM {self.base_image}\n"
            "RUN apt-get update && apt-get install -y --no-install-recommends iptables "
            "&& rm -rf /var/lib/apt/lists/*\n"
        )
        tag = f"{HELPER_REPO}:{hashlib.sha256(dockerfile.encode()).hexdigest()[:16]}"
        try:
            client.images.get(tag)
            return tag
        except docker.errors.ImageNotFound:
            pass
        log.info("egress guard: building helper image %s", tag)
        client.images.build(
            fileobj=io.BytesIO(dockerfile.encode()),
            tag=tag,
            rm=True,
            forcerm=True,
            network_mode=self.build_network,
            labels={"botrunner.role": "egress-helper"},
            timeout=int(HELPER_TIMEOUT_S * 10),
        )
        return tag
