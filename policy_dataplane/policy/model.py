"""The policy model: one frozen, typed form for everything Kubernetes and Calico policy can say.

Everything here is immutable and pure. `k8s.py` and `calico.py` turn validated YAML into these objects; the
oracle (`evaluate.py`) and the nftables compiler read them, so both agree by construction.

How a compiler reads the normal form
------------------------------------
* Endpoints are `Pod`s. Each pod has *selector labels* (`selector_labels(pod, namespace)`): its own labels
  plus pseudo-labels, as Calico does it:
    - `projectcalico.org/namespace: <ns>`, `projectcalico.org/orchestrator: k8s`,
      `projectcalico.org/serviceaccount: <sa>`,
    - every namespace label `k: v` as `pcns.k: v` (Kubernetes gives every namespace
      `kubernetes.io/metadata.name: <ns>`; undeclared namespaces get it too, see `implicit_namespace`),
    - `pcns.projectcalico.org/name: <ns>` and `pcsa.projectcalico.org/name: <service account>`.
  Network sets carry their own labels plus `projectcalico.org/namespace` when namespaced (GlobalNetworkSets
  carry none, which is what `global()` matches). Namespace, service-account and "pods only" scoping is
  therefore *already folded into every selector* (Kubernetes peers carry
  `projectcalico.org/orchestrator == "k8s"`, so they never match network sets): a selector is matched
  against those labels and nothing else.
* A `Selector` (see selectors.py) has `.canonical` and a stable 16-hex-digit `.id`. The address set of a
  selector holds the IPs of every matching pod and the CIDRs of every matching network set. The world's
  label index (`world.index`, labelindex.py) keeps `members_view(selector.id)` current for every selector
  used by a policy; items are `("pod", ns, name)` and `("set", ns or "", name)`.
* `Policy` objects: `applies_to` (selector over pod labels, scoping folded), `types`, `ingress`/`egress`
  rule tuples (rules of a direction not in `types` are already dropped), `tier`, `order`. Kubernetes
  NetworkPolicies appear as ordinary policies in tier `default` at order 1000 (`str(key)` reads
  `<ns>/knp.default.<name>`), with Allow rules: one per peer and protocol.
* Per endpoint and direction, `resolve.resolve(world, pod, direction)` gives the ordered tiers, each with
  its ordered policies (only policies whose `types` contain that direction; tiers with none of them are
  left out). Evaluation per tier: rules in order; Allow / Deny end evaluation, Pass jumps to the next tier,
  Log records and goes on; a policy that reaches its end falls through to the next policy of the tier; a
  tier whose policies all fall through applies its `default_action` (Deny, or Pass). After the last tier
  (or with no tier at all) the endpoint's profile allows. Both the source pod's egress and the
  destination pod's ingress must allow; replies of an allowed connection always pass (conntrack).
* A `Rule` matches when all of its fields match (empty tuples and None mean "any"):
    - `protocol` (IP protocol number) / `not_protocol`; `icmp` / `not_icmp` (type, optional code);
      `ip_version` (4, 6 or None);
    - `source` and `destination` `EntityMatch`: the address is in one of `nets` and in none of
      `not_nets`; the address is in the set of `selector` and not in the set of `not_selector`; the port
      is in one of `ports` and in none of `not_ports` (a `PortRange` is inclusive; a `NamedPort` matches
      the (ip, protocol, port) of that endpoint's container port of that name and the rule's protocol, so
      it resolves per pod; an address that is not a pod has no named ports).
  For ingress, `destination` describes the local endpoint; for egress, `source` does.
* Staged policies (`Policy.staged` not None) live in `world.staged`, never in `world.policies`: never
  enforced; the oracle reports what they would do.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Union

from policy_dataplane.policy.selectors import ALL, Selector

__all__ = [
    "Action",
    "Direction",
    "StagedAction",
    "IPNetwork",
    "IPAddress",
    "Labels",
    "PortRange",
    "NamedPort",
    "PortMatch",
    "IcmpMatch",
    "EntityMatch",
    "Rule",
    "PolicyKind",
    "PolicyKey",
    "Policy",
    "Tier",
    "Namespace",
    "ContainerPort",
    "Pod",
    "NetworkSet",
    "ExternalHost",
    "HostEndpoint",
    "HostNode",
    "FailsafePort",
    "FelixConfig",
    "ServiceAccount",
    "DEFAULT_FELIX_CONFIG",
    "DEFAULT_ALLOW_PROFILE",
    "ALL_INTERFACES",
    "hostendpoint_labels",
    "Selector",
    "ALL",
    "DEFAULT_TIER",
    "DEFAULT_TIER_ORDER",
    "K8S_POLICY_ORDER",
    "PROTOCOLS",
    "PORT_PROTOCOLS",
    "protocol_number",
    "protocol_name",
    "NAMESPACE_LABEL",
    "ORCHESTRATOR_LABEL",
    "SERVICE_ACCOUNT_LABEL",
    "NAMESPACE_LABEL_PREFIX",
    "SERVICE_ACCOUNT_LABEL_PREFIX",
    "NAME_LABEL",
    "K8S_NAMESPACE_NAME_LABEL",
    "implicit_namespace",
    "selector_labels",
    "netset_labels",
]

IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

DEFAULT_TIER = "default"
DEFAULT_TIER_ORDER = 1_000_000.0
K8S_POLICY_ORDER = 1000.0

NAMESPACE_LABEL = "projectcalico.org/namespace"
ORCHESTRATOR_LABEL = "projectcalico.org/orchestrator"
SERVICE_ACCOUNT_LABEL = "projectcalico.org/serviceaccount"
NAMESPACE_LABEL_PREFIX = "pcns."
SERVICE_ACCOUNT_LABEL_PREFIX = "pcsa."
NAME_LABEL = "projectcalico.org/name"  # as pcns.<it> on pods: the namespace name; as pcsa.<it>: the SA name
K8S_NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set by Kubernetes on every namespace

# IP protocol numbers by Calico's names.
PROTOCOLS: dict[str, int] = {"TCP": 6, "UDP": 17, "ICMP": 1, "ICMPv6": 58, "SCTP": 132, "UDPLite": 136}
_PROTOCOL_NAMES = {v: k for k, v in PROTOCOLS.items()}
# Protocols that have ports (Calico rejects ports with any other protocol).
PORT_PROTOCOLS = frozenset({6, 17, 132, 136})


def protocol_number(protocol: str | int) -> int:
    """'TCP' / 'tcp' / 6 -> 6. Raises ValueError for unknown names or numbers outside 1..255."""
    if isinstance(protocol, int):
        if not 1 <= protocol <= 255:
            raise ValueError(f"protocol number {protocol} is outside 1..255")
        return protocol
    for name, number in PROTOCOLS.items():
        if name.lower() == protocol.lower():
            return number
    if protocol.isdigit():
        return protocol_number(int(protocol))
    raise ValueError(f"unknown protocol {protocol!r} (expected one of {', '.join(PROTOCOLS)} or 1..255)")


def protocol_name(number: int) -> str:
    return _PROTOCOL_NAMES.get(number, str(number))


class Action(str, Enum):
    ALLOW = "Allow"
    DENY = "Deny"
    LOG = "Log"
    PASS = "Pass"


class Direction(str, Enum):
    INGRESS = "Ingress"
    EGRESS = "Egress"


class StagedAction(str, Enum):
    SET = "Set"  # would create or replace the enforced policy of the same kind and name
    DELETE = "Delete"  # would remove it


class Labels(Mapping[str, str]):
    """An immutable, hashable label mapping."""

    __slots__ = ("_items", "_dict", "_hash")

    def __init__(self, labels: Mapping[str, str] | None = None):
        d = dict(labels or {})
        self._dict = d
        self._items = tuple(sorted(d.items()))
        self._hash = hash(self._items)

    def __getitem__(self, key: str) -> str:
        return self._dict[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __contains__(self, key: object) -> bool:
        return key in self._dict

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return self._dict.get(key, default)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Labels):
            return self._items == other._items
        if isinstance(other, Mapping):
            return self._dict == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"Labels({self._dict!r})"

    def with_(self, **changes: str | None) -> Labels:
        """A copy with keys set (or removed when the value is None)."""
        return self.updated(changes)

    def updated(self, changes: Mapping[str, str | None]) -> Labels:
        """A copy with keys set (or removed when the value is None)."""
        d = dict(self._dict)
        for k, v in changes.items():
            if v is None:
                d.pop(k, None)
            else:
                d[k] = v
        return Labels(d)


EMPTY_LABELS = Labels()


# --- rules ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortRange:
    """Inclusive port range; a single port has first == last."""

    first: int
    last: int

    def __post_init__(self) -> None:
        if not (0 <= self.first <= self.last <= 65535):
            raise ValueError(f"bad port range {self.first}:{self.last}")

    def contains(self, port: int) -> bool:
        return self.first <= port <= self.last

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}:{self.last}"


@dataclass(frozen=True)
class NamedPort:
    """A container port name, resolved per endpoint (with the rule's protocol)."""

    name: str

    def __str__(self) -> str:
        return self.name


PortMatch = Union[PortRange, NamedPort]


@dataclass(frozen=True)
class IcmpMatch:
    type: int
    code: int | None = None

    def matches(self, icmp_type: int | None, icmp_code: int | None) -> bool:
        if icmp_type != self.type:
            return False
        return self.code is None or icmp_code == self.code


@dataclass(frozen=True)
class EntityMatch:
    """One side (source or destination) of a rule. Empty / None fields match anything."""

    nets: tuple[IPNetwork, ...] = ()
    not_nets: tuple[IPNetwork, ...] = ()
    selector: Selector | None = None  # namespace / service-account scoping already folded in
    not_selector: Selector | None = None
    ports: tuple[PortMatch, ...] = ()
    not_ports: tuple[PortMatch, ...] = ()

    @property
    def is_any(self) -> bool:
        return self == EntityMatch()

    def selectors(self) -> tuple[Selector, ...]:
        return tuple(s for s in (self.selector, self.not_selector) if s is not None)


ANY_ENTITY = EntityMatch()


@dataclass(frozen=True)
class Rule:
    action: Action
    protocol: int | None = None
    not_protocol: int | None = None
    icmp: IcmpMatch | None = None
    not_icmp: IcmpMatch | None = None
    ip_version: int | None = None  # 4, 6 or None for both
    source: EntityMatch = ANY_ENTITY
    destination: EntityMatch = ANY_ENTITY

    def selectors(self) -> tuple[Selector, ...]:
        return self.source.selectors() + self.destination.selectors()


# --- policies ------------------------------------------------------------------------------------------


class PolicyKind(str, Enum):
    """Where a policy came from; staged variants keep the kind they would become."""

    CALICO_NETWORK_POLICY = "NetworkPolicy"
    CALICO_GLOBAL_NETWORK_POLICY = "GlobalNetworkPolicy"
    KUBERNETES_NETWORK_POLICY = "KubernetesNetworkPolicy"


@dataclass(frozen=True, order=True)
class PolicyKey:
    """Identity of a policy: kind, namespace (None for global) and name (as the user wrote it)."""

    kind: PolicyKind
    namespace: str | None
    name: str

    def __str__(self) -> str:
        prefix = {
            PolicyKind.CALICO_NETWORK_POLICY: "",
            PolicyKind.CALICO_GLOBAL_NETWORK_POLICY: "",
            PolicyKind.KUBERNETES_NETWORK_POLICY: "knp.default.",
        }[self.kind]
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{where}{prefix}{self.name}"


@dataclass(frozen=True)
class Policy:
    key: PolicyKey
    tier: str
    order: float | None  # None sorts last
    applies_to: Selector  # which pods it applies to (namespace scoping folded in)
    types: frozenset[Direction]
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()
    staged: StagedAction | None = None  # None: enforced
    source: str = field(default="", compare=False)  # "file#N" where it came from, for messages
    # Host endpoint options (GlobalNetworkPolicy only): see hostpath.py for where each one applies.
    do_not_track: bool = False  # untracked (raw table, notrack): stateless, both directions need rules
    pre_dnat: bool = False  # before Service DNAT, ingress only
    apply_on_forward: bool = False  # also covers traffic the host forwards (to its pods, or on)

    @property
    def name(self) -> str:
        return str(self.key)

    def rules(self, direction: Direction) -> tuple[Rule, ...]:
        return self.ingress if direction is Direction.INGRESS else self.egress

    def sort_key(self) -> tuple[bool, float, str]:
        """Calico's order: lower order first, no order last, ties broken by name."""
        return (self.order is None, self.order or 0.0, self.name)

    def selectors(self) -> tuple[Selector, ...]:
        out: list[Selector] = [self.applies_to]
        for rule in self.ingress + self.egress:
            out.extend(rule.selectors())
        return tuple(out)


@dataclass(frozen=True)
class Tier:
    name: str
    order: float | None = None  # None sorts last
    default_action: Action = Action.DENY  # Deny or Pass

    def sort_key(self) -> tuple[bool, float, str]:
        return (self.order is None, self.order or 0.0, self.name)


DEFAULT_TIER_OBJECT = Tier(DEFAULT_TIER, DEFAULT_TIER_ORDER, Action.DENY)


# --- endpoints and address groups ----------------------------------------------------------------------


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: Labels = field(default_factory=Labels)


@dataclass(frozen=True)
class ContainerPort:
    name: str | None
    port: int
    protocol: int = 6


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    labels: Labels = field(default_factory=Labels)
    ips: tuple[IPAddress, ...] = ()
    ports: tuple[ContainerPort, ...] = ()
    service_account: str = "default"
    node: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def ip(self) -> IPAddress | None:
        return self.ips[0] if self.ips else None

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    def named_port(self, name: str, protocol: int) -> int | None:
        for p in self.ports:
            if p.name == name and p.protocol == protocol:
                return p.port
        return None


@dataclass(frozen=True)
class NetworkSet:
    """Labelled CIDRs; namespace None means a GlobalNetworkSet."""

    namespace: str | None
    name: str
    labels: Labels = field(default_factory=Labels)
    nets: tuple[IPNetwork, ...] = ()

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.namespace, self.name)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else f"global/{self.name}"

    def contains(self, ip: IPAddress) -> bool:
        return any(ip in net for net in self.nets)


