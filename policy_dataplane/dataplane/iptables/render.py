"""HostProgram -> Calico-style iptables + ipsets (the baseline the nftables dataplane is compared with).

The same program as nft/render.py, laid out the way Felix's iptables mode does it: ipsets per selector (hash:net)
and per named port (hash:ip,port); `npl-FORWARD` / `npl-INPUT` accept established, drop invalid and jump to
the dispatch chains (the node's own policy, host endpoints included, is render_node.py's), which test each workload interface in turn (a linear list: Felix
builds a small tree of these) and `goto` the endpoint chain, or drop an unknown `cali*` interface; endpoint
chains jump to linear per-policy chains while no mark is set; Allow marks then returns (two rules, as
Felix emits them), Deny logs (NFLOG) and drops, Log logs.

Pure: `render_ipset_full/diff` give `ipset restore` text, `render_iptables_full/diff` give `iptables-restore`
text (full replaces the whole filter table; diff is for `--noflush` and redeclares only changed chains).
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Network

from policy_dataplane.dataplane.hostprogram import (
    LOG_GROUP,
    MARK_ALLOW,
    MARK_MASK,
    MARK_PASS,
    Dir,
    EndpointProgram,
    HostProgram,
    PolicyProgram,
    RuleProgram,
    SideMatch,
    Verdict,
)
from policy_dataplane.dataplane.iptables import render_node as iptables_node
from policy_dataplane.dataplane.nft.render import (
    address_elements,
    endpoint_label,
    log_prefix,
    policy_label,
    rule_comment,
)
from topology.kernel_text import quoted

P = "npl-"
PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 132: "sctp"}
DISPATCH = {Dir.EGRESS: ("npl-from-wl", "-i"), Dir.INGRESS: ("npl-to-wl", "-o")}
MULTIPORT_MAX = 15  # entries per multiport match (a range counts as two)


def ipset_name(set_name: str) -> str:
    return P + set_name  # <= 31 characters: npl- + s-<16 hex>


def chain_name(chain: str) -> str:
    return P + chain  # <= 28 characters: npl- + tw-cali<11 hex> or pi-<12 hex>


# --- ipsets ------------------------------------------------------------------------------------------------


def _named_port_entries(members: Iterable[tuple[object, int, int]]) -> list[str]:
    return [f"{addr},{PROTOCOLS.get(proto, str(proto))}:{port}" for addr, proto, port in sorted(members)]  # type: ignore[type-var]


def ipset_net_elements(members: Iterable[IPv4Network]) -> list[str]:
    """hash:net entries. ipset refuses a /0 network, so 0.0.0.0/0 goes in as its two /1 halves (as Felix
    writes it)."""
    out = []
    for element in address_elements(members):
        out += ["0.0.0.0/1", "128.0.0.0/1"] if element.endswith("/0") else [element]
    return out


def _ipsets(program: HostProgram) -> dict[str, tuple[str, list[str]]]:
    """ipset name -> (type, entries)."""
    out = {ipset_name(n): ("hash:net", ipset_net_elements(m)) for n, m in program.address_sets.items()}
    out.update({ipset_name(n): ("hash:ip,port", _named_port_entries(m)) for n, m in program.named_port_sets.items()})
    return out


IPSET_MAXELEM = 65536  # ipset's default maxelem: the kernel refuses more entries ("Hash is full")


def check_set_sizes(program: HostProgram) -> None:
    """ValueError for a set the kernel would refuse to fill (its sets are created with the default maxelem)."""
    for name, (_kind, entries) in sorted(_ipsets(program).items()):
        if len(entries) > IPSET_MAXELEM:
            raise ValueError(f"ipset {name} would hold {len(entries)} entries, more than the kernel takes in one "
                             f"set ({IPSET_MAXELEM}, ipset's maxelem)")


def render_ipset_full(program: HostProgram) -> str:
    lines = []
    for name, (kind, entries) in sorted(_ipsets(program).items()):
        lines += [f"create {name} {kind} -exist", f"flush {name}"] + [f"add {name} {e}" for e in entries]
    return "\n".join(lines) + "\n" if lines else ""


def render_ipset_diff(old: HostProgram, new: HostProgram) -> str:
    before, after = _ipsets(old), _ipsets(new)
    lines = []
    for name, (kind, entries) in sorted(after.items()):
        if name not in before:
            lines += [f"create {name} {kind} -exist"] + [f"add {name} {e}" for e in entries]
        elif before[name][1] != entries:
            gone, came = set(before[name][1]) - set(entries), set(entries) - set(before[name][1])
            lines += [f"del {name} {e}" for e in sorted(gone)] + [f"add {name} {e}" for e in sorted(came)]
    return "\n".join(lines) + "\n" if lines else ""


def removed_ipsets(old: HostProgram, new: HostProgram) -> list[str]:
    """Destroyed after the rules that used them are gone (ipset refuses to destroy a set in use)."""
    return sorted(set(_ipsets(old)) - set(_ipsets(new)))


# --- rules -------------------------------------------------------------------------------------------------


def _port_lists(spans: tuple[tuple[int, int], ...]) -> list[str]:
    """multiport arguments, split so that each holds at most 15 entries."""
    out: list[str] = []
    current: list[str] = []
    used = 0
    for a, b in sorted(spans):
        cost = 1 if a == b else 2
        if used + cost > MULTIPORT_MAX:
            out.append(",".join(current))
            current, used = [], 0
        current.append(str(a) if a == b else f"{a}:{b}")
        used += cost
    if current:
        out.append(",".join(current))
    return out


def _side(side: SideMatch, direction: str, alternative: object) -> list[list[str]]:
    """Match alternatives (ORed) for one side; each a list of iptables match arguments."""
    flag = "src" if direction == "s" else "dst"
    base = []
    for name, negate in ((side.nets, False), (side.not_nets, True), (side.members, False), (side.not_members, True)):
        if name:
            base.append(f"-m set {'! ' if negate else ''}--match-set {ipset_name(name)} {flag}")
    for ports in _port_lists(side.not_ports):
        base.append(f"-m multiport ! --{direction}ports {ports}")
    if side.not_named_ports:
        base.append(f"-m set ! --match-set {ipset_name(side.not_named_ports)} {flag},{flag}")
    if alternative is False:
        return [base + [f"-m multiport --{direction}ports {ports}"] for ports in _port_lists(side.ports)]
    if alternative is True:
        return [base + [f"-m set --match-set {ipset_name(side.named_ports or '')} {flag},{flag}"]]
    return [base]


def _alternatives(side: SideMatch) -> list[object]:
    if side.never:
        return []
    alts: list[object] = []
    if side.ports:
        alts.append(False)
    if side.named_ports:
        alts.append(True)
    return alts or [None]


def _protocol(number: int) -> str:
    return PROTOCOLS.get(number, str(number))


def rule_bodies(policy: PolicyProgram, index: int, rule: RuleProgram) -> list[str]:
    if rule.never:
        return []
    head = []
    if rule.protocol is not None:
        head.append(f"-p {_protocol(rule.protocol)}")
    if rule.not_protocol is not None:
        head.append(f"! -p {_protocol(rule.not_protocol)}")
    for icmp, negate in ((rule.icmp, False), (rule.not_icmp, True)):
        if icmp is not None:
            what = str(icmp[0]) if icmp[1] is None else f"{icmp[0]}/{icmp[1]}"
            head.append(f"-m icmp {'! ' if negate else ''}--icmp-type {what}")
    comment = f"-m comment --comment {quoted(rule_comment(policy, index))}"
    chain = chain_name(policy.chain)
    out = []
    for src_alt in _alternatives(rule.source):
        for src in _side(rule.source, "s", src_alt):
            for dst_alt in _alternatives(rule.destination):
                for dst in _side(rule.destination, "d", dst_alt):
                    match = " ".join(head + src + dst + [comment])
                    if rule.verdict in (Verdict.ALLOW, Verdict.PASS):
                        bit = MARK_ALLOW if rule.verdict is Verdict.ALLOW else MARK_PASS
                        out.append(f"{match} -j MARK --set-xmark {bit:#x}/{bit:#x}")
                        out.append(f"-m mark --mark {bit:#x}/{bit:#x} -j RETURN")
                    elif rule.verdict is Verdict.DENY:
                        prefix = log_prefix("D", policy.chain, index)
                        out.append(f'{match} -j NFLOG --nflog-group {LOG_GROUP} --nflog-prefix "{prefix}"')
                        out.append(f"{match} -j DROP")
                    else:
                        prefix = log_prefix("L", policy.chain, index)
                        out.append(f'{match} -j NFLOG --nflog-group {LOG_GROUP} --nflog-prefix "{prefix}"')
    return [f"-A {chain} {body}" for body in out]


def policy_chain_rules(policy: PolicyProgram) -> list[str]:
    """A header rule (no target: it counts the packets the policy evaluates and names it, as nft's does),
    then the rules."""
    header = f"-A {chain_name(policy.chain)} -m comment --comment {quoted(policy_label(policy))}"
    return [header] + [line for i, rule in enumerate(policy.rules) for line in rule_bodies(policy, i, rule)]


def endpoint_chain_rules(endpoint: EndpointProgram, direction: Dir) -> list[str]:
    chain = chain_name(endpoint.chain(direction))
    no_mark = f"-m mark --mark 0/{MARK_MASK:#x}"
    clear = f"-j MARK --set-xmark 0/{MARK_MASK:#x}"
    out = [f"-A {chain} -m comment --comment {quoted(endpoint_label(endpoint))} {clear}"]  # names it, counts it
    for t, tier in enumerate(endpoint.tiers(direction)):
        out += [f"-A {chain} {no_mark} -j {chain_name(p)}" for p in tier.policies]
        if not tier.default_pass:
            prefix = log_prefix("T", endpoint.chain(direction), t)
            out.append(f'-A {chain} {no_mark} -j NFLOG --nflog-group {LOG_GROUP} --nflog-prefix "{prefix}"')
            out.append(f"-A {chain} {no_mark} -j DROP")
        out.append(f"-A {chain} -m mark --mark {MARK_ALLOW:#x}/{MARK_ALLOW:#x} -j RETURN")
        out.append(f"-A {chain} {clear}")
    out.append(f"-A {chain} -j RETURN")
    return out


def dispatch_rules(program: HostProgram, direction: Dir) -> list[str]:
    chain, flag = DISPATCH[direction]
    out = [f"-A {chain} {flag} {e.ifname} -g {chain_name(e.chain(direction))}"
           for e in sorted(program.endpoints.values(), key=lambda e: e.ifname)]
    prefix = log_prefix("U", chain[4:], 0)
    out.append(f'-A {chain} -j NFLOG --nflog-group {LOG_GROUP} --nflog-prefix "{prefix}"')
    return out + [f'-A {chain} -m comment --comment "unknown workload interface" -j DROP']


def _chains(program: HostProgram) -> dict[str, list[str]]:
    """Every non-base filter chain of the program with its rules, dispatch chains first."""
    chains = {DISPATCH[d][0]: dispatch_rules(program, d) for d in (Dir.EGRESS, Dir.INGRESS)}
    for policy in program.policies.values():
        chains[chain_name(policy.chain)] = policy_chain_rules(policy)
    for endpoint in program.endpoints.values():
        for d in Dir:
            chains[chain_name(endpoint.chain(d))] = endpoint_chain_rules(endpoint, d)
    chains.update(iptables_node.node_chains(program.node)["filter"])
    return chains


def render_iptables_full(program: HostProgram) -> str:
    """The filter, raw and mangle tables (iptables-restore without --noflush replaces each atomically)."""
    base = iptables_node.base_rules(program.node, DISPATCH[Dir.EGRESS][0], DISPATCH[Dir.INGRESS][0])
    node = iptables_node.node_chains(program.node)
    copies = iptables_node.phase_policy_chains(program.node)
    chains_of = {"filter": _chains(program)}
    for table in ("raw", "mangle"):
        chains_of[table] = {chain_name(c): policy_chain_rules(program.policies[c]) for c in sorted(copies[table])}
        chains_of[table].update(node[table])
    lines = []
    for table in ("raw", "mangle", "filter"):
        lines += [f"*{table}"] + [f":{c} ACCEPT [0:0]" for c in iptables_node.BUILTIN[table]]
        lines += [f":{c} - [0:0]" for c in list(base[table]) + list(chains_of[table])]
        lines += [f"-A {c[len(P):]} -j {c}" for c in base[table]]
        for rules in list(base[table].values()) + list(chains_of[table].values()):
            lines += rules
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def render_iptables_diff(old: HostProgram, new: HostProgram) -> str:
    """For `iptables-restore --noflush`: changed chains redeclared (flushed) and refilled, then removed
    chains flushed and deleted ('' when no chain changed)."""
    before, after = _chains(old), _chains(new)
    changed = {c: rules for c, rules in after.items() if before.get(c) != rules}
    removed = [c for c in before if c not in after]
    if not changed and not removed:
        return ""
    lines = ["*filter"] + [f":{c} - [0:0]" for c in changed] + [f":{c} - [0:0]" for c in removed]
    for rules in changed.values():
        lines += rules
    lines += [f"-X {c}" for c in removed]
    return "\n".join(lines + ["COMMIT"]) + "\n"


__all__ = ["IPSET_MAXELEM", "check_set_sizes", "ipset_net_elements", "render_ipset_full", "render_ipset_diff", "removed_ipsets", "render_iptables_full",
           "render_iptables_diff", "ipset_name", "chain_name"]
