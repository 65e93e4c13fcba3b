"""Packets and bytes per policy, per rule and per endpoint, read back from the kernel (like calico-accountant).

Everything is recovered from the table itself (`nft -j list table`), so a fresh process (`lab counters`)
needs no state: policy chains start with a `policy <name> <direction>` counter, rules carry `<name> r<i>`
comments, endpoint chains start with `endpoint <ns/pod>`, tier ends with `tier <name> default deny`.
`describe_table` is pure (JSON in, `TableInfo` out); `read_counters` runs nft in each host namespace.
Counters count what the filter evaluates: the first packet of each connection (later ones are accepted
as established before any policy), as Calico's do.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from policy_dataplane.dataplane.hostprogram import MARK_ALLOW, MARK_PASS, TABLE, Dir, HostProgram
from policy_dataplane.dataplane.netns_exec import run_in_netns


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


def _counter(expr: list[dict[str, Any]]) -> tuple[int, int] | None:
    for e in expr:
        if "counter" in e and isinstance(e["counter"], dict):
            return e["counter"].get("packets", 0), e["counter"].get("bytes", 0)
    return None


def _action(expr: list[dict[str, Any]]) -> str:
    kinds = {k for e in expr for k in e}
    if "drop" in kinds:
        return "deny"
    for e in expr:
        if "mangle" in e:
            bits = e["mangle"]["value"].get("|", [None, 0])[1]
            return "allow" if bits == MARK_ALLOW else "pass" if bits == MARK_PASS else "mark"
    return "log" if "log" in kinds else "count"


def _jump_target(expr: list[dict[str, Any]]) -> str | None:
    for e in expr:
        if "jump" in e:
            return str(e["jump"]["target"])
    return None


def _log_prefix(expr: list[dict[str, Any]]) -> str | None:
    for e in expr:
        if "log" in e:
            return str(e["log"].get("prefix", ""))
    return None


def describe_table(host: str, listing: Mapping[str, Any]) -> TableInfo:
    """Pure: a host's `nft -j list table inet npl` output -> names and counters."""
    rules_by_chain: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in listing.get("nftables", []):
        if "rule" in entry:
            rules_by_chain[entry["rule"]["chain"]].append(entry["rule"])
    info = TableInfo(host)
    for chain, rules in rules_by_chain.items():
        first = rules[0].get("comment", "") if rules else ""
        if chain.startswith(("pi-", "po-")) and first.startswith("policy "):
            name, _, direction = first[len("policy "):].rpartition(" ")
            info.policy_of_chain[chain] = (name, direction)
        elif chain.startswith(("tw-", "fw-")) and first.startswith("endpoint "):
            info.endpoint_of_chain[chain] = (first[len("endpoint "):], "ingress" if chain[:3] == "tw-" else "egress")
    for chain, rules in rules_by_chain.items():
        if chain in info.policy_of_chain:
            _policy_counters(info, chain, rules)
        elif chain in info.endpoint_of_chain:
            _endpoint_counters(info, chain, rules)
        elif chain in ("from-wl", "to-wl"):
            for rule in rules:
                c = _counter(rule["expr"])
                if c:
                    p, b = info.unknown_interface_drops
                    info.unknown_interface_drops = (p + c[0], b + c[1])
    return info


def _policy_counters(info: TableInfo, chain: str, rules: list[dict[str, Any]]) -> None:
    name, direction = info.policy_of_chain[chain]
    packets, bytes_ = _counter(rules[0]["expr"]) or (0, 0)
    info.policies.append(PolicyCounter(info.host, name, direction, packets, bytes_))
    per_rule: dict[int, list[int]] = {}
    actions: dict[int, str] = {}
    for rule in rules[1:]:
        _, _, index = rule.get("comment", "").rpartition(" r")
        if not index.isdigit():
            continue
        c = _counter(rule["expr"]) or (0, 0)
        totals = per_rule.setdefault(int(index), [0, 0])  # a rule split in two nft rules adds up
        totals[0] += c[0]
        totals[1] += c[1]
        actions[int(index)] = _action(rule["expr"])
    for index, (p, b) in sorted(per_rule.items()):
        info.rules.append(RuleCounter(info.host, name, direction, index, actions[index], p, b))


def _endpoint_counters(info: TableInfo, chain: str, rules: list[dict[str, Any]]) -> None:
    endpoint, direction = info.endpoint_of_chain[chain]
    seen = _counter(rules[0]["expr"]) or (0, 0)
    denied = [0, 0]
    tier_policies: list[str] = []
    for rule in rules[1:]:
        target = _jump_target(rule["expr"])
        if target is not None:
            tier_policies.append(info.policy_of_chain.get(target, (target, ""))[0])
            continue
        comment = rule.get("comment", "")
        if comment.startswith("tier ") and comment.endswith(" default deny"):
            c = _counter(rule["expr"]) or (0, 0)
            denied[0] += c[0]
            denied[1] += c[1]
            prefix = (_log_prefix(rule["expr"]) or "").split()
            index = int(prefix[2]) if len(prefix) == 3 and prefix[2].isdigit() else len(info.tier_ends)
            tier = comment[len("tier "):-len(" default deny")]
            info.tier_ends[(chain, index)] = TierEnd(endpoint, direction, tier, tuple(tier_policies))
        if rule["expr"] and "mangle" in rule["expr"][0]:
            tier_policies = []  # marks cleared: a new tier starts
    info.endpoints.append(EndpointCounter(info.host, endpoint, direction, seen[0], seen[1], denied[0], denied[1]))


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
    return info


def read_table(netns: str) -> dict[str, Any]:
    out = run_in_netns(netns, ["nft", "-j", "list", "table", "inet", TABLE], check=False)
    return json.loads(out) if out.strip() else {"nftables": []}


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


def read_counters(host_netns: Mapping[str, str]) -> Counters:
    """host -> its namespace; reads every host's table."""
    infos = [describe_table(host, read_table(netns)) for host, netns in host_netns.items()]
    return Counters(
        tuple(r for i in infos for r in i.rules),
        tuple(p for i in infos for p in i.policies),
        tuple(e for i in infos for e in i.endpoints),
        {i.host: i.unknown_interface_drops for i in infos},
    )


__all__ = ["Counters", "RuleCounter", "PolicyCounter", "EndpointCounter", "TableInfo", "TierEnd",
           "describe_table", "describe_program", "read_counters", "read_table"]