@dataclass(frozen=True)
class ExternalHost:
    """A non-pod address (a server outside the cluster). Only network sets can give it labels."""

    ip: IPAddress

    def __str__(self) -> str:
        return str(self.ip)


@dataclass(frozen=True)
class ServiceAccount:
    """A Kubernetes ServiceAccount: its labels reach the pods that run as it (`pcsa.<key>`), which is what
    `serviceAccountSelector` and `serviceAccounts.selector` match."""

    namespace: str
    name: str
    labels: Labels = field(default_factory=Labels)

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


ALL_INTERFACES = "*"
DEFAULT_ALLOW_PROFILE = "projectcalico-default-allow"  # Calico's built-in profile that allows everything


@dataclass(frozen=True)
class HostEndpoint:
    """A Calico HostEndpoint: one interface of a node (`interface_name`, or `*` for all of them, or None to
    find it by `expected_ips`), with labels policies select it by. A node is a lab host or an external
    server (a standalone host). `expected_ips` are the addresses rule selectors see for it."""

    name: str
    node: str
    interface_name: str | None = None
    expected_ips: tuple[IPAddress, ...] = ()
    labels: Labels = field(default_factory=Labels)
    profiles: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.name

    @property
    def default_allow(self) -> bool:
        """With Calico's default-allow profile, what no policy decides is allowed (otherwise denied)."""
        return DEFAULT_ALLOW_PROFILE in self.profiles

    def __str__(self) -> str:
        return f"hep {self.name} ({self.node}/{self.interface_name or 'by IP'})"


