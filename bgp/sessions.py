"""Who peers with whom: pure plans of the BGP sessions of a lab.

Layouts (docs/ARCHITECTURE.md, ExaBGP):
- `mesh` (default): iBGP full mesh among hosts and external learn-only speakers. In every pair exactly one
  side connects and the other only listens (two active ends made ExaBGP meshes fail to converge). The
  active side alternates along the sorted node list so every speaker dials about half of its peers.
- `route-reflector`: BIRD 2 reflectors on the fabric; hosts and externals peer only with the reflectors
  (they dial, the reflectors listen). Several reflectors share one cluster id and every client peers with
  all of them, so any one of them is enough.
External speakers announce nothing; they only install what they learn, to reach the pods.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from typing import Literal, Protocol

DEFAULT_ASN = 64512
DEFAULT_HOLD_TIME = 9
MIN_HOLD_TIME = 3

Layout = Literal["mesh", "route-reflector"]
SpeakerRole = Literal["host", "external"]
LAYOUTS: tuple[str, ...] = ("mesh", "route-reflector")


class SessionPlanError(ValueError):
    pass


class NodeLike(Protocol):
    """What the planner needs of a node; topology.model.NodePlan fits."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...  # "host" | "external" | "reflector"

    @property
    def netns(self) -> str: ...

    @property
    def fabric_ip(self) -> IPv4Interface | IPv4Address: ...


@dataclass(frozen=True)
class BgpNode:
    """A plain node, for callers without a topology plan."""

    name: str
    kind: str
    netns: str
    fabric_ip: IPv4Address


@dataclass(frozen=True)
class PeerPlan:
    name: str
    address: IPv4Address
    passive: bool  # True: this side only listens, the peer dials


@dataclass(frozen=True)
class SpeakerPlan:
    """One ExaBGP speaker (a host or an external learn-only node)."""

    name: str
    role: SpeakerRole
    netns: str
    router_id: IPv4Address
    local_address: IPv4Address
    asn: int
    hold_time: int
    peers: tuple[PeerPlan, ...]

    @property
    def announces(self) -> bool:
        return self.role == "host"


@dataclass(frozen=True)
class ReflectorPlan:
    """One BIRD 2 route reflector; every client is passive from its side (the clients dial)."""

    name: str
    netns: str
    router_id: IPv4Address
    local_address: IPv4Address
    asn: int
    hold_time: int
    cluster_id: IPv4Address
    clients: tuple[PeerPlan, ...]


@dataclass(frozen=True)
class BgpPlan:
    layout: Layout
    speakers: tuple[SpeakerPlan, ...]
    reflectors: tuple[ReflectorPlan, ...] = ()

    def speaker(self, name: str) -> SpeakerPlan:
        for plan in self.speakers:
            if plan.name == name:
                return plan
        raise KeyError(name)

    def session_count(self) -> int:
        return sum(len(s.peers) for s in self.speakers) // (1 if self.reflectors else 2)


def _address(node: NodeLike) -> IPv4Address:
    ip = node.fabric_ip
    return ip.ip if isinstance(ip, IPv4Interface) else IPv4Address(ip)


def _check(nodes: list[NodeLike], hold_time: int, asn: int) -> None:
    errors = []
    if hold_time < MIN_HOLD_TIME:
        errors.append(f"hold time {hold_time}s is too short: BGP allows {MIN_HOLD_TIME}s at least")
    if not 1 <= asn <= 4294967295:
        errors.append(f"AS number {asn} is outside 1..4294967295")
    seen_names: set[str] = set()
    seen_ips: dict[IPv4Address, str] = {}
    for node in nodes:
        if node.kind not in ("host", "external", "reflector"):
            errors.append(f"node {node.name}: unknown kind {node.kind!r}")
        if node.name in seen_names:
            errors.append(f"node name {node.name} is used twice")
        seen_names.add(node.name)
        ip = _address(node)
        if ip in seen_ips:
            errors.append(f"nodes {seen_ips[ip]} and {node.name} share the fabric address {ip}")
        seen_ips[ip] = node.name
    if errors:
        raise SessionPlanError("; ".join(errors))


def plan_sessions(
    nodes: Iterable[NodeLike],
    layout: str = "mesh",
    asn: int = DEFAULT_ASN,
    hold_time: int = DEFAULT_HOLD_TIME,
) -> BgpPlan:
    """Sessions of hosts, externals and (route-reflector layout only) reflectors, from the lab's nodes."""
    all_nodes = list(nodes)
    _check(all_nodes, hold_time, asn)
    speakers = sorted((n for n in all_nodes if n.kind in ("host", "external")), key=_address)
    reflectors = sorted((n for n in all_nodes if n.kind == "reflector"), key=_address)
    if layout == "mesh":
        return BgpPlan("mesh", _mesh(speakers, asn, hold_time))
    if layout == "route-reflector":
        if not reflectors:
            raise SessionPlanError("the route-reflector layout needs at least one reflector node")
        return _reflected(speakers, reflectors, asn, hold_time)
    raise SessionPlanError(f"unknown BGP layout {layout!r}: use one of {', '.join(LAYOUTS)}")


def mesh_active(i: int, j: int) -> bool:
    """In the pair of sorted positions i < j, does i dial? Alternating keeps dialing balanced."""
    return (j - i) % 2 == 1


def _speaker(node: NodeLike, peers: list[PeerPlan], asn: int, hold_time: int) -> SpeakerPlan:
    ip = _address(node)
    role: SpeakerRole = "host" if node.kind == "host" else "external"
    return SpeakerPlan(node.name, role, node.netns, ip, ip, asn, hold_time, tuple(peers))


def _mesh(speakers: list[NodeLike], asn: int, hold_time: int) -> tuple[SpeakerPlan, ...]:
    plans = []
    for i, node in enumerate(speakers):
        peers = []
        for j, other in enumerate(speakers):
            if i == j:
                continue
            low, high = min(i, j), max(i, j)
            low_dials = mesh_active(low, high)
            i_dials = low_dials if i == low else not low_dials
            peers.append(PeerPlan(other.name, _address(other), passive=not i_dials))
        plans.append(_speaker(node, peers, asn, hold_time))
    return tuple(plans)


def _reflected(
    speakers: list[NodeLike], reflectors: list[NodeLike], asn: int, hold_time: int
) -> BgpPlan:
    cluster_id = _address(reflectors[0])
    rr_peers = [PeerPlan(r.name, _address(r), passive=False) for r in reflectors]
    clients = tuple(PeerPlan(s.name, _address(s), passive=True) for s in speakers)
    return BgpPlan(
        "route-reflector",
        tuple(_speaker(s, rr_peers, asn, hold_time) for s in speakers),
        tuple(
            ReflectorPlan(r.name, r.netns, _address(r), _address(r), asn, hold_time, cluster_id, clients)
            for r in reflectors
        ),
    )
