"""Kubernetes objects into the model: v1 Namespace and Pod, networking.k8s.io/v1 NetworkPolicy.

Validation follows the API server (ValidateNetworkPolicy, ValidateLabelSelector, pod port checks) and so
does defaulting (policyTypes, port protocol TCP). A NetworkPolicy becomes a Calico-style policy the way
Calico converts it: tier `default`, order 1000, name `knp.default.<name>`, one Allow rule per peer and
protocol, every pod selector restricted to Kubernetes pods (`projectcalico.org/orchestrator == "k8s"`)
and scoped to the policy's namespace unless a namespaceSelector says otherwise.
"""

from __future__ import annotations

import ipaddress
import json
from collections import OrderedDict
from dataclasses import replace
from typing import Any, Literal

from pydantic import Field

from policy_dataplane.policy.model import (
    DEFAULT_TIER,
    K8S_NAMESPACE_NAME_LABEL,
    K8S_POLICY_ORDER,
    NAMESPACE_LABEL,
    NAMESPACE_LABEL_PREFIX,
    ORCHESTRATOR_LABEL,
    Action,
    ContainerPort,
    Direction,
    EntityMatch,
    IPAddress,
    NamedPort,
    Namespace,
    Pod,
    Policy,
    PolicyKey,
    PolicyKind,
    PortMatch,
    PortRange,
    Rule,
    ServiceAccount,
    StagedAction,
    protocol_number,
)
from policy_dataplane.policy.selectors import (
    ALL,
    Eq,
    Expr,
    Has,
    In,
    Not,
    NotIn,
    Selector,
    and_,
    eq,
    prefixed,
)
from policy_dataplane.policy.validation import (
    Document,
    Invalid,
    Metadata,
    Problems,
    Strict,
    check_dns_label,
    check_dns_subdomain,
    check_label_key,
    check_label_value,
    check_labels,
    check_port_name,
    parse_cidr,
    validate_model,
)

IP_ADDRS_ANNOTATION = "cni.projectcalico.org/ipAddrs"
K8S_SELECTOR = eq(ORCHESTRATOR_LABEL, "k8s")


# --- boundary models (field names as in the API) -------------------------------------------------------


class LabelSelectorRequirement(Strict):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] | None = None


class LabelSelector(Strict):
    matchLabels: dict[str, str] | None = None
    matchExpressions: list[LabelSelectorRequirement] | None = None


class IPBlock(Strict):
    cidr: str
    except_: list[str] | None = Field(default=None, alias="except")


class Peer(Strict):
    podSelector: LabelSelector | None = None
    namespaceSelector: LabelSelector | None = None
    ipBlock: IPBlock | None = None


class PolicyPort(Strict):
    protocol: Literal["TCP", "UDP", "SCTP"] | None = None
    port: int | str | None = None
    endPort: int | None = None


class IngressRule(Strict):
    from_: list[Peer] | None = Field(default=None, alias="from")
    ports: list[PolicyPort] | None = None


class EgressRule(Strict):
    to: list[Peer] | None = None
    ports: list[PolicyPort] | None = None


class NetworkPolicySpec(Strict):
    podSelector: LabelSelector | None = None
    policyTypes: list[Literal["Ingress", "Egress"]] | None = None
    ingress: list[IngressRule] | None = None
    egress: list[EgressRule] | None = None
    stagedAction: Literal["Set", "Delete"] | None = None  # StagedKubernetesNetworkPolicy only


class NetworkPolicyDoc(Document):
    spec: NetworkPolicySpec = NetworkPolicySpec()


class NamespaceDoc(Document):
    spec: dict[str, Any] | None = None
    status: dict[str, Any] | None = None


class ServiceAccountDoc(Document):
    secrets: list[dict[str, Any]] | None = None
    imagePullSecrets: list[dict[str, Any]] | None = None
    automountServiceAccountToken: bool | None = None


class ContainerPortDoc(Strict):
    containerPort: int
    name: str | None = None
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    hostPort: int | None = None
    hostIP: str | None = None


class ContainerDoc(Strict):
    """The container fields we read; the rest of a container spec is accepted as is."""

    model_config = Strict.model_config | {"extra": "allow"}
    name: str
    ports: list[ContainerPortDoc] | None = None


class PodSpecDoc(Strict):
    model_config = Strict.model_config | {"extra": "allow"}
    containers: list[ContainerDoc] = Field(default_factory=list)
    serviceAccountName: str | None = None
    nodeName: str | None = None


