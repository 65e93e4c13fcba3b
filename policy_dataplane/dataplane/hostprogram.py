"""One host's filter program as plain, frozen data: what `compile.py` produces and `nft/render.py` turns into nft.

Nothing here knows about policies' YAML or about the kernel. The program lists:
* address sets (selector members, nets) by name, each a set of IPv4 networks (a pod is a /32),
* named-port sets of (address, protocol, port) triples,
* policy chains (one per enforced policy and direction, `pi-`/`po-` + hash), each an ordered rule list,
* endpoints: the host-side interface and, per direction, the ordered tiers of policy chains that apply
  (an empty tuple means no policy selects the endpoint in that direction: it allows),
* the node's own policy (`NodeProgram`): the host endpoint guarding its fabric interface, with tiers per
  phase (normal, applyOnForward, doNotTrack, preDNAT), the failsafe ports and what a pod's traffic to its
  own host meets after its egress policy.

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
MARK_PRE_DNAT = 0x40000  # a preDNAT policy allowed the packet: normal host endpoint policy is skipped


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
class FailsafeRule:
    protocol: int
    port: int
    net: str | None = None  # the remote address must be in it (None: any)


@dataclass(frozen=True)
class HostEndpointProgram:
    """The host endpoint on one interface of the node, tiers per phase and direction (see hostpath.py)."""

    key: str  # "hep <name> (<node>/<interface>)"
    ifname: str
    ingress: tuple[TierProgram, ...] = ()  # to the node's own processes (tracked)
    egress: tuple[TierProgram, ...] = ()  # from them
    forward_ingress: tuple[TierProgram, ...] = ()  # applyOnForward: forwarded in (none: not policed)
    forward_egress: tuple[TierProgram, ...] = ()
    untracked_ingress: tuple[TierProgram, ...] = ()  # doNotTrack (no tier default: only rules decide)
    untracked_egress: tuple[TierProgram, ...] = ()
    pre_dnat_ingress: tuple[TierProgram, ...] = ()  # preDNAT (no tier default either)
    default_allow: bool = False  # the default-allow profile: what no normal policy decides is allowed

    def chains(self) -> dict[str, tuple[TierProgram, ...]]:
        """Chain name -> its tiers, for every chain this endpoint has (the forward chains only when some
        applyOnForward policy selects it: otherwise forwarded traffic is not policed)."""
        out = {f"hi-{self.ifname}": self.ingress, f"ho-{self.ifname}": self.egress,
               f"hui-{self.ifname}": self.untracked_ingress, f"huo-{self.ifname}": self.untracked_egress,
               f"hpi-{self.ifname}": self.pre_dnat_ingress}
        if self.forward_ingress:
            out[f"hfi-{self.ifname}"] = self.forward_ingress
        if self.forward_egress:
            out[f"hfo-{self.ifname}"] = self.forward_egress
        return out


@dataclass(frozen=True)
class HepChainRole:
    """What a host endpoint chain does, by its name's kind (`hi-eth0` -> `hi`); both renderers follow it."""

    direction: str  # ingress / egress
    failsafe: str | None  # which failsafe ports it accepts first: "inbound", "outbound" or none
    decisive: bool  # tier defaults and the profile apply (normal and applyOnForward policy)
    on_allow: str  # "return" (normal), "notrack" (doNotTrack: untracked and accepted), "pre-dnat" (mark, accept)


HEP_CHAIN_ROLES = {
    "hi": HepChainRole("ingress", "inbound", True, "return"), "ho": HepChainRole("egress", "outbound", True, "return"),
    "hfi": HepChainRole("ingress", None, True, "return"), "hfo": HepChainRole("egress", None, True, "return"),
    "hui": HepChainRole("ingress", "inbound", False, "notrack"),
    "huo": HepChainRole("egress", "outbound", False, "notrack"),
    "hpi": HepChainRole("ingress", "inbound", False, "pre-dnat"),
}


def hep_chain_role(chain: str) -> HepChainRole | None:
    """The role of a host endpoint chain; None for any other chain."""
    kind, dash, _ = chain.partition("-")
    return HEP_CHAIN_ROLES.get(kind) if dash else None


@dataclass(frozen=True)
class NodeProgram:
    """What guards the node itself. Without a host endpoint only `endpoint_to_host` matters."""

    endpoint: HostEndpointProgram | None = None
    failsafe_inbound: tuple[FailsafeRule, ...] = ()
    failsafe_outbound: tuple[FailsafeRule, ...] = ()
    endpoint_to_host: str = "accept"  # accept or drop (Calico's Return: the lab's INPUT accepts)

    def failsafe(self, role: HepChainRole) -> tuple[FailsafeRule, ...]:
        return {"inbound": self.failsafe_inbound, "outbound": self.failsafe_outbound}.get(role.failsafe or "", ())


NO_NODE_POLICY = NodeProgram()


@dataclass(frozen=True)
class HostProgram:
    """Everything one host enforces. Mappings are keyed by name; equality means "same program"."""

    address_sets: dict[str, frozenset[IPv4Network]] = field(default_factory=dict)
    named_port_sets: dict[str, frozenset[NamedPortMember]] = field(default_factory=dict)
    policies: dict[str, PolicyProgram] = field(default_factory=dict)  # by chain name
    endpoints: dict[str, EndpointProgram] = field(default_factory=dict)  # by ifname
    node: NodeProgram = NO_NODE_POLICY

    def used_chains(self) -> set[str]:
        """Policy chains some endpoint (workload or host) jumps to."""
        used = {c for e in self.endpoints.values() for tiers in (e.ingress, e.egress) for t in tiers for c in t.policies}
        if self.node.endpoint is not None:
            used |= {c for tiers in self.node.endpoint.chains().values() for t in tiers for c in t.policies}
        return used

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
        for chain in self.used_chains():
            if chain not in self.policies:
                raise ValueError(f"an endpoint refers to unknown policy chain {chain}")


EMPTY_PROGRAM = HostProgram()
