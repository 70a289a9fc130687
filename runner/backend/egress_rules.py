"""The egress guard's rules as data: what should be in iptables, and the commands that get it there.

Pure functions, no iptables or Docker calls, so the plan is the same whether the runner applies it
itself or through a helper container.
"""

from __future__ import annotations

import ipaddress
import itertools
import shlex
import socket
from dataclasses import dataclass, field

FORWARD_CHAIN = "DOCKER-USER"  # Docker jumps here first for every forwarded packet
INPUT_CHAIN = "BOTRUNNER-INPUT"  # ours: packets from the bots' bridge to the host itself
CHAINS = (FORWARD_CHAIN, "INPUT", INPUT_CHAIN)
TAG_PREFIX = "botrunner:"

# Everything a bot must not reach: the host's and other private networks, the metadata address
# (169.254.169.254), loopback, multicast and the IANA special-purpose blocks. IPv4 only: Docker
# bridges have no IPv6 unless a network is created with it.
BLOCKED_V4 = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
)

# One script lists what is installed and what the host resolves with, run either by the runner
# or by the helper container, so both paths parse the same text. The binary is the one (nft or
# legacy) in which Docker made DOCKER-USER: rules in the other backend would never be consulted.
SNAPSHOT_SCRIPT = """
B=""
for b in iptables-nft iptables-legacy; do
  if $b -S DOCKER-USER >/dev/null 2>&1; then B=$b; break; fi
done
echo "@bin $B"
[ -n "$B" ] || exit 0
for c in DOCKER-USER INPUT BOTRUNNER-INPUT; do
  echo "@chain $c"
  $B -S $c 2>/dev/null || echo "@missing"
done
echo "@resolv"
cat /etc/resolv.conf /run/systemd/resolve/resolv.conf 2>/dev/null || true
"""


@dataclass(frozen=True)
class Allowed:
    """One RUNNER_EGRESS_ALLOW entry: a network, optionally only one TCP/UDP port of it."""

    cidr: str
    port: int | None = None


@dataclass
class Snapshot:
    binary: str  # empty: no iptables backend holds DOCKER-USER
    chains: dict[str, list[list[str]] | None] = field(default_factory=dict)  # None: chain missing
    nameservers: list[str] = field(default_factory=list)


def tag(instance: str) -> str:
    return f"{TAG_PREFIX}{instance}"


def parse_allow(items: list[str]) -> list[Allowed]:
    """'192.168.5.0/24' or 'mirror.lan:3141' -> Allowed; names resolve now (IPv4 only)."""
    out: list[Allowed] = []
    for item in items:
        host, sep, port = item.rpartition(":")
        if not sep or "/" in item:
            out.append(Allowed(str(ipaddress.IPv4Network(item, strict=False))))
            continue
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{item!r}: use a CIDR or host:port")
        try:
            addrs = {str(ipaddress.IPv4Address(host))}
        except ValueError:
            try:
                infos = socket.getaddrinfo(host, int(port), socket.AF_INET, socket.SOCK_STREAM)
            except OSError as e:
                raise ValueError(f"{item!r}: {host} does not resolve ({e})") from e
            addrs = {str(info[4][0]) for info in infos}
        out.extend(Allowed(f"{addr}/32", int(port)) for addr in sorted(addrs))
    return out


def parse_snapshot(text: str) -> Snapshot:
    snap = Snapshot(binary="")
    chain: str | None = None
    in_resolv = False
    for line in text.splitlines():
        if line.startswith("@bin"):
            snap.binary = line[4:].strip()
        elif line.startswith("@chain "):
            chain = line.split()[1]
            snap.chains[chain] = []
        elif line == "@missing" and chain is not None:
            snap.chains[chain] = None
        elif line == "@resolv":
            in_resolv, chain = True, None
        elif in_resolv:
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                _add_nameserver(snap.nameservers, parts[1])
        elif chain is not None and line.startswith("-A "):
            rules = snap.chains[chain]
            if rules is not None:
                rules.append(shlex.split(line)[2:])
    return snap


def _add_nameserver(out: list[str], value: str) -> None:
    try:
        addr = ipaddress.IPv4Address(value)
    except ValueError:
        return  # IPv6: not filtered (see BLOCKED_V4)
    # A loopback resolver (systemd-resolved) is never what containers use: dockerd then forwards
    # to the upstreams in /run/systemd/resolve/resolv.conf, which the snapshot reads too.
    if not addr.is_loopback and str(addr) not in out:
        out.append(str(addr))