@dataclass(frozen=True)
class HostNode:
    """A node of the lab as a flow's end: a host (or an external server) itself, i.e. its own processes."""

    name: str
    ip: IPAddress
    external: bool = False

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class FailsafePort:
    """Traffic a host endpoint always lets through (Calico's failsafe rules): inbound matches the local
    port (the destination), outbound the remote one; `net` limits the remote address."""

    protocol: int
    port: int
    net: IPNetwork | None = None

    def __str__(self) -> str:
        return f"{protocol_name(self.protocol).lower()}:{self.port}" + (f" ({self.net})" if self.net else "")


def _failsafe(*specs: str) -> tuple[FailsafePort, ...]:
    return tuple(FailsafePort(protocol_number(p.split(":")[0]), int(p.split(":")[1])) for p in specs)


@dataclass(frozen=True)
class FelixConfig:
    """What `FelixConfiguration default` sets for the lab: failsafe ports (Calico's defaults: SSH, DHCP,
    BGP, etcd, Typha, the API server) and what happens to a pod's packets for its own host after its egress
    policy allowed them (Accept, as Calico's Kubernetes manifests set it; Drop; or Return to the host's own
    INPUT rules, which in the lab accept)."""

    failsafe_inbound: tuple[FailsafePort, ...] = _failsafe(
        "tcp:22", "udp:68", "tcp:179", "tcp:2379", "tcp:2380", "tcp:5473", "tcp:6443", "tcp:6666", "tcp:6667")
    failsafe_outbound: tuple[FailsafePort, ...] = _failsafe(
        "udp:53", "udp:67", "tcp:179", "tcp:2379", "tcp:2380", "tcp:5473", "tcp:6443", "tcp:6666", "tcp:6667")
    endpoint_to_host_action: str = "Accept"  # Accept, Drop or Return


