"""iptables counters and names, read back from the host's own tables (`iptables-save -c`), as nft/counters.py
reads them from `nft -j`.

A fresh process (`lab counters`) needs no state: policy chains start with a `policy <name> <direction>`
header rule (no target: it counts what the policy evaluated), rules carry `<name> r<i>` comments,
endpoint chains start with an `endpoint <ns/pod>` rule (it counts what the endpoint's policy saw), their
`DROP` rules are the tiers' default deny, and `npl-from-wl` / `npl-to-wl` end with the drop of an unknown
workload interface. `describe_save` is pure (text in, `TableInfo` out); `read_counters` runs
`iptables-save -c` in each host namespace. Policy chains copied into raw and mangle (a node's untracked and
preDNAT phases) add up with the filter table's.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from policy_dataplane.dataplane.counters import (
    Counters,
    EndpointCounter,
    PolicyCounter,
    RuleCounter,
    TableInfo,
    counters_from,
)
from policy_dataplane.dataplane.hostprogram import MARK_ALLOW, MARK_PASS, hep_chain_role
from topology.engine import Engine
from topology.engines import get_engine

IPTABLES_SAVE = "iptables-legacy-save"
P = "npl-"
DISPATCH_CHAINS = ("npl-from-wl", "npl-to-wl")
_COUNTED = re.compile(r"^\[(\d+):(\d+)\] -A (\S+) (.*)$")


def _option(args: tuple[str, ...], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args[:-1] else None


@dataclass(frozen=True)
class SavedRule:
    """One `[packets:bytes] -A chain ...` line of `iptables-save -c`."""

    chain: str
    packets: int
    bytes: int
    args: tuple[str, ...]

    @property
    def comment(self) -> str:
        return _option(self.args, "--comment") or ""

    @property
    def target(self) -> str:
        """What -j / -g names ("" for a rule that only counts)."""
        return _option(self.args, "-j") or _option(self.args, "-g") or ""

    def option(self, name: str) -> str | None:
        return _option(self.args, name)


def parse_save(text: str) -> list[SavedRule]:
    rules = []
    for line in text.splitlines():
        if (found := _COUNTED.match(line)) is not None:
            packets, bytes_, chain, rest = found.groups()
            rules.append(SavedRule(chain, int(packets), int(bytes_), tuple(shlex.split(rest))))
    return rules


def _action(rule: SavedRule) -> str | None:
    """What a policy rule line does; None for the lines that are only half of a rule (the NFLOG before a
    Deny's DROP, the RETURN after an Allow's MARK)."""
    if rule.target == "DROP":
        return "deny"
    if rule.target == "MARK":
        bits = int((rule.option("--set-xmark") or "0/0").split("/")[0], 16)
        return "allow" if bits == MARK_ALLOW else "pass" if bits == MARK_PASS else None
    if rule.target == "NFLOG" and (rule.option("--nflog-prefix") or "").startswith("L "):
        return "log"
    return None


def describe_save(host: str, text: str) -> TableInfo:
    """Pure: a host's `iptables-save -c` output -> names and counters."""
    by_chain: dict[str, list[SavedRule]] = {}
    for rule in parse_save(text):
        by_chain.setdefault(rule.chain, []).append(rule)
    info = TableInfo(host)
    policy_totals: dict[tuple[str, str], list[int]] = {}
    rule_totals: dict[tuple[str, str, int], list[int]] = {}
    actions: dict[tuple[str, str, int], str] = {}
    for chain, rules in by_chain.items():
        first = rules[0].comment
        short = chain[len(P):] if chain.startswith(P) else chain
        if first.startswith("policy ") and short.startswith(("pi-", "po-")):
            name, _, direction = first[len("policy "):].rpartition(" ")
            info.policy_of_chain[short] = (name, direction)
            total = policy_totals.setdefault((name, direction), [0, 0])
            total[0] += rules[0].packets
            total[1] += rules[0].bytes
            for rule in rules[1:]:
                _, _, index = rule.comment.rpartition(" r")
                if index.isdigit() and (action := _action(rule)) is not None:
                    key = (name, direction, int(index))
                    counted = rule_totals.setdefault(key, [0, 0])  # a rule split in several lines adds up
                    counted[0] += rule.packets
                    counted[1] += rule.bytes
                    actions[key] = action
        elif first.startswith("endpoint "):
            role = hep_chain_role(short)
            direction = role.direction if role else "ingress" if short.startswith("tw-") else "egress"
            endpoint = first[len("endpoint "):]
            info.endpoint_of_chain[short] = (endpoint, direction)
            drops = [r for r in rules if r.target == "DROP"]
            info.endpoints.append(EndpointCounter(host, endpoint, direction, rules[0].packets, rules[0].bytes,
                                                  sum(r.packets for r in drops), sum(r.bytes for r in drops)))
        elif chain in DISPATCH_CHAINS:
            drops = [r for r in rules if r.target == "DROP"]
            packets, bytes_ = info.unknown_interface_drops
            info.unknown_interface_drops = (packets + sum(r.packets for r in drops), bytes_ + sum(r.bytes for r in drops))
    info.policies = [PolicyCounter(host, name, direction, p, b) for (name, direction), (p, b) in policy_totals.items()]
    info.rules = [RuleCounter(host, name, direction, index, actions[(name, direction, index)], p, b)
                  for (name, direction, index), (p, b) in sorted(rule_totals.items())]
    return info


def read_save(netns: str, engine: Engine | None = None) -> str:
    return (engine or get_engine()).run_in(netns, [IPTABLES_SAVE, "-c"], check=False)


def read_counters(host_netns: Mapping[str, str], engine: Engine | None = None) -> Counters:
    """host -> its namespace; reads every host's tables."""
    return counters_from(describe_save(host, read_save(netns, engine)) for host, netns in host_netns.items())


__all__ = ["describe_save", "parse_save", "read_counters", "read_save"]
