"""A node's own policy (`NodeProgram`) as iptables, the way Felix lays it out (see nft/render_node.py for nft).

Tables: `raw` (doNotTrack: `CT --notrack` on allow, for the node's own traffic: `addrtype LOCAL` on the way
in), `mangle` (preDNAT, before the nat table's DNAT: allow sets `MARK_PRE_DNAT` and accepts), `filter` (the
normal and applyOnForward host endpoint chains, and the base chains). iptables chains belong to one table,
so the policy chains the raw and mangle phases jump to are copied into those tables.

A change of the node program (or of a policy its phases use) is applied as a full restore of the three
tables; other changes stay filter-table diffs (render.py).
"""

from __future__ import annotations

from policy_dataplane.dataplane.hostprogram import (
    LOG_GROUP,
    MARK_ALLOW,
    MARK_MASK,
    MARK_PRE_DNAT,
    FailsafeRule,
    HostEndpointProgram,
    HostProgram,
    NodeProgram,
    TierProgram,
    hep_chain_role,
)

P = "npl-"
PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 132: "sctp"}
NO_MARK = f"-m mark --mark 0/{MARK_MASK:#x}"
ALLOWED = f"-m mark --mark {MARK_ALLOW:#x}/{MARK_ALLOW:#x}"
CLEAR = f"-j MARK --set-xmark 0/{MARK_MASK:#x}"
TABLE_OF_CHAIN = {"hi": "filter", "ho": "filter", "hfi": "filter", "hfo": "filter", "hui": "raw", "huo": "raw",
                  "hpi": "mangle"}


def _failsafe(rules: tuple[FailsafeRule, ...], inbound: bool) -> list[str]:
    flag = "-s" if inbound else "-d"
    return [f"-p {PROTOCOLS.get(r.protocol, str(r.protocol))} --dport {r.port}" + (f" {flag} {r.net}" if r.net else "")
            + " -j ACCEPT" for r in rules]


ON_ALLOW = {"return": [f"{ALLOWED} -j RETURN"], "notrack": [f"{ALLOWED} -j CT --notrack", f"{ALLOWED} -j ACCEPT"],
            "pre-dnat": [f"{ALLOWED} -j MARK --set-xmark {MARK_PRE_DNAT:#x}/{MARK_PRE_DNAT:#x}", f"{ALLOWED} -j ACCEPT"]}


def hep_chain_rules(node: NodeProgram, hep: HostEndpointProgram, chain: str, tiers: tuple[TierProgram, ...]
                    ) -> list[str]:
    role = hep_chain_role(chain)
    assert role is not None, chain
    body = [f'-m comment --comment "endpoint {hep.key[:100]}"']
    body += _failsafe(node.failsafe(role), inbound=role.failsafe == "inbound")
    if tiers:
        body.append(CLEAR)
    for t, tier in enumerate(tiers):
        body += [f"{NO_MARK} -j {P}{policy}" for policy in tier.policies]
        if role.decisive and not tier.default_pass:
            body += [f'{NO_MARK} -j NFLOG --nflog-group {LOG_GROUP} --nflog-prefix "T {chain} {t}"', f"{NO_MARK} -j DROP"]
        body += ON_ALLOW[role.on_allow] + [CLEAR]
    if role.decisive and not hep.default_allow:
        body += [f'-j NFLOG --nflog-group {LOG_GROUP} --nflog-prefix "T {chain} {len(tiers)}"', "-j DROP"]
    return [f"-A {P}{chain} {rule}" for rule in body + ["-j RETURN"]]


def node_chains(node: NodeProgram) -> dict[str, dict[str, list[str]]]:
    """table -> host endpoint chain (full name) -> rules."""
    out: dict[str, dict[str, list[str]]] = {"filter": {}, "raw": {}, "mangle": {}}
    hep = node.endpoint
    if hep is None:
        return out
    for chain, tiers in hep.chains().items():
        out[TABLE_OF_CHAIN[chain.split("-", 1)[0]]][P + chain] = hep_chain_rules(node, hep, chain, tiers)
    return out


def phase_policy_chains(node: NodeProgram) -> dict[str, set[str]]:
    """raw / mangle -> the policy chains their phases jump to (copied into that table)."""
    out: dict[str, set[str]] = {"raw": set(), "mangle": set()}
    hep = node.endpoint
    if hep is not None:
        for tiers, table in ((hep.untracked_ingress, "raw"), (hep.untracked_egress, "raw"),
                             (hep.pre_dnat_ingress, "mangle")):
            out[table] |= {c for t in tiers for c in t.policies}
    return out


def base_rules(node: NodeProgram, from_wl: str, to_wl: str) -> dict[str, dict[str, list[str]]]:
    """table -> base chain (`npl-<HOOK>`) -> rules; the built-in hooks jump to them."""
    hep = node.endpoint
    established = ["-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", "-m conntrack --ctstate INVALID -j DROP"]
    untracked = ["-m conntrack --ctstate UNTRACKED -j ACCEPT"] if hep else []
    action = "ACCEPT" if node.endpoint_to_host == "accept" else "DROP"
    inp = untracked + established + [f"-i cali+ -j {from_wl}", f"-i cali+ -j {action}"]
    out = untracked + established + [f"-o cali+ -j {to_wl}", "-o cali+ -j ACCEPT"]
    fwd = list(established)
    raw_pre: list[str] = []
    raw_out: list[str] = []
    mangle_pre: list[str] = []
    if hep is not None:
        i, chains = hep.ifname, hep.chains()
        inp += [f"-i {i} -m mark --mark {MARK_PRE_DNAT:#x}/{MARK_PRE_DNAT:#x} -j ACCEPT", f"-i {i} -j {P}hi-{i}"]
        out.append(f"-o {i} -j {P}ho-{i}")
        if f"hfi-{i}" in chains:
            fwd.append(f"-i {i} -m mark --mark 0/{MARK_PRE_DNAT:#x} -j {P}hfi-{i}")
        raw_pre.append(f"-i {i} -m addrtype --dst-type LOCAL -j {P}hui-{i}")
        raw_out.append(f"-o {i} -j {P}huo-{i}")
        mangle_pre += ["-m conntrack --ctstate RELATED,ESTABLISHED,UNTRACKED -j ACCEPT", f"-i {i} -j {P}hpi-{i}"]
    fwd += [f"-i cali+ -j {from_wl}", f"-o cali+ -j {to_wl}"]
    if hep is not None and f"hfo-{hep.ifname}" in hep.chains():
        fwd.append(f"-o {hep.ifname} -j {P}hfo-{hep.ifname}")

    def base(**hooks: list[str]) -> dict[str, list[str]]:
        return {f"{P}{hook}": [f"-A {P}{hook} {r}" for r in rules] for hook, rules in hooks.items()}

    return {"filter": base(FORWARD=fwd, INPUT=inp, OUTPUT=out), "raw": base(PREROUTING=raw_pre, OUTPUT=raw_out),
            "mangle": base(PREROUTING=mangle_pre)}


BUILTIN = {"filter": ("INPUT", "FORWARD", "OUTPUT"), "raw": ("PREROUTING", "OUTPUT"),
           "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")}


def needs_full_restore(old: HostProgram, new: HostProgram) -> bool:
    """A filter-table diff cannot carry this change: the node program, or a policy its raw or mangle
    copies hold, changed."""
    if old.node != new.node:
        return True
    used = set().union(*phase_policy_chains(new.node).values())
    return any(old.policies.get(c) != new.policies.get(c) for c in used)


__all__ = ["base_rules", "node_chains", "phase_policy_chains", "needs_full_restore", "BUILTIN"]
