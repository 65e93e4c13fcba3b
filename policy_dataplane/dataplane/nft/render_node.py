"""A node's own policy (`NodeProgram`) as nftables: base chain rules and host endpoint chains.

The base chains' rules depend on the node program, so they are rendered here as a whole and replaced
(flushed and refilled in the same transaction) whenever it changes:

* `raw-pre` / `raw-out` (hooks prerouting / output, priority raw): doNotTrack policy of the fabric host
  endpoint, for the node's own traffic (`fib daddr type local` on the way in). An allowed packet is marked
  untracked (`notrack`) and accepted; the filter chains accept untracked packets at once, so the reply
  gets through only if a doNotTrack rule allows it too.
* `pre-dnat` (prerouting, priority mangle: before any DNAT at dstnat): preDNAT policy. Allow sets
  `MARK_PRE_DNAT`, which skips normal host endpoint policy later; Deny drops.
* `input`: established first; a pod's packets for its own host go through its egress policy, then the
  DefaultEndpointToHostAction (accept or drop); packets from the fabric go to the host endpoint chain.
* `output`: a host's packets for its own pods meet their ingress policy (as the lab always did; Felix
  does not police host -> local workload, see docs/HOST-ENDPOINTS.md) and never a host endpoint;
  packets to the fabric go to the host endpoint chain.
* `forward`: applyOnForward policy of the host endpoint in (unless preDNAT allowed) and out, around the
  workload dispatch. Without applyOnForward policy nothing is jumped to: forwarded traffic passes.

Host endpoint chains (`hi-`, `ho-` normal; `hfi-`, `hfo-` applyOnForward; `hui-`, `huo-` doNotTrack;
`hpi-` preDNAT; each followed by the interface) start with `endpoint <key>` (counters and drops name them),
then failsafe accepts, then tiers of policy chains as workload endpoint chains do.
"""

from __future__ import annotations

from policy_dataplane.dataplane.hostprogram import (
    LOG_GROUP,
    MARK_ALLOW,
    MARK_MASK,
    MARK_PRE_DNAT,
    FailsafeRule,
    HostEndpointProgram,
    NodeProgram,
    TierProgram,
    hep_chain_role,
)

WORKLOAD = "cali*"
ICMPV6_LINK = ("nd-router-solicit", "nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert",
               "mld-listener-query", "mld-listener-report", "mld2-listener-report")
CLEAR_MARKS = f"meta mark set meta mark and {0xFFFFFFFF ^ MARK_MASK:#x}"
NO_MARK = f"meta mark and {MARK_MASK:#x} == 0"
ALLOWED = f"meta mark and {MARK_ALLOW:#x} != 0"
# base chains: name -> (hook, priority)
BASE_CHAINS = {"forward": ("forward", "filter"), "input": ("input", "filter"), "output": ("output", "filter"),
               "raw-pre": ("prerouting", "raw"), "raw-out": ("output", "raw"), "pre-dnat": ("prerouting", "mangle")}
# Base chains that exist only while they hold rules (a host endpoint's): an empty hooked chain still costs every
# packet that passes its hook a traversal (~0.6 us more per new flow between pods on two hosts, measured).
HOOKED_WHILE_USED = frozenset({"raw-pre", "raw-out", "pre-dnat"})


def base_rules(node: NodeProgram) -> dict[str, list[str]]:
    hep = node.endpoint
    common = ["ct state established,related accept", "ct state invalid counter drop",
              # IPv6 neighbour discovery and MLD on the veths (the lab's policy is IPv4)
              f"icmpv6 type {{ {', '.join(ICMPV6_LINK)} }} accept"]
    untracked = ["ct state untracked accept"] if hep else []
    rules: dict[str, list[str]] = {
        "input": untracked + common + [f'iifname "{WORKLOAD}" jump from-wl', f'iifname "{WORKLOAD}" {node.endpoint_to_host}'],
        "output": untracked + common + [f'oifname "{WORKLOAD}" jump to-wl', f'oifname "{WORKLOAD}" accept'],
        "forward": list(common),
        "raw-pre": [], "raw-out": [],
        # replies and untracked packets never meet preDNAT policy (it is for new incoming flows)
        "pre-dnat": ["ct state established,related,untracked accept"] if hep else [],
    }
    if hep is not None:
        i, chains = hep.ifname, hep.chains()
        rules["input"] += [f'iifname "{i}" meta mark and {MARK_PRE_DNAT:#x} != 0 accept', f'iifname "{i}" jump hi-{i}']
        rules["output"].append(f'oifname "{i}" jump ho-{i}')
        if f"hfi-{i}" in chains:
            rules["forward"].append(f'iifname "{i}" meta mark and {MARK_PRE_DNAT:#x} == 0 jump hfi-{i}')
        rules["raw-pre"].append(f'iifname "{i}" fib daddr type local jump hui-{i}')
        rules["raw-out"].append(f'oifname "{i}" jump huo-{i}')
        rules["pre-dnat"].append(f'iifname "{i}" jump hpi-{i}')
    rules["forward"] += [f'iifname "{WORKLOAD}" jump from-wl', f'oifname "{WORKLOAD}" jump to-wl']
    if hep is not None and f"hfo-{hep.ifname}" in hep.chains():
        rules["forward"].append(f'oifname "{hep.ifname}" jump hfo-{hep.ifname}')
    return rules


def _failsafe(rules: tuple[FailsafeRule, ...], inbound: bool) -> list[str]:
    remote = "ip saddr" if inbound else "ip daddr"
    return [f"meta l4proto {r.protocol} th dport {r.port}" + (f" {remote} {r.net}" if r.net else "")
            + ' counter accept comment "failsafe"' for r in rules]


ON_ALLOW = {"return": f"{ALLOWED} return", "notrack": f"{ALLOWED} notrack accept",
            "pre-dnat": f"{ALLOWED} meta mark set meta mark or {MARK_PRE_DNAT:#x} accept"}


def hep_chain_rules(node: NodeProgram, hep: HostEndpointProgram, chain: str, tiers: tuple[TierProgram, ...]
                    ) -> list[str]:
    role = hep_chain_role(chain)
    assert role is not None, chain
    out = [f'counter comment "endpoint {hep.key[:100]}"']
    out += _failsafe(node.failsafe(role), inbound=role.failsafe == "inbound")
    if tiers:
        out.append(CLEAR_MARKS)
    for t, tier in enumerate(tiers):
        out += [f"{NO_MARK} jump {policy}" for policy in tier.policies]
        if role.decisive and not tier.default_pass:
            out.append(f'{NO_MARK} counter log prefix "T {chain} {t}" group {LOG_GROUP} drop '
                       f'comment "tier {tier.name[:60]} default deny"')
        out += [ON_ALLOW[role.on_allow], CLEAR_MARKS]
    if role.decisive and not hep.default_allow:
        out.append(f'counter log prefix "T {chain} {len(tiers)}" group {LOG_GROUP} drop '
                   f'comment "tier (no profile) default deny"')
    return out + ["return"]


def node_chains(node: NodeProgram) -> dict[str, list[str]]:
    """Every host endpoint chain with its rules (none without a host endpoint)."""
    hep = node.endpoint
    if hep is None:
        return {}
    return {chain: hep_chain_rules(node, hep, chain, tiers) for chain, tiers in hep.chains().items()}


__all__ = ["BASE_CHAINS", "HOOKED_WHILE_USED", "base_rules", "node_chains", "hep_chain_rules"]
