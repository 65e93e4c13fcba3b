"""HostProgram -> nft script text. Pure: the same program always gives the same text.

Layout of the one table (`inet npl`) in a host namespace:
* `fw-dispatch` / `tw-dispatch`: interface verdict maps, from-workload interface -> `goto fw-<if>` (the
  endpoint's egress policy), to-workload interface -> `goto tw-<if>` (its ingress policy).
* base chains on forward and input (pod -> host): established/related accepted, invalid dropped, then
  both dispatches in turn (a pod-to-pod packet on one host passes the sender's egress AND the receiver's
  ingress, because endpoint chains return on allow, as in Felix); a `cali*` interface the maps do not know
  is dropped: fail closed. The node's own policy (host endpoints, failsafe ports; output, raw and preDNAT
  base chains) is rendered by render_node.py.
* endpoint chains: a counter, then per tier each policy chain is jumped to while no mark is set; a tier where
  nobody allowed or passed drops (logged); an allow mark returns. No tier: return (allow).
* policy chains: rules in order; Allow / Pass set a mark and return, Deny logs and drops, Log logs and goes on.

`render_full` writes the whole table (replacing any old one in the same transaction); `render_diff(old, new)`
writes only what changed: set elements added or removed, chains flushed and refilled, map elements swapped.
Additions run parents-last and deletions parents-first so every reference is valid at each step.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, collapse_addresses

from policy_dataplane.dataplane.hostprogram import (
    EMPTY_PROGRAM,
    LOG_GROUP,
    MARK_ALLOW,
    MARK_PASS,
    TABLE,
    Dir,
    EndpointProgram,
    HostProgram,
    NamedPortMember,
    NodeProgram,
    PolicyProgram,
    RuleProgram,
    SideMatch,
    Verdict,
)
from policy_dataplane.dataplane.nft.nftnl import ElementChange
from policy_dataplane.dataplane.nft.render_node import (
    BASE_CHAINS,
    CLEAR_MARKS,
    HOOKED_WHILE_USED,
    NO_MARK,
    base_rules,
    node_chains,
)
from topology.kernel_text import quoted

T = f"inet {TABLE}"
DISPATCH = {Dir.EGRESS: "fw-dispatch", Dir.INGRESS: "tw-dispatch"}
WORKLOAD_PREFIX = "cali"


# --- sets ------------------------------------------------------------------------------------------------


def address_networks(members: Iterable[IPv4Network]) -> list[IPv4Network]:
    """Interval sets refuse overlapping elements: collapse first (a pod /32 inside a network set's CIDR).
    Distinct /32s never overlap (adjacent ones are fine), so the common case skips the collapse."""
    members = list(members)
    if all(n.prefixlen == 32 for n in members):
        return sorted(members)
    return list(collapse_addresses(members))


def address_elements(members: Iterable[IPv4Network]) -> list[str]:
    """Members as networks (ipset's hash:net entries; nft's sets hold ranges: `interval_set_elements`)."""
    return [str(n.network_address) if n.prefixlen == 32 else str(n) for n in address_networks(members)]


def address_intervals(members: Iterable[IPv4Network]) -> list[tuple[int, int]]:
    """What an nft interval set holds for these members: sorted (first, last) address ranges, overlapping and
    adjacent networks merged into one. Interval sets refuse overlaps; and a host's pods sit side by side in
    its /26 blocks, so a selector over the bank's 1500 pods is a few dozen ranges, which nft parses and the
    kernel searches far faster than 1500 elements."""
    # `_ip` is the address as an int; `int(address)` is a Python call each: 1.7 ms for 1500 members, not 0.35
    spans = sorted((n.network_address._ip, n.broadcast_address._ip) for n in members)  # type: ignore[attr-defined]
    merged: list[tuple[int, int]] = []
    for first, last in spans:
        if merged and first <= merged[-1][1] + 1:
            if last > merged[-1][1]:
                merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


def interval_text(first: int, last: int) -> str:
    """One range as nft writes it: an address, a CIDR block when it is one, else `first-last`."""
    size = last - first + 1
    if size == 1:
        return str(IPv4Address(first))
    if size & (size - 1) == 0 and first % size == 0:
        return f"{IPv4Address(first)}/{33 - size.bit_length()}"
    return f"{IPv4Address(first)}-{IPv4Address(last)}"


def interval_set_elements(members: Iterable[IPv4Network]) -> list[str]:
    return [interval_text(first, last) for first, last in address_intervals(members)]


def element_changes(old: HostProgram, new: HostProgram) -> list[ElementChange] | None:
    """When two programs differ only in the members of existing address sets: those element changes
    (deletions first), which netlink can apply without nft. None when anything else differs."""
    if (old.policies != new.policies or old.endpoints != new.endpoints or old.node != new.node
            or old.named_port_sets != new.named_port_sets or old.address_sets.keys() != new.address_sets.keys()):
        return None
    deletions, additions = [], []
    for name, members in new.address_sets.items():
        previous = old.address_sets[name]
        if previous is members or previous == members:
            continue
        before, after = set(address_intervals(previous)), set(address_intervals(members))
        if before - after:
            deletions.append(ElementChange(name, False, tuple(sorted(before - after))))
        if after - before:
            additions.append(ElementChange(name, True, tuple(sorted(after - before))))
    return deletions + additions


def named_port_elements(members: Iterable[NamedPortMember]) -> list[str]:
    return [f"{addr} . {proto} . {port}" for addr, proto, port in sorted(members)]


def _set_decl(name: str, elements: list[str]) -> str:
    return f"add set {T} {name} {{ type ipv4_addr; flags interval;{_inline(elements)} }}"


def _named_port_set_decl(name: str, elements: list[str]) -> str:
    return f"add set {T} {name} {{ type ipv4_addr . inet_proto . inet_service;{_inline(elements)} }}"


def _inline(elements: list[str]) -> str:
    """A new set's members inside its declaration. `add element` into an interval set makes nft read every
    element of every set in the table first (~50 ms beside 30,000 elements); members declared with the set
    do not (a set of one: 0.1 ms)."""
    return f" elements = {{ {', '.join(elements)} }};" if elements else ""


def _elements(verb: str, name: str, elements: list[str], chunk: int = 2000) -> list[str]:
    return [f"{verb} element {T} {name} {{ {', '.join(elements[i:i + chunk])} }}"
            for i in range(0, len(elements), chunk)]


# --- rules -----------------------------------------------------------------------------------------------


def _ports(spans: Iterable[tuple[int, int]]) -> str:
    items = [str(a) if a == b else f"{a}-{b}" for a, b in sorted(spans)]
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def _side(side: SideMatch, addr: str, port: str, named_port_alternative: bool | None) -> list[str]:
    """Match expressions of one side. `named_port_alternative`: None when the side has no positive port
    match, False for the numeric ports, True for the named-port set (the two are ORed: two nft rules)."""
    out = []
    if side.nets:
        out.append(f"{addr} @{side.nets}")
    if side.not_nets:
        out.append(f"{addr} != @{side.not_nets}")
    if side.members:
        out.append(f"{addr} @{side.members}")
    if side.not_members:
        out.append(f"{addr} != @{side.not_members}")
    if named_port_alternative is False:
        out.append(f"th {port} {_ports(side.ports)}")
    elif named_port_alternative is True:
        out.append(f"{addr} . meta l4proto . th {port} @{side.named_ports}")
    if side.not_ports:
        out.append(f"th {port} != {_ports(side.not_ports)}")
    if side.not_named_ports:
        out.append(f"{addr} . meta l4proto . th {port} != @{side.not_named_ports}")
    return out


def _alternatives(side: SideMatch) -> list[bool | None]:
    if side.never:
        return []
    alts: list[bool | None] = []
    if side.ports:
        alts.append(False)
    if side.named_ports:
        alts.append(True)
    return alts or [None]


def rule_comment(policy: PolicyProgram, index: int) -> str:
    """Counters map nft rules back to (policy, rule index) by this comment (nft keeps it, max 128 bytes)."""
    return f"{policy.name[:100]} r{index}"


def log_prefix(kind: str, chain: str, index: int) -> str:
    """NFLOG prefix: kind (L log, D deny, T tier-end default deny), chain, rule or tier index."""
    return f"{kind} {chain} {index}"


def _verdict(rule: RuleProgram, chain: str, index: int) -> str:
    if rule.verdict is Verdict.ALLOW:
        return f"meta mark set meta mark or {MARK_ALLOW:#x} return"
    if rule.verdict is Verdict.PASS:
        return f"meta mark set meta mark or {MARK_PASS:#x} return"
    if rule.verdict is Verdict.DENY:
        return f'log prefix "{log_prefix("D", chain, index)}" group {LOG_GROUP} drop'
    return f'log prefix "{log_prefix("L", chain, index)}" group {LOG_GROUP}'


def render_rule(policy: PolicyProgram, index: int, rule: RuleProgram) -> list[str]:
    """One policy rule as zero, one or more nft rule bodies (ports OR named ports split in two)."""
    if rule.never:
        return []
    head = []
    if rule.protocol is not None:
        head.append(f"meta l4proto {rule.protocol}")
    if rule.not_protocol is not None:
        head.append(f"meta l4proto != {rule.not_protocol}")
    if rule.icmp is not None:
        head.append(f"icmp type {rule.icmp[0]}")
        if rule.icmp[1] is not None:
            head.append(f"icmp code {rule.icmp[1]}")
    if rule.not_icmp is not None:
        t, c = rule.not_icmp
        # Calico allows notICMP only with protocol ICMP: "not this type (and code)"
        head.append(f"icmp type != {t}" if c is None else f"icmp type . icmp code != {t} . {c}")
    out = []
    tail = f"counter {_verdict(rule, policy.chain, index)} comment {quoted(rule_comment(policy, index))}"
    for src_alt in _alternatives(rule.source):
        for dst_alt in _alternatives(rule.destination):
            body = head + _side(rule.source, "ip saddr", "sport", src_alt) + \
                _side(rule.destination, "ip daddr", "dport", dst_alt)
            out.append(" ".join(body + [tail]))
    return out


def policy_label(policy: PolicyProgram) -> str:
    """The comment naming a policy chain (its first rule), which counters read back: `policy <name> <dir>`."""
    return f"policy {policy.name[:100]} {policy.direction.value}"


def endpoint_label(endpoint: EndpointProgram) -> str:
    """The comment naming an endpoint chain (its first rule): `endpoint <ns/pod>`."""
    return f"endpoint {endpoint.key}"


def policy_header(policy: PolicyProgram) -> str:
    """First rule of a policy chain: counts packets the policy evaluated and names it for readers of the
    table (nft 1.0.6 does not show chain comments in JSON)."""
    return f"counter comment {quoted(policy_label(policy))}"


def policy_rules(policy: PolicyProgram) -> list[str]:
    return [policy_header(policy)] + [body for i, rule in enumerate(policy.rules)
                                      for body in render_rule(policy, i, rule)]


def endpoint_rules(endpoint: EndpointProgram, direction: Dir) -> list[str]:
    chain = endpoint.chain(direction)
    out = [f"counter comment {quoted(endpoint_label(endpoint))}"]
    tiers = endpoint.tiers(direction)
    if tiers:
        out.append(CLEAR_MARKS)
    for t, tier in enumerate(tiers):
        out += [f"{NO_MARK} jump {policy}" for policy in tier.policies]
        if not tier.default_pass:
            out.append(f'{NO_MARK} counter log prefix "{log_prefix("T", chain, t)}" group {LOG_GROUP} drop '
                       f"comment {quoted(f'tier {tier.name[:60]} default deny')}")
        out.append(f"meta mark and {MARK_ALLOW:#x} != 0 return")
        out.append(CLEAR_MARKS)  # pass (or the tier's default pass) goes on to the next tier
    out.append("return")  # no tier, or every tier passed: the profile allows
    return out


# --- whole table -----------------------------------------------------------------------------------------


def base_commands() -> list[str]:
    """The table skeleton: maps, the dispatch chains and the base chains (their rules come from the node
    program, see render_node.py), fail closed for any workload interface not in the maps.

    Base chains jump to `from-wl` / `to-wl`, which `goto` the endpoint chain found in the map: its return
    comes back to the base chain (so the ingress dispatch still follows), while an interface the map does
    not know falls through to the drop at the end of `from-wl` / `to-wl`."""
    out = [f"add table {T}"]
    for direction in (Dir.EGRESS, Dir.INGRESS):
        out.append(f"add map {T} {DISPATCH[direction]} {{ type ifname : verdict; }}")
    for chain, direction, key in (("from-wl", Dir.EGRESS, "iifname"), ("to-wl", Dir.INGRESS, "oifname")):
        out.append(f"add chain {T} {chain}")
        out.append(f"add rule {T} {chain} {key} vmap @{DISPATCH[direction]}")
        out.append(f'add rule {T} {chain} counter log prefix "U {chain} 0" group {LOG_GROUP} drop '
                   f'comment "unknown workload interface"')
    out += [_base_chain(chain) for chain in BASE_CHAINS if chain not in HOOKED_WHILE_USED]
    return out


def _base_chain(chain: str) -> str:
    hook, priority = BASE_CHAINS[chain]
    return f"add chain {T} {chain} {{ type filter hook {hook} priority {priority}; policy accept; }}"


def _node_commands(old: NodeProgram, new: NodeProgram, fresh: bool) -> tuple[list[str], list[str]]:
    """(host endpoint chains created or refilled, then base chains refilled or hooked; base chains unhooked
    and host endpoint chains deleted, once nothing refers to them). `fresh`: a full render (the always-hooked
    base chains are there and empty, the HOOKED_WHILE_USED ones are not there)."""
    out: list[str] = []
    before, after = node_chains(old), node_chains(new)
    for chain, rules in after.items():
        if before.get(chain) == rules:
            continue
        out.append(f"add chain {T} {chain}" if chain not in before else f"flush chain {T} {chain}")
        out += _chain_fill(chain, rules)
    old_base, new_base = base_rules(old), base_rules(new)
    unhooked = []  # before the host endpoint chains they jump to
    for chain, rules in new_base.items():
        old_rules = [] if fresh else old_base.get(chain, [])
        if chain in HOOKED_WHILE_USED and not (old_rules and rules):
            if rules:
                out += [_base_chain(chain)] + _chain_fill(chain, rules)
            elif old_rules:
                unhooked.append(f"delete chain {T} {chain}")
        elif fresh or old_rules != rules:
            out += ([] if fresh else [f"flush chain {T} {chain}"]) + _chain_fill(chain, rules)
    return out, unhooked + [f"delete chain {T} {chain}" for chain in before if chain not in after]


def _chain_fill(chain: str, bodies: list[str]) -> list[str]:
    return [f"add rule {T} {chain} {body}" for body in bodies]


def _map_element(verb: str, endpoint: EndpointProgram, direction: Dir) -> str:
    value = f' : goto {endpoint.chain(direction)}' if verb == "add" else ""
    return f'{verb} element {T} {DISPATCH[direction]} {{ "{endpoint.ifname}"{value} }}'


def render_full(program: HostProgram, replace: bool = True) -> str:
    """The whole table in one transaction. With `replace`, an existing table is deleted first in the same
    transaction (atomic: packets see the old program or the new, never none; conntrack is untouched)."""
    head = [f"add table {T}", f"delete table {T}"] if replace else []
    return "\n".join(head + base_commands() + _diff_commands(EMPTY_PROGRAM, program, fresh=True)) + "\n"


def render_diff(old: HostProgram, new: HostProgram) -> str:
    """Only what changed between two programs, as one transaction ('' when nothing did)."""
    if old is new:
        return ""
    commands = _diff_commands(old, new)
    return "\n".join(commands) + "\n" if commands else ""


def _set_updates(old: dict[str, frozenset], new: dict[str, frozenset], decl, elements) -> tuple[list[str], list[str]]:  # type: ignore[type-arg]
    """(additions and element changes, deletions of whole sets)."""
    adds: list[str] = []
    for name, members in new.items():
        if name not in old:
            adds.append(decl(name, elements(members)))
            continue
        if old[name] == members:
            continue
        before, after = set(elements(old[name])), set(elements(members))
        adds += _elements("delete", name, sorted(before - after))  # deletions first: intervals may merge
        adds += _elements("add", name, sorted(after - before))
    removes = [f"delete set {T} {name}" for name in old if name not in new]
    return adds, removes


def _diff_commands(old: HostProgram, new: HostProgram, fresh: bool = False) -> list[str]:
    set_adds, set_removes = _set_updates(old.address_sets, new.address_sets, _set_decl, interval_set_elements)
    np_adds, np_removes = _set_updates(old.named_port_sets, new.named_port_sets, _named_port_set_decl,
                                       named_port_elements)
    out = set_adds + np_adds
    # policy chains: new ones created and filled, changed ones flushed and refilled
    for chain, policy in new.policies.items():
        previous = old.policies.get(chain)
        if previous == policy:
            continue
        out.append(f"add chain {T} {chain}" if previous is None else f"flush chain {T} {chain}")
        out += _chain_fill(chain, policy_rules(policy))
    # endpoint chains, then their dispatch entries (a new interface becomes reachable only now)
    for ifname, endpoint in new.endpoints.items():
        previous_ep = old.endpoints.get(ifname)
        if previous_ep == endpoint:
            continue
        for direction in Dir:
            chain = endpoint.chain(direction)
            rules = endpoint_rules(endpoint, direction)
            if previous_ep is None:
                out.append(f"add chain {T} {chain}")
            elif endpoint_rules(previous_ep, direction) == rules:
                continue
            else:
                out.append(f"flush chain {T} {chain}")
            out += _chain_fill(chain, rules)
        if previous_ep is None:
            out += [_map_element("add", endpoint, d) for d in Dir]
    # the node's own chains and the base chains, then (below) what they no longer use
    node_adds, node_removes = _node_commands(old.node, new.node, fresh)
    out += node_adds
    # removals, parents first: dispatch entries, endpoint chains, policy chains, sets
    out += node_removes
    for ifname, endpoint in old.endpoints.items():
        if ifname not in new.endpoints:
            out += [_map_element("delete", endpoint, d) for d in Dir]
            out += [f"delete chain {T} {endpoint.chain(d)}" for d in Dir]
    out += [f"delete chain {T} {chain}" for chain in old.policies if chain not in new.policies]
    return out + set_removes + np_removes
