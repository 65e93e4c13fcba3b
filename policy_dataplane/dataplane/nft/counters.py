"""nftables counters and names, read back from the table itself (`nft -j list table`).

A fresh process (`lab counters`) needs no state: policy chains start with a `policy <name> <direction>`
counter, rules carry `<name> r<i>` comments, endpoint chains start with `endpoint <ns/pod>`, tier ends
with `tier <name> default deny`. `describe_table` is pure (JSON in, `TableInfo` out); `read_counters` runs
nft in each host namespace.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from policy_dataplane.dataplane.counters import (
    Counters,
    EndpointCounter,
    PolicyCounter,
    RuleCounter,
    TableInfo,
    TierEnd,
    counters_from,
)
from policy_dataplane.dataplane.hostprogram import MARK_ALLOW, MARK_PASS, TABLE, hep_chain_role
from topology.engine import Engine
from topology.engines import get_engine


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
        elif (role := hep_chain_role(chain)) is not None and first.startswith("endpoint "):
            info.endpoint_of_chain[chain] = (first[len("endpoint "):], role.direction)
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

def read_table(netns: str, engine: Engine | None = None) -> dict[str, Any]:
    out = (engine or get_engine()).run_in(netns, ["nft", "-j", "list", "table", "inet", TABLE], check=False)
    return json.loads(out) if out.strip() else {"nftables": []}

def read_counters(host_netns: Mapping[str, str], engine: Engine | None = None) -> Counters:
    """host -> its namespace; reads every host's table."""
    return counters_from(describe_table(host, read_table(netns, engine)) for host, netns in host_netns.items())


__all__ = ["describe_table", "read_counters", "read_table"]
