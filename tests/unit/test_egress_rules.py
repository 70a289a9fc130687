"""The egress guard's planner: what it asks iptables to do for a given listing."""

from __future__ import annotations

import shlex

import pytest

from runner.backend import egress_rules as er
from runner.settings import Settings

BR = "br-0123456789ab"


def listing(want: dict[str, list[list[str]]], extra: dict[str, list[str]] | None = None) -> str:
    """What the snapshot script prints once `want` is installed, quoted as `iptables -S` does."""
    extra = extra or {}
    out = ["@bin iptables-nft"]
    for chain in er.CHAINS:
        out.append(f"@chain {chain}")
        out.append(f"-N {chain}" if chain != "INPUT" else "-P INPUT ACCEPT")
        out += [f"-A {chain} {shlex.join(r)}" for r in want.get(chain, [])]
        out += extra.get(chain, [])
    out += ["@resolv", "nameserver 10.255.255.53", "nameserver 127.0.0.53", "nameserver ::1"]
    return "\n".join(out) + "\n"


def want_for(instance: str = "inst", bridge: str | None = BR) -> dict[str, list[list[str]]]:
    return er.desired(instance, bridge, ["10.255.255.53"], [], ["172.20.0.0/16"])


def test_snapshot_reads_rules_and_public_or_private_nameservers_but_not_loopback() -> None:
    snap = er.parse_snapshot(listing(want_for()))
    assert snap.binary == "iptables-nft"
    assert snap.nameservers == ["10.255.255.53"]
    assert snap.chains[er.FORWARD_CHAIN] == want_for()[er.FORWARD_CHAIN]


def test_fresh_host_gets_chain_rules_then_jump() -> None:
    snap = er.parse_snapshot(
        "@bin iptables-nft\n@chain DOCKER-USER\n-A DOCKER-USER -j RETURN\n"
        "@chain INPUT\n@chain BOTRUNNER-INPUT\n@missing\n"
    )
    cmds = er.plan(snap, want_for(), "inst")
    assert cmds[0] == ["-N", er.INPUT_CHAIN]
    chains_in_order = [c[1] for c in cmds[1:]]
    # The jump goes in last, once the chain it jumps to is complete.
    assert chains_in_order[-1] == "INPUT"
    assert all(c[0] == "-I" for c in cmds[1:])
    script = er.script("iptables-nft", cmds)
    assert "iptables-nft -N BOTRUNNER-INPUT 2>/dev/null || true" in script


def test_installed_rules_plan_nothing() -> None:
    assert er.plan(er.parse_snapshot(listing(want_for())), want_for(), "inst") == []


def test_rules_of_another_instance_ahead_are_fine_but_a_foreign_rule_ahead_reinstalls() -> None:
    other = [f"-A DOCKER-USER {shlex.join(r)}" for r in want_for("other", "br-other")[er.FORWARD_CHAIN]]
    mine_first_then_other = listing(want_for(), {er.FORWARD_CHAIN: other})
    assert er.plan(er.parse_snapshot(mine_first_then_other), want_for(), "inst") == []

    text = listing(want_for()).replace(
        "@chain DOCKER-USER\n-N DOCKER-USER\n",
        "@chain DOCKER-USER\n-N DOCKER-USER\n-A DOCKER-USER -j RETURN\n",
    )
    cmds = er.plan(er.parse_snapshot(text), want_for(), "inst")
    deleted = [c for c in cmds if c[0] == "-D"]
    inserted = [c for c in cmds if c[0] == "-I"]
    assert len(deleted) == len(inserted) == len(want_for()[er.FORWARD_CHAIN])
    assert inserted[0][:3] == ["-I", er.FORWARD_CHAIN, "1"]


def test_a_new_bridge_replaces_the_old_rules_without_duplicates() -> None:
    snap = er.parse_snapshot(listing(want_for(bridge="br-old")))
    cmds = er.plan(snap, want_for(), "inst")
    n = sum(len(r) for r in want_for().values())
    assert len([c for c in cmds if c[0] == "-D"]) == n
    assert len([c for c in cmds if c[0] == "-I"]) == n


def test_network_gone_removes_everything_and_the_chain() -> None:
    snap = er.parse_snapshot(listing(want_for()))
    cmds = er.plan(snap, want_for(bridge=None), "inst")
    assert all(c[0] == "-D" for c in cmds[:-1])
    assert cmds[-1] == ["-X", er.INPUT_CHAIN]
    # The jump out of INPUT goes before the chain it points to is emptied.
    chains = [c[1] for c in cmds[:-1]]
    assert chains.index("INPUT") < chains.index(er.INPUT_CHAIN)
    assert er.plan(er.parse_snapshot(listing({})), want_for(bridge=None), "inst") == []


def test_a_prefix_instance_is_not_ours() -> None:
    assert er.plan(er.parse_snapshot(listing(want_for("inst2"))), want_for("inst2", None), "inst") == []


def test_allow_entries() -> None:
    assert er.parse_allow(["192.168.5.7/24", "10.1.2.3:3141"]) == [
        er.Allowed("192.168.5.0/24"),
        er.Allowed("10.1.2.3/32", 3141),
    ]
    with pytest.raises(ValueError, match="host:port"):
        er.parse_allow(["mirror:notaport"])


def test_settings_reject_a_bad_allow_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_EGRESS_ALLOW", "10.0.0.0/8, nonsense/99")
    with pytest.raises(ValueError, match="runner_egress_allow"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv("RUNNER_EGRESS_ALLOW", "10.0.0.0/8,127.0.0.1:3141")
    assert Settings(_env_file=None).runner_egress_allow == ["10.0.0.0/8", "127.0.0.1:3141"]  # type: ignore[call-arg]