class PodIPDoc(Strict):
    ip: str


class PodStatusDoc(Strict):
    model_config = Strict.model_config | {"extra": "allow"}
    podIP: str | None = None
    podIPs: list[PodIPDoc] | None = None


class PodDoc(Document):
    spec: PodSpecDoc = PodSpecDoc()
    status: PodStatusDoc | None = None



def _name_and_namespace(meta: Metadata, problems: Problems, *, namespaced: bool) -> tuple[str, str]:
    name = meta.name or ""
    if not name:
        problems.append(("metadata.name", "is required"))
    namespace = meta.namespace or "default"
    if namespaced:
        check_dns_label(namespace, "metadata.namespace", problems)
    return name, namespace


# --- label selectors -----------------------------------------------------------------------------------


def label_selector(sel: LabelSelector | None, path: str, problems: Problems) -> Selector:
    """matchLabels AND matchExpressions; empty or missing selects everything."""
    if sel is None:
        return ALL
    parts: list[Expr] = []
    for key, value in (sel.matchLabels or {}).items():
        check_label_key(key, f"{path}.matchLabels.{key}", problems)
        check_label_value(value, f"{path}.matchLabels.{key}", problems)
        parts.append(Eq(key, value))
    for i, req in enumerate(sel.matchExpressions or []):
        where = f"{path}.matchExpressions[{i}]"
        check_label_key(req.key, f"{where}.key", problems)
        values = req.values or []
        if req.operator in ("In", "NotIn"):
            if not values:
                problems.append((f"{where}.values", f"must be specified when operator is {req.operator}"))
            for j, v in enumerate(values):
                check_label_value(v, f"{where}.values[{j}]", problems)
            cls = In if req.operator == "In" else NotIn
            parts.append(cls(req.key, frozenset(values)))
        else:
            if values:
                problems.append((f"{where}.values", f"may not be specified when operator is {req.operator}"))
            parts.append(Has(req.key) if req.operator == "Exists" else Not(Has(req.key)))
    return Selector(and_(*parts))


# --- Namespace and Pod ---------------------------------------------------------------------------------


def namespace_from_doc(doc: dict[str, Any]) -> Namespace:
    d: NamespaceDoc = validate_model(NamespaceDoc, doc)
    problems: Problems = []
    name = d.metadata.name or ""
    if not name:
        problems.append(("metadata.name", "is required"))
    else:
        check_dns_label(name, "metadata.name", problems)
    if d.metadata.namespace:
        problems.append(("metadata.namespace", "a Namespace is not namespaced"))
    labels = check_labels(d.metadata.labels, "metadata.labels", problems)
    if problems:
        raise Invalid(problems)
    # Kubernetes sets this label on every namespace (and keeps it equal to the name).
    return Namespace(name, labels.with_(**{K8S_NAMESPACE_NAME_LABEL: name}))


def service_account_from_doc(doc: dict[str, Any]) -> ServiceAccount:
    d: ServiceAccountDoc = validate_model(ServiceAccountDoc, doc)
    problems: Problems = []
    name, namespace = _name_and_namespace(d.metadata, problems, namespaced=True)
    if name:
        check_dns_subdomain(name, "metadata.name", problems)
    labels = check_labels(d.metadata.labels, "metadata.labels", problems)
    if problems:
        raise Invalid(problems)
    return ServiceAccount(namespace, name, labels)


def pod_from_doc(doc: dict[str, Any]) -> Pod:
    d: PodDoc = validate_model(PodDoc, doc)
    problems: Problems = []
    name, namespace = _name_and_namespace(d.metadata, problems, namespaced=True)
    if name:
        check_dns_subdomain(name, "metadata.name", problems)
    labels = check_labels(d.metadata.labels, "metadata.labels", problems)
    ports: list[ContainerPort] = []
    if not d.spec.containers:
        problems.append(("spec.containers", "a pod needs at least one container"))
    for ci, container in enumerate(d.spec.containers):
        seen: set[str] = set()
        for pi, port in enumerate(container.ports or []):
            where = f"spec.containers[{ci}].ports[{pi}]"
            if not 1 <= port.containerPort <= 65535:
                problems.append((f"{where}.containerPort", "must be between 1 and 65535"))
            if port.name is not None:
                check_port_name(port.name, f"{where}.name", problems)
                if port.name in seen:
                    problems.append((f"{where}.name", f"duplicate port name {port.name!r}"))
                seen.add(port.name)
            ports.append(ContainerPort(port.name, port.containerPort, protocol_number(port.protocol)))
    sa = d.spec.serviceAccountName or "default"
    check_dns_subdomain(sa, "spec.serviceAccountName", problems)
    ips = _pod_ips(d, problems)
    if problems:
        raise Invalid(problems)
    return Pod(namespace, name, labels, ips, tuple(ports), sa, d.spec.nodeName)


