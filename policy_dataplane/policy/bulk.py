"""Whole reachability matrices for one protocol and port, without calling the per-pair oracle N² times.

Each endpoint's policy is evaluated once per direction against *all* other endpoints at the same time:
every rule becomes a bitset over endpoints (Python ints: bit i = endpoint i) built from cached
per-selector, per-CIDR and per-named-port bitsets, and the tier logic runs on those bitsets. Then
allowed[i, j] = egress of i allows j AND ingress of j allows i. The semantics are the oracle's
(`evaluate.py`); the tests check the two agree on every pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np

from policy_dataplane.policy.evaluate import endpoint, evaluate_flow
from policy_dataplane.policy.model import (
    DEFAULT_FELIX_CONFIG,
    Action,
    Direction,
    EntityMatch,
    HostNode,
    IPNetwork,
    NamedPort,
    Pod,
    PortMatch,
    Rule,
    Selector,
    protocol_number,
)
from policy_dataplane.policy.resolve import resolve
from policy_dataplane.policy.tiers import Endpoint, Flow, Side, entity_matches
from policy_dataplane.policy.world import World


@dataclass(frozen=True)
class Matrix:
    endpoints: tuple[Endpoint, ...]
    protocol: int
    port: int | None
    allowed: np.ndarray  # bool, shape (n, n): [source index, destination index]

    def index(self, ep: Endpoint) -> int:
        return self.endpoints.index(ep)


class _Bits:
    """Cached bitsets over the endpoint list."""

    def __init__(self, world: World, endpoints: tuple[Endpoint, ...], protocol: int, port: int | None):
        self.world = world
        self.endpoints = endpoints
        self.protocol = protocol
        self.port = port
        self.all = (1 << len(endpoints)) - 1
        self.pod_bit = {ep.key: 1 << i for i, ep in enumerate(endpoints) if isinstance(ep, Pod)}
        self._selector: dict[str, int] = {}
        self._nets: dict[tuple[IPNetwork, ...], int] = {}
        self._named: dict[tuple[str, int], int] = {}
        self._netset: dict[tuple[str | None, str], int] = {}

    def nets(self, nets: tuple[IPNetwork, ...]) -> int:
        bits = self._nets.get(nets)
        if bits is None:
            bits = 0
            for i, ep in enumerate(self.endpoints):
                if ep.ip is not None and any(ep.ip in n for n in nets):
                    bits |= 1 << i
            self._nets[nets] = bits
        return bits

    def selector(self, selector: Selector) -> int:
        bits = self._selector.get(selector.id)
        if bits is not None:
            return bits
        bits = 0
        if self.world.index.has_selector(selector.id):
            members = self.world.index.members_view(selector.id)
        else:
            members = {item for item, labels in self.world.index_items().items() if selector.matches(labels)}
        for item in members:
            kind, ns, name = cast(tuple[str, str, str], item)  # see world.pod_item / world.netset_item
            if kind == "pod":
                bits |= self.pod_bit.get((ns, name), 0)
            else:
                bits |= self.netset((ns or None, name))
        self._selector[selector.id] = bits
        return bits

    def netset(self, key: tuple[str | None, str]) -> int:
        bits = self._netset.get(key)
        if bits is None:
            netset = self.world.netsets[key]
            bits = self.nets(netset.nets) if netset.nets else 0
            self._netset[key] = bits
        return bits

    def ports(self, ports: tuple[PortMatch, ...], port: int | None) -> int:
        if port is None:
            return 0
        bits = 0
        for pm in ports:
            if isinstance(pm, NamedPort):
                bits |= self.named(pm.name, port)
            elif pm.contains(port):
                return self.all
        return bits

    def named(self, name: str, port: int) -> int:
        key = (name, port)
        bits = self._named.get(key)
        if bits is None:
            bits = 0
            for i, ep in enumerate(self.endpoints):
                if isinstance(ep, Pod) and ep.named_port(name, self.protocol) == port:
                    bits |= 1 << i
            self._named[key] = bits
        return bits

    def entity(self, em: EntityMatch, port: int | None) -> int:
        bits = self.all
        if em.nets:
            bits &= self.nets(em.nets)
        if em.not_nets:
            bits &= ~self.nets(em.not_nets)
        if em.selector is not None:
            bits &= self.selector(em.selector)
        if em.not_selector is not None:
            bits &= ~self.selector(em.not_selector)
        if em.ports:
            bits &= self.ports(em.ports, port)
        if em.not_ports:
            bits &= ~self.ports(em.not_ports, port)
        return bits & self.all


def _rule_bits(
    bits: _Bits, rule: Rule, local: Pod, direction: Direction, icmp_type: int | None, icmp_code: int | None
) -> int:
    """Remote endpoints this rule matches, for flows between `local` and each of them."""
    if rule.protocol is not None and rule.protocol != bits.protocol:
        return 0
    if rule.not_protocol is not None and rule.not_protocol == bits.protocol:
        return 0
    if rule.ip_version is not None and local.ip is not None and local.ip.version != rule.ip_version:
        return 0
    if rule.icmp is not None and not rule.icmp.matches(icmp_type, icmp_code):
        return 0
    if rule.not_icmp is not None and rule.not_icmp.matches(icmp_type, icmp_code):
        return 0
    if direction is Direction.INGRESS:
        local_side = Side(local, local.ip, bits.port)
        if not entity_matches(bits.world, rule.destination, local_side, bits.protocol):
            return 0
        return bits.entity(rule.source, None)  # the remote is the source: its port is not known
    local_side = Side(local, local.ip, None)
    if not entity_matches(bits.world, rule.source, local_side, bits.protocol):
        return 0
    return bits.entity(rule.destination, bits.port)


def _allowed_remotes(
    bits: _Bits, local: Pod, direction: Direction, staged_view: bool, icmp_type: int | None, icmp_code: int | None
) -> int:
    undecided = bits.all
    allowed = 0
    for rt in resolve(bits.world, local, direction, staged_view=staged_view):
        in_tier = undecided
        passed = 0
        for policy in rt.policies:
            for rule in policy.rules(direction):
                if rule.action is Action.LOG or not in_tier:
                    continue
                hit = _rule_bits(bits, rule, local, direction, icmp_type, icmp_code) & in_tier
                if not hit:
                    continue
                if rule.action is Action.ALLOW:
                    allowed |= hit
                elif rule.action is Action.PASS:
                    passed |= hit
                in_tier &= ~hit
        if rt.tier.default_action is Action.PASS:
            passed |= in_tier
        undecided = passed
    return allowed | undecided  # whatever passed every tier meets the profile, which allows


def _to_bool_rows(rows: list[int], n: int) -> np.ndarray:
    nbytes = (n + 7) // 8
    buf = b"".join(r.to_bytes(nbytes, "little") for r in rows)
    flat = np.unpackbits(np.frombuffer(buf, dtype=np.uint8), bitorder="little")
    return flat.reshape(len(rows), nbytes * 8)[:, :n].astype(bool)


def matrix(
    world: World,
    protocol: str | int,
    port: int | None = None,
    endpoints: Sequence[Endpoint | str] | None = None,
    *,
    icmp_type: int | None = None,
    icmp_code: int | None = None,
    staged_view: bool = False,
) -> Matrix:
    """Allowed[src, dst] for every pair of `endpoints` (default: every pod, sorted by namespace/name)."""
    eps = tuple(
        endpoint(world, e) for e in endpoints
    ) if endpoints is not None else tuple(world.pods[k] for k in sorted(world.pods))
    n = len(eps)
    if world.host_endpoints or world.felix != DEFAULT_FELIX_CONFIG or any(isinstance(e, HostNode) for e in eps):
        return _pairwise(world, eps, protocol_number(protocol), port, icmp_type, icmp_code, staged_view)
    bits = _Bits(world, eps, protocol_number(protocol), port)
    egress_rows: list[int] = []
    ingress_rows: list[int] = []
    for ep in eps:
        if not isinstance(ep, Pod):
            egress_rows.append(bits.all)
            ingress_rows.append(bits.all)
            continue
        egress_rows.append(_allowed_remotes(bits, ep, Direction.EGRESS, staged_view, icmp_type, icmp_code))
        ingress_rows.append(_allowed_remotes(bits, ep, Direction.INGRESS, staged_view, icmp_type, icmp_code))
    egress = _to_bool_rows(egress_rows, n)  # [src, dst]
    ingress = _to_bool_rows(ingress_rows, n)  # [dst, src]
    return Matrix(eps, bits.protocol, port, egress & ingress.T)


def _pairwise(world: World, eps: tuple[Endpoint, ...], protocol: int, port: int | None, icmp_type: int | None,
              icmp_code: int | None, staged_view: bool) -> Matrix:
    """Flows through nodes (host endpoints, a node's own traffic): the oracle, pair by pair (labs with host
    endpoints are small; the bitset shortcut knows pod and network-set policy only)."""
    allowed = np.zeros((len(eps), len(eps)), dtype=bool)
    for i, src in enumerate(eps):
        for j, dst in enumerate(eps):
            flow = Flow(src, dst, protocol, port, icmp_type, icmp_code)
            allowed[i, j] = evaluate_flow(world, flow, staged_view=staged_view).allowed
    return Matrix(eps, protocol, port, allowed)


__all__ = ["Matrix", "matrix"]