DEFAULT_FELIX_CONFIG = FelixConfig()


def hostendpoint_labels(hep: HostEndpoint) -> Labels:
    """Selectors see a host endpoint's own labels only (no namespace: `global()` matches it)."""
    return hep.labels


def selector_labels(pod: Pod, namespace: Namespace | None, service_account: ServiceAccount | None = None) -> Labels:
    """The labels selectors see on a pod: its own, Calico's pseudo-labels, `pcns.` namespace labels and
    `pcsa.projectcalico.org/name` (the service account's name) and `pcsa.<key>` for each label of the
    pod's ServiceAccount object, when one is declared."""
    d: dict[str, str] = dict(pod.labels)
    if namespace is not None:
        for k, v in namespace.labels.items():
            d[NAMESPACE_LABEL_PREFIX + k] = v
    d[NAMESPACE_LABEL_PREFIX + NAME_LABEL] = pod.namespace
    if service_account is not None:
        for k, v in service_account.labels.items():
            d[SERVICE_ACCOUNT_LABEL_PREFIX + k] = v
    d[NAMESPACE_LABEL] = pod.namespace
    d[ORCHESTRATOR_LABEL] = "k8s"
    d[SERVICE_ACCOUNT_LABEL] = pod.service_account
    d[SERVICE_ACCOUNT_LABEL_PREFIX + NAME_LABEL] = pod.service_account
    return Labels(d)


def implicit_namespace(name: str) -> Namespace:
    """A namespace nobody declared: Kubernetes still labels it with its name."""
    return Namespace(name, Labels({K8S_NAMESPACE_NAME_LABEL: name}))


def netset_labels(netset: NetworkSet) -> Labels:
    if netset.namespace is None:
        return netset.labels
    return netset.labels.with_(**{NAMESPACE_LABEL: netset.namespace})