def _pod_ips(d: PodDoc, problems: Problems) -> tuple[IPAddress, ...]:
    texts: list[tuple[str, str]] = []
    annotation = (d.metadata.annotations or {}).get(IP_ADDRS_ANNOTATION)
    where = f"metadata.annotations.{IP_ADDRS_ANNOTATION}"
    if annotation is not None:
        try:
            values = json.loads(annotation)
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise ValueError
        except ValueError:
            problems.append((where, 'must be a JSON list of addresses, e.g. ["10.0.0.5"]'))
            values = []
        texts += [(where, v) for v in values]
    if d.status is not None:
        if d.status.podIP:
            texts.append(("status.podIP", d.status.podIP))
        texts += [(f"status.podIPs[{i}].ip", p.ip) for i, p in enumerate(d.status.podIPs or [])]
    ips: list[IPAddress] = []
    for path, text in texts:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            problems.append((path, f"{text!r} is not an IP address"))
            continue
        if ip not in ips:
            ips.append(ip)
    return tuple(ips)


# --- NetworkPolicy -------------------------------------------------------------------------------------


def network_policy_from_doc(doc: dict[str, Any], *, staged: bool = False, source: str = "") -> Policy:
    d: NetworkPolicyDoc = validate_model(NetworkPolicyDoc, doc)
    problems: Problems = []
    name, namespace = _name_and_namespace(d.metadata, problems, namespaced=True)
    if name:
        check_dns_subdomain(name, "metadata.name", problems)
    check_labels(d.metadata.labels, "metadata.labels", problems)
    spec = d.spec
    staged_action = None
    if staged:
        staged_action = StagedAction(spec.stagedAction or "Set")
    elif spec.stagedAction is not None:
        problems.append(("spec.stagedAction", "only a StagedKubernetesNetworkPolicy has a stagedAction"))

    pod_selector = label_selector(spec.podSelector, "spec.podSelector", problems)
    types = _policy_types(spec, problems)
    in_namespace = eq(NAMESPACE_LABEL, namespace)
    ingress: list[Rule] = []
    egress: list[Rule] = []
    for i, irule in enumerate(spec.ingress or []):
        ingress += _rules(irule.from_, irule.ports, f"spec.ingress[{i}]", "from", namespace, Direction.INGRESS, problems)
    for i, erule in enumerate(spec.egress or []):
        egress += _rules(erule.to, erule.ports, f"spec.egress[{i}]", "to", namespace, Direction.EGRESS, problems)
    if problems:
        raise Invalid(problems)
    return Policy(
        key=PolicyKey(PolicyKind.KUBERNETES_NETWORK_POLICY, namespace, name),
        tier=DEFAULT_TIER,
        order=K8S_POLICY_ORDER,
        applies_to=in_namespace.and_(K8S_SELECTOR, pod_selector),
        types=types,
        # Rules of a direction the policy does not have are ignored, as the API says.
        ingress=tuple(ingress) if Direction.INGRESS in types else (),
        egress=tuple(egress) if Direction.EGRESS in types else (),
        staged=staged_action,
        source=source,
    )


def _policy_types(spec: NetworkPolicySpec, problems: Problems) -> frozenset[Direction]:
    if spec.policyTypes:
        if len(spec.policyTypes) > 2:
            problems.append(("spec.policyTypes", "may not specify more than two policyTypes"))
        return frozenset(Direction(t) for t in spec.policyTypes)
    # API defaulting: Ingress always, Egress only when there is at least one egress rule.
    return frozenset({Direction.INGRESS} | ({Direction.EGRESS} if spec.egress else set()))


def _rules(
    peers: list[Peer] | None,
    ports: list[PolicyPort] | None,
    path: str,
    peer_field: str,
    namespace: str,
    direction: Direction,
    problems: Problems,
) -> list[Rule]:
    by_protocol = _ports_by_protocol(ports, f"{path}.ports", problems)
    entities = [_peer(p, f"{path}.{peer_field}[{i}]", namespace, problems) for i, p in enumerate(peers or [])]
    if not peers:
        entities = [EntityMatch()]  # missing or empty from/to: any peer
    rules: list[Rule] = []
    for peer in entities:
        for protocol, port_matches in by_protocol.items():
            local = EntityMatch(ports=port_matches)
            if direction is Direction.INGRESS:
                # The ports are the destination's (the local pod); the peer is the source.
                rules.append(Rule(Action.ALLOW, protocol=protocol, source=peer, destination=local))
            else:
                # The peer is the destination and the ports are its own (named ports resolve on it).
                rules.append(Rule(Action.ALLOW, protocol=protocol, destination=replace(peer, ports=port_matches)))
    return rules