def _rule(
    bridge: str,
    label: str,
    target: str,
    *,
    dest: str | None = None,
    proto: str | None = None,
    port: int | None = None,
    state: bool = False,
) -> list[str]:
    # Written in the order `iptables -S` prints, so a listing compares equal to what we want.
    r = ["-d", dest] if dest else []
    r += ["-i", bridge]
    if proto:
        r += ["-p", proto, "-m", proto]
        if port is not None:
            r += ["--dport", str(port)]
    if state:
        r += ["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED"]
    return [*r, "-m", "comment", "--comment", label, "-j", target]


def _filter(
    bridge: str, label: str, nameservers: list[str], allow: list[Allowed], blocked: list[str]
) -> list[list[str]]:
    """Replies pass, DNS to the host's resolvers and the exceptions pass, the blocked ranges drop."""
    rules = [_rule(bridge, label, "RETURN", state=True)]
    for ns in nameservers:
        rules += [_rule(bridge, label, "RETURN", dest=f"{ns}/32", proto=p, port=53) for p in ("udp", "tcp")]
    for a in allow:
        if a.port is None:
            rules.append(_rule(bridge, label, "RETURN", dest=a.cidr))
        else:
            rules += [
                _rule(bridge, label, "RETURN", dest=a.cidr, proto=p, port=a.port) for p in ("tcp", "udp")
            ]
    return rules + [_rule(bridge, label, "DROP", dest=cidr) for cidr in blocked]


def desired(
    instance: str, bridge: str | None, nameservers: list[str], allow: list[Allowed], subnets: list[str]
) -> dict[str, list[list[str]]]:
    """The rules of this instance per chain; with no bridge (network gone), none."""
    label = tag(instance)
    if bridge is None:
        return {c: [] for c in CHAINS}
    blocked = list(BLOCKED_V4) + [s for s in subnets if s not in BLOCKED_V4]
    forward = _filter(bridge, label, nameservers, allow, blocked)
    # Anything addressed to the host arrives through INPUT, whatever its address: drop it all but
    # replies, DNS and the exceptions.
    to_host = _filter(bridge, label, nameservers, allow, [])
    to_host.append(_rule(bridge, label, "DROP"))
    jump = [_rule(bridge, label, INPUT_CHAIN)]
    return {FORWARD_CHAIN: forward, "INPUT": jump, INPUT_CHAIN: to_host}


def _ours(rule: list[str], label: str) -> bool:
    return any(a == "--comment" and b == label for a, b in itertools.pairwise(rule))


def _theirs(rule: list[str]) -> bool:
    return not any(a == "--comment" and b.startswith(TAG_PREFIX) for a, b in itertools.pairwise(rule))


def _in_place(current: list[list[str]], want: list[list[str]], label: str) -> bool:
    """Ours are exactly `want`, in order, in one block, with no foreign rule ahead of them (a
    foreign ACCEPT or Docker's final RETURN before them would let traffic past)."""
    idx = [i for i, r in enumerate(current) if _ours(r, label)]
    if [current[i] for i in idx] != want:
        return False
    if not idx:
        return True
    contiguous = idx == list(range(idx[0], idx[0] + len(idx)))
    return contiguous and not any(_theirs(r) for r in current[: idx[0]])


def plan(snap: Snapshot, want: dict[str, list[list[str]]], instance: str) -> list[list[str]]:
    """iptables argument lists (without the binary) that turn the snapshot into `want`."""
    label = tag(instance)
    cmds: list[list[str]] = []
    if want.get(INPUT_CHAIN) and snap.chains.get(INPUT_CHAIN) is None:
        cmds.append(["-N", INPUT_CHAIN])
    # INPUT's jump goes in after the chain's rules and comes out before them.
    order = (FORWARD_CHAIN, INPUT_CHAIN, "INPUT") if want.get(INPUT_CHAIN) else CHAINS
    for chain in order:
        current = snap.chains.get(chain) or []
        rules = want.get(chain, [])
        if _in_place(current, rules, label):
            continue
        cmds += [["-D", chain, *r] for r in current if _ours(r, label)]
        cmds += [["-I", chain, str(i), *r] for i, r in enumerate(rules, 1)]
    chain_rules = snap.chains.get(INPUT_CHAIN)
    ours_only = chain_rules is not None and all(_ours(r, label) for r in chain_rules)
    if not want.get(INPUT_CHAIN) and cmds and ours_only:
        cmds.append(["-X", INPUT_CHAIN])  # empty now; another instance may still use it (|| true)
    return cmds


def script(binary: str, cmds: list[list[str]]) -> str:
    lines = ["set -e"]
    for c in cmds:
        line = shlex.join([binary, *c])
        # Two runners may create or remove the shared chain at once: either outcome is fine.
        lines.append(f"{line} 2>/dev/null || true" if c[0] in ("-N", "-X") else line)
    return "\n".join(lines) + "\n"
