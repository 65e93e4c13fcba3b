"""Packets and bytes per policy, per rule and per endpoint, as every backend reports them (like
calico-accountant), and the names behind a host's chains (`TableInfo`), which drops use too.

A backend reads its own kernel objects into `TableInfo`s (nft: `nft/counters.py`); `describe_program` gives
the names part straight from a HostProgram. Counters count what the filter evaluates: the first packet of
each connection (later ones are accepted as established before any policy), as Calico's do.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from policy_dataplane.dataplane.hostprogram import Dir, HostProgram, hep_chain_role


@dataclass(frozen=True)
class RuleCounter:
    host: str
    policy: str
    direction: str  # ingress / egress
    rule: int  # index in the policy's rules of that direction
    action: str  # allow / deny / pass / log
    packets: int
    bytes: int


@dataclass(frozen=True)
class PolicyCounter:
    host: str
    policy: str
    direction: str
    evaluated_packets: int  # packets that entered the policy
    evaluated_bytes: int


@dataclass(frozen=True)
class EndpointCounter:
    host: str
    endpoint: str  # ns/pod
    direction: str
    packets: int  # new flows the endpoint's policy saw in that direction
    bytes: int
    default_deny_packets: int  # dropped because no policy of a tier allowed or passed them
    default_deny_bytes: int


@dataclass(frozen=True)
class TierEnd:
    """A tier-end drop of an endpoint chain: which endpoint, which tier, which policies isolated it."""

    endpoint: str
    direction: str
    tier: str
    policies: tuple[str, ...]


@dataclass
class TableInfo:
    """What a host's table says about itself (names for chains, counters per rule)."""

    host: str
    policy_of_chain: dict[str, tuple[str, str]] = field(default_factory=dict)  # chain -> (policy, direction)
    endpoint_of_chain: dict[str, tuple[str, str]] = field(default_factory=dict)  # chain -> (ns/pod, direction)
    tier_ends: dict[tuple[str, int], TierEnd] = field(default_factory=dict)  # (endpoint chain, tier index)
    rules: list[RuleCounter] = field(default_factory=list)
    policies: list[PolicyCounter] = field(default_factory=list)
    endpoints: list[EndpointCounter] = field(default_factory=list)
    unknown_interface_drops: tuple[int, int] = (0, 0)

def describe_program(host: str, program: HostProgram) -> TableInfo:
    """The names part of a TableInfo straight from a HostProgram (no counters): for the iptables backend,
    whose rules nft cannot list, and for callers that hold the program anyway."""
    info = TableInfo(host)
    for chain, policy in program.policies.items():
        info.policy_of_chain[chain] = (policy.name, policy.direction.value)
    for endpoint in program.endpoints.values():
        for direction in Dir:
            chain = endpoint.chain(direction)
            info.endpoint_of_chain[chain] = (endpoint.key, direction.value)
            for index, tier in enumerate(endpoint.tiers(direction)):
                names = tuple(program.policies[c].name for c in tier.policies if c in program.policies)
                info.tier_ends[(chain, index)] = TierEnd(endpoint.key, direction.value, tier.name, names)
    hep = program.node.endpoint
    for chain, tiers in (hep.chains() if hep else {}).items():
        role = hep_chain_role(chain)
        direction_name = role.direction if role else ""
        info.endpoint_of_chain[chain] = (hep.key, direction_name)  # type: ignore[union-attr]
        for index, tier in enumerate(tiers):
            names = tuple(program.policies[c].name for c in tier.policies if c in program.policies)
            info.tier_ends[(chain, index)] = TierEnd(hep.key, direction_name, tier.name, names)  # type: ignore[union-attr]
        info.tier_ends[(chain, len(tiers))] = TierEnd(hep.key, direction_name, "(no profile)", ())  # type: ignore[union-attr]
    return info

@dataclass(frozen=True)
class Counters:
    rules: tuple[RuleCounter, ...]
    policies: tuple[PolicyCounter, ...]
    endpoints: tuple[EndpointCounter, ...]
    unknown_interface_drops: dict[str, tuple[int, int]]  # host -> (packets, bytes)

    def by_policy(self) -> dict[str, dict[str, int]]:
        """Per policy over all hosts: packets evaluated, and packets / bytes its rules allowed or denied."""
        out: dict[str, dict[str, int]] = {}
        for p in self.policies:
            entry = out.setdefault(p.policy, {"evaluated": 0, "allowed": 0, "denied": 0, "passed": 0, "logged": 0,
                                              "bytes": 0})
            entry["evaluated"] += p.evaluated_packets
        for r in self.rules:
            entry = out.setdefault(r.policy, {"evaluated": 0, "allowed": 0, "denied": 0, "passed": 0, "logged": 0,
                                              "bytes": 0})
            key = {"allow": "allowed", "deny": "denied", "pass": "passed", "log": "logged"}.get(r.action)
            if key:
                entry[key] += r.packets
            if r.action != "log":
                entry["bytes"] += r.bytes
        return out

    def default_denied(self) -> dict[str, int]:
        """Per endpoint (ns/pod direction): packets no policy allowed."""
        out: dict[str, int] = defaultdict(int)
        for e in self.endpoints:
            out[f"{e.endpoint} {e.direction}"] += e.default_deny_packets
        return dict(out)

    def to_json(self) -> dict[str, Any]:
        return {
            "rules": [asdict(r) for r in self.rules],
            "policies": [asdict(p) for p in self.policies],
            "by_policy": self.by_policy(),
            "endpoints": [asdict(e) for e in self.endpoints],
            "unknown_interface_drops": {h: {"packets": p, "bytes": b}
                                        for h, (p, b) in self.unknown_interface_drops.items()},
        }

def counters_from(infos: Iterable[TableInfo]) -> Counters:
    """All hosts' counters in one."""
    infos = list(infos)
    return Counters(
        tuple(r for i in infos for r in i.rules),
        tuple(p for i in infos for p in i.policies),
        tuple(e for i in infos for e in i.endpoints),
        {i.host: i.unknown_interface_drops for i in infos},
    )


__all__ = ["Counters", "RuleCounter", "PolicyCounter", "EndpointCounter", "TableInfo", "TierEnd",
           "counters_from", "describe_program"]