def _ports_by_protocol(
    ports: list[PolicyPort] | None, path: str, problems: Problems
) -> OrderedDict[int | None, tuple[PortMatch, ...]]:
    """Group ports by protocol (a Calico rule has one protocol). No ports: any protocol, any port."""
    groups: OrderedDict[int | None, list[PortMatch] | None] = OrderedDict()
    if not ports:
        return OrderedDict({None: ()})
    for i, p in enumerate(ports):
        where = f"{path}[{i}]"
        protocol = protocol_number(p.protocol or "TCP")
        match: PortMatch | None = None
        if p.port is None:
            if p.endPort is not None:
                problems.append((f"{where}.endPort", "may not be specified when port is not specified"))
        elif isinstance(p.port, int):
            if not 1 <= p.port <= 65535:
                problems.append((f"{where}.port", "must be between 1 and 65535"))
            elif p.endPort is not None:
                if not 1 <= p.endPort <= 65535:
                    problems.append((f"{where}.endPort", "must be between 1 and 65535"))
                elif p.endPort < p.port:
                    problems.append((f"{where}.endPort", "must be greater than or equal to port"))
                else:
                    match = PortRange(p.port, p.endPort)
            else:
                match = PortRange(p.port, p.port)
        else:
            if p.port.isdigit():
                problems.append((f"{where}.port", "a numeric port must be written as a number, not a string"))
            else:
                check_port_name(p.port, f"{where}.port", problems)
            if p.endPort is not None:
                problems.append((f"{where}.endPort", "may not be specified when port is non-numeric"))
            match = NamedPort(p.port)
        current = groups.get(protocol, [])
        if p.port is None or current is None:
            groups[protocol] = None  # a protocol without port: every port of it
        elif match is not None:
            current.append(match)
            groups[protocol] = current
    return OrderedDict((proto, tuple(ms) if ms else ()) for proto, ms in groups.items())


def _peer(peer: Peer, path: str, namespace: str, problems: Problems) -> EntityMatch:
    selectors = peer.podSelector is not None or peer.namespaceSelector is not None
    if peer.ipBlock is not None:
        if selectors:
            problems.append((path, "may not specify more than 1 peer type (ipBlock with a selector)"))
        return _ip_block(peer.ipBlock, f"{path}.ipBlock", problems)
    if not selectors:
        problems.append((path, "must specify a peer (podSelector, namespaceSelector or ipBlock)"))
        return EntityMatch()
    pods = label_selector(peer.podSelector, f"{path}.podSelector", problems)
    if peer.namespaceSelector is None:
        scope = eq(NAMESPACE_LABEL, namespace)  # podSelector alone: pods of the policy's namespace
    else:
        ns = label_selector(peer.namespaceSelector, f"{path}.namespaceSelector", problems)
        scope = prefixed(ns, NAMESPACE_LABEL_PREFIX).and_(Selector(Has(NAMESPACE_LABEL)))
    return EntityMatch(selector=K8S_SELECTOR.and_(scope, pods))


def _ip_block(block: IPBlock, path: str, problems: Problems) -> EntityMatch:
    cidr = parse_cidr(block.cidr, f"{path}.cidr", problems)
    excepts = []
    for i, text in enumerate(block.except_ or []):
        ex = parse_cidr(text, f"{path}.except[{i}]", problems)
        if ex is None or cidr is None:
            continue
        if ex.version != cidr.version or not ex.subnet_of(cidr) or ex.prefixlen <= cidr.prefixlen:  # type: ignore[arg-type]
            problems.append((f"{path}.except[{i}]", f"{text} must be a strict subset of cidr {block.cidr}"))
            continue
        excepts.append(ex)
    return EntityMatch(nets=(cidr,) if cidr else (), not_nets=tuple(excepts))


__all__ = [
    "IP_ADDRS_ANNOTATION",
    "label_selector",
    "namespace_from_doc",
    "pod_from_doc",
    "service_account_from_doc",
    "network_policy_from_doc",
    "LabelSelector",
]
