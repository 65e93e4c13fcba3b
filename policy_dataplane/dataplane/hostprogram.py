"""One host's filter program as plain, frozen data: what `compile.py` produces and `nft/render.py` turns into nft.

Nothing here knows about policies' YAML or about the kernel. The program lists:
* address sets (selector members, nets) by name, each a set of IPv4 networks (a pod is a /32),
* named-port sets of (address, protocol, port) triples,
* policy chains (one per enforced policy and direction, `pi-`/`po-` + hash), each an ordered rule list,
* endpoints: the host-side interface and, per direction, the ordered tiers of policy chains that apply
  (an empty tuple means no policy selects the endpoint in that direction: it allows).

Names are content-independent where identity matters (a policy chain is named after its policy, a selector
set after the selector's canonical id), so a change rewrites that chain or those elements, not everything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import Enum
from ipaddress import IPv4Address, IPv4Network

TABLE = "npl"  # one table per host namespace; the namespace itself is the lab's, so one fixed name
LOG_GROUP = 1  # NFLOG group of Log rules and of every drop (drops.py listens to it)
MARK_ALLOW = 0x10000  # a policy allowed the packet (Felix's accept mark)
MARK_PASS = 0x20000  # a policy passed the packet to the next tier
MARK_MASK = MARK_ALLOW | MARK_PASS


class Verdict(str, Enum):
    ALLOW = "allow"
    DENY = "deny"
    LOG = "log"
    PASS = "pass"


class Dir(str, Enum):
    INGRESS = "ingress"
    EGRESS = "egress"

    @property
    def policy_prefix(self) -> str:
        return "pi-" if self is Dir.INGRESS else "po-"

    @property
    def endpoint_prefix(self) -> str:
        """to-workload chains carry ingress policy, from-workload chains egress policy (Felix's names)."""
        return "tw-" if self is Dir.INGRESS else "fw-"


def short_hash(*parts: str, length: int = 12) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:length]


PortSpan = tuple[int, int]  # inclusive
NamedPortMember = tuple[IPv4Address, int, int]  # (address, IP protocol, port)


@dataclass(frozen=True)
class SideMatch:
    """Conditions on one side (source or destination) of a packet; None / () means "any".

    All fields are ANDed. `ports` OR `named_ports` (when both are given the rule renders as two nft rules);
    `not_ports` and `not_named_ports` must both miss.
    """

    nets: str | None = None  # address set name: the address must be in it
    not_nets: str | None = None
    members: str | None = None  # selector set name
    not_members: str | None = None
    ports: tuple[PortSpan, ...] = ()
    named_ports: str | None = None  # named-port set name (addr . proto . port)
    not_ports: tuple[PortSpan, ...] = ()
    not_named_ports: str | None = None
    never: bool = False  # e.g. a named port nobody declares with only numeric ports empty: matches nothing


ANY_SIDE = SideMatch()


@dataclass(frozen=True)
class RuleProgram:
    verdict: Verdict
    protocol: int | None = None
    not_protocol: int | None = None
    icmp: tuple[int, int | None] | None = None  # (type, code or None)
    not_icmp: tuple[int, int | None] | None = None
    source: SideMatch = ANY_SIDE
    destination: SideMatch = ANY_SIDE
    never: bool = False  # the rule can never match (e.g. IPv6 only): rendered as nothing


@dataclass(frozen=True)
class PolicyProgram:
    """One enforced policy in one direction: a chain of rules."""

    name: str  # the policy's display name (for counters and drop logs)
    direction: Dir
    rules: tuple[RuleProgram, ...]

    @property
    def chain(self) -> str:
        return policy_chain(self.name, self.direction)


def policy_chain(policy_name: str, direction: Dir) -> str:
    return direction.policy_prefix + short_hash(policy_name)


@dataclass(frozen=True)
class TierProgram:
    name: str
    policies: tuple[str, ...]  # policy chain names, in order
    default_pass: bool = False  # Calico tiers default to Deny at their end; Pass is optional


@dataclass(frozen=True)
class EndpointProgram:
    key: str  # "namespace/pod"
    ifname: str  # host-side interface
    ingress: tuple[TierProgram, ...] = ()  # empty: nothing selects it for ingress: allow
    egress: tuple[TierProgram, ...] = ()

    def tiers(self, direction: Dir) -> tuple[TierProgram, ...]:
        return self.ingress if direction is Dir.INGRESS else self.egress

    def chain(self, direction: Dir) -> str:
        return endpoint_chain(self.ifname, direction)


def endpoint_chain(ifname: str, direction: Dir) -> str:
    return direction.endpoint_prefix + ifname


@dataclass(frozen=True)
class HostProgram:
    """Everything one host enforces. Mappings are keyed by name; equality means "same program"."""

    address_sets: dict[str, frozenset[IPv4Network]] = field(default_factory=dict)
    named_port_sets: dict[str, frozenset[NamedPortMember]] = field(default_factory=dict)
    policies: dict[str, PolicyProgram] = field(default_factory=dict)  # by chain name
    endpoints: dict[str, EndpointProgram] = field(default_factory=dict)  # by ifname

    def __hash__(self) -> int:  # dict fields: hash by identity of content is not needed, but frozen wants one
        return hash((tuple(sorted(self.address_sets)), tuple(sorted(self.endpoints))))

    def check(self) -> None:
        """Every name a chain refers to exists (a program that would make nft fail is caught before)."""
        for policy in self.policies.values():
            for rule in policy.rules:
                for side in (rule.source, rule.destination):
                    for name in (side.nets, side.not_nets, side.members, side.not_members):
                        if name is not None and name not in self.address_sets:
                            raise ValueError(f"{policy.chain} refers to unknown address set {name}")
                    for name in (side.named_ports, side.not_named_ports):
                        if name is not None and name not in self.named_port_sets:
                            raise ValueError(f"{policy.chain} refers to unknown named-port set {name}")
        for endpoint in self.endpoints.values():
            for direction in Dir:
                for tier in endpoint.tiers(direction):
                    for chain in tier.policies:
                        if chain not in self.policies:
                            raise ValueError(f"{endpoint.key} refers to unknown policy chain {chain}")

    def policy_names(self) -> dict[str, str]:
        """chain name -> policy display name (drop logs and counters report policies by name)."""
        return {chain: p.name for chain, p in self.policies.items()}


EMPTY_PROGRAM = HostProgram()
