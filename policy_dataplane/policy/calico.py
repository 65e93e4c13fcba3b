"""Calico projectcalico.org/v3 objects into the model: NetworkPolicy, GlobalNetworkPolicy, their Staged
variants, NetworkSet, GlobalNetworkSet and Tier.

Validation follows calicoctl's validator where it matters for the dataplane: actions, protocols (ports
only with TCP/UDP/SCTP/UDPLite, ICMP fields only with ICMP/ICMPv6), port ranges, CIDRs against
ipVersion, selector syntax, tier-prefixed policy names. Namespace and service-account scoping of rule
selectors is folded in the way Calico does it (`pcns.`/`pcsa.` prefixed labels, `global()`), so that the
compiler sees one selector per match. HostEndpoint and FelixConfiguration (failsafe ports, the action for
pods' traffic to their own host) are read here too, as are the host endpoint options of a
GlobalNetworkPolicy (doNotTrack, preDNAT, applyOnForward) with calicoctl's rules for combining them.
Features that need parts this lab does not model (Kubernetes service matches, HTTP matches) are rejected
with a message saying so.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from policy_dataplane.policy.model import (
    DEFAULT_ALLOW_PROFILE,
    DEFAULT_TIER,
    DEFAULT_TIER_ORDER,
    NAMESPACE_LABEL,
    NAMESPACE_LABEL_PREFIX,
    PORT_PROTOCOLS,
    PROTOCOLS,
    SERVICE_ACCOUNT_LABEL,
    SERVICE_ACCOUNT_LABEL_PREFIX,
    Action,
    Direction,
    EntityMatch,
    FailsafePort,
    FelixConfig,
    HostEndpoint,
    IcmpMatch,
    IPNetwork,
    NamedPort,
    NetworkSet,
    Policy,
    PolicyKey,
    PolicyKind,
    PortMatch,
    PortRange,
    Rule,
    StagedAction,
    Tier,
    protocol_number,
)
from policy_dataplane.policy.selectors import (
    ALL,
    All,
    And,
    Expr,
    Global,
    Has,
    Not,
    Or,
    Selector,
    and_,
    eq,
    in_,
    or_,
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
    check_labels,
    check_port_name,
    parse_cidr,
    parse_ip,
    parse_selector,
    validate_model,
)

_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")

# --- boundary models -----------------------------------------------------------------------------------


class IcmpDoc(Strict):
    type: int | None = None
    code: int | None = None


class ServiceAccountsDoc(Strict):
    names: list[str] | None = None
    selector: str | None = None


class EntityRuleDoc(Strict):
    nets: list[str] | None = None
    notNets: list[str] | None = None
    selector: str | None = None
    notSelector: str | None = None
    namespaceSelector: str | None = None
    serviceAccounts: ServiceAccountsDoc | None = None
    services: dict[str, Any] | None = None
    ports: list[int | str] | None = None
    notPorts: list[int | str] | None = None


class RuleDoc(Strict):
    action: str
    protocol: int | str | None = None
    notProtocol: int | str | None = None
    icmp: IcmpDoc | None = None
    notICMP: IcmpDoc | None = None
    ipVersion: int | None = None
    source: EntityRuleDoc = EntityRuleDoc()
    destination: EntityRuleDoc = EntityRuleDoc()
    http: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class PolicySpecDoc(Strict):
    tier: str | None = None
    order: float | None = None
    selector: str | None = None
    namespaceSelector: str | None = None  # GlobalNetworkPolicy only
    serviceAccountSelector: str | None = None
    types: list[Literal["Ingress", "Egress"]] | None = None
    ingress: list[RuleDoc] | None = None
    egress: list[RuleDoc] | None = None
    doNotTrack: bool | None = None
    preDNAT: bool | None = None
    applyOnForward: bool | None = None
    performanceHints: list[str] | None = None
    stagedAction: Literal["Set", "Delete"] | None = None


class PolicyDoc(Document):
    spec: PolicySpecDoc = PolicySpecDoc()


class NetworkSetSpecDoc(Strict):
    nets: list[str] | None = None
    allowedEgressDomains: list[str] | None = None


class NetworkSetDoc(Document):
    spec: NetworkSetSpecDoc = NetworkSetSpecDoc()


class TierSpecDoc(Strict):
    order: float | None = None
    defaultAction: Literal["Deny", "Pass"] | None = None


class TierDoc(Document):
    spec: TierSpecDoc = TierSpecDoc()


class HostEndpointSpecDoc(Strict):
    node: str | None = None
    interfaceName: str | None = None
    expectedIPs: list[str] | None = None
    profiles: list[str] | None = None
    ports: list[dict[str, Any]] | None = None


class HostEndpointDoc(Document):
    spec: HostEndpointSpecDoc = HostEndpointSpecDoc()


class ProtoPortDoc(Strict):
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    port: int
    net: str | None = None


class FelixConfigurationSpecDoc(Strict):
    failsafeInboundHostPorts: list[ProtoPortDoc] | None = None
    failsafeOutboundHostPorts: list[ProtoPortDoc] | None = None
    defaultEndpointToHostAction: Literal["Drop", "Accept", "Return"] | None = None


class FelixConfigurationDoc(Document):
    spec: FelixConfigurationSpecDoc = FelixConfigurationSpecDoc()



def _name(meta: Metadata, problems: Problems) -> str:
    if not meta.name:
        problems.append(("metadata.name", "is required"))
        return ""
    check_dns_subdomain(meta.name, "metadata.name", problems)
    return meta.name


# --- policies ------------------------------------------------------------------------------------------


def policy_from_doc(doc: dict[str, Any], *, global_: bool, staged: bool = False, source: str = "") -> Policy:
    """A (Staged)(Global)NetworkPolicy document into a Policy."""
    d: PolicyDoc = validate_model(PolicyDoc, doc)
    problems: Problems = []
    name = _name(d.metadata, problems)
    check_labels(d.metadata.labels, "metadata.labels", problems)
    spec = d.spec
    namespace: str | None = None
    if global_:
        if d.metadata.namespace:
            problems.append(("metadata.namespace", "a global policy has no namespace"))
    else:
        namespace = d.metadata.namespace or "default"
        check_dns_label(namespace, "metadata.namespace", problems)
        if spec.namespaceSelector is not None:
            problems.append(("spec.namespaceSelector", "only a GlobalNetworkPolicy has a namespaceSelector"))
    tier = spec.tier or DEFAULT_TIER
    check_dns_label(tier, "spec.tier", problems)
    if tier != DEFAULT_TIER and name and not name.startswith(f"{tier}."):
        problems.append(("metadata.name", f"a policy in tier {tier!r} must be named '{tier}.<name>'"))
    _check_host_options(spec, global_, problems)
    staged_action = None
    if staged:
        staged_action = StagedAction(spec.stagedAction or "Set")
    elif spec.stagedAction is not None:
        problems.append(("spec.stagedAction", "only staged policies have a stagedAction"))

    applies_to = _applies_to(spec, namespace, problems)
    ingress = tuple(_rule(r, f"spec.ingress[{i}]", namespace, problems) for i, r in enumerate(spec.ingress or []))
    egress = tuple(_rule(r, f"spec.egress[{i}]", namespace, problems) for i, r in enumerate(spec.egress or []))
    types = _types(spec, problems)
    if problems:
        raise Invalid(problems)
    kind = PolicyKind.CALICO_GLOBAL_NETWORK_POLICY if global_ else PolicyKind.CALICO_NETWORK_POLICY
    return Policy(
        key=PolicyKey(kind, namespace, name),
        tier=tier,
        order=spec.order,
        applies_to=applies_to,
        types=types,
        ingress=ingress if Direction.INGRESS in types else (),
        egress=egress if Direction.EGRESS in types else (),
        staged=staged_action,
        source=source,
        do_not_track=bool(spec.doNotTrack),
        pre_dnat=bool(spec.preDNAT),
        apply_on_forward=bool(spec.applyOnForward),
    )


def _check_host_options(spec: PolicySpecDoc, global_: bool, problems: Problems) -> None:
    """calicoctl's rules for the host endpoint options."""
    flags = [f for f in ("doNotTrack", "preDNAT", "applyOnForward") if getattr(spec, f) is not None]
    if not global_:
        for flag in flags:
            problems.append((f"spec.{flag}", "only a GlobalNetworkPolicy has host endpoint options"))
        return
    if spec.doNotTrack and spec.preDNAT:
        problems.append(("spec.preDNAT", "a policy cannot be both doNotTrack and preDNAT"))
    for flag in ("doNotTrack", "preDNAT"):
        if getattr(spec, flag) and not spec.applyOnForward:
            problems.append(("spec.applyOnForward", f"must be true when {flag} is (it applies to forwarded traffic)"))
    if spec.preDNAT:
        if spec.egress:
            problems.append(("spec.egress", "a preDNAT policy has ingress rules only"))
        if spec.types and "Egress" in spec.types:
            problems.append(("spec.types", "a preDNAT policy has type Ingress only"))


def _types(spec: PolicySpecDoc, problems: Problems) -> frozenset[Direction]:
    if spec.types and len(set(spec.types)) != len(spec.types):
        problems.append(("spec.types", f"{spec.types} lists a type twice"))
    if spec.types:
        return frozenset(Direction(t) for t in spec.types)
    # Calico's defaulting: egress rules only -> Egress; both -> both; otherwise Ingress.
    types = set()
    if spec.ingress or not spec.egress:
        types.add(Direction.INGRESS)
    if spec.egress:
        types.add(Direction.EGRESS)
    return frozenset(types)


def _uses_global(expr: Expr) -> bool:
    if isinstance(expr, Global):
        return True
    if isinstance(expr, Not):
        return _uses_global(expr.operand)
    if isinstance(expr, (And, Or)):
        return any(_uses_global(o) for o in expr.operands)
    return False


def _selector(text: str, path: str, problems: Problems) -> Selector | None:
    """A selector where `global()` has no meaning (everywhere but a rule's namespaceSelector, as in Calico)."""
    sel = parse_selector(text, path, problems)
    if sel is not None and _uses_global(sel.expr):
        problems.append((path, "global() is only allowed in a rule's namespaceSelector"))
        return None
    return sel


def _applies_to(spec: PolicySpecDoc, namespace: str | None, problems: Problems) -> Selector:
    parts: list[Selector] = []
    if namespace is not None:
        parts.append(eq(NAMESPACE_LABEL, namespace))
    if spec.selector:
        sel = _selector(spec.selector, "spec.selector", problems)
        parts.append(sel or ALL)
    if spec.namespaceSelector:
        ns = _selector(spec.namespaceSelector, "spec.namespaceSelector", problems)
        if ns is not None:
            parts.append(_namespace_scope(ns))
    if spec.serviceAccountSelector:
        sa = _selector(spec.serviceAccountSelector, "spec.serviceAccountSelector", problems)
        if sa is not None:
            parts.append(prefixed(sa, SERVICE_ACCOUNT_LABEL_PREFIX))
    return Selector(and_(*(p.expr for p in parts)))


def _namespace_scope(ns: Selector) -> Selector:
    """A namespaceSelector over namespace labels, as a selector over endpoint labels (Calico's way): keys
    get the `pcns.` prefix, `all()` means "any namespaced object" and `global()` "no namespace"."""
    return Selector(_scope_terms(prefixed(ns, NAMESPACE_LABEL_PREFIX).expr))


def _scope_terms(expr: Expr) -> Expr:
    if isinstance(expr, All):
        return Has(NAMESPACE_LABEL)
    if isinstance(expr, Not):
        return Not(_scope_terms(expr.operand))
    if isinstance(expr, And):
        return and_(*(_scope_terms(o) for o in expr.operands))
    if isinstance(expr, Or):
        return or_(*(_scope_terms(o) for o in expr.operands))
    return expr


def _rule(doc: RuleDoc, path: str, namespace: str | None, problems: Problems) -> Rule:
    try:
        action = Action(doc.action)
    except ValueError:
        problems.append((f"{path}.action", f"{doc.action!r} must be one of Allow, Deny, Log, Pass"))
        action = Action.DENY
    protocol = _protocol(doc.protocol, f"{path}.protocol", problems)
    not_protocol = _protocol(doc.notProtocol, f"{path}.notProtocol", problems)
    if doc.ipVersion is not None and doc.ipVersion not in (4, 6):
        problems.append((f"{path}.ipVersion", "must be 4 or 6"))
    icmp = _icmp(doc.icmp, "icmp", protocol, doc.ipVersion, path, problems)
    not_icmp = _icmp(doc.notICMP, "notICMP", protocol, doc.ipVersion, path, problems)
    if doc.http is not None:
        problems.append((f"{path}.http", "HTTP matches need an application-layer proxy, which netpol-lab does not run"))
    source = _entity(doc.source, f"{path}.source", namespace, protocol, doc.ipVersion, problems)
    destination = _entity(doc.destination, f"{path}.destination", namespace, protocol, doc.ipVersion, problems)
    versions = {n.version for side in (source, destination) for n in (*side.nets, *side.not_nets)}
    if len(versions) > 1:
        problems.append((path, "mixes IPv4 and IPv6 CIDRs in one rule (Calico refuses it: split the rule)"))
    return Rule(action, protocol, not_protocol, icmp, not_icmp, doc.ipVersion, source, destination)


def _protocol(value: int | str | None, path: str, problems: Problems) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and not value.isdigit() and value not in PROTOCOLS:
        problems.append((path, f"{value!r} must be one of {', '.join(PROTOCOLS)} or a number 1-255"))
        return None
    try:
        return protocol_number(int(value) if isinstance(value, str) and value.isdigit() else value)
    except ValueError as e:
        problems.append((path, str(e)))
        return None


def _icmp(
    doc: IcmpDoc | None, name: str, protocol: int | None, ip_version: int | None, path: str, problems: Problems
) -> IcmpMatch | None:
    if doc is None:
        return None
    where = f"{path}.{name}"
    if protocol not in (PROTOCOLS["ICMP"], PROTOCOLS["ICMPv6"]):
        problems.append((where, "ICMP fields need protocol ICMP or ICMPv6"))
    elif ip_version is not None and (protocol == PROTOCOLS["ICMP"]) != (ip_version == 4):
        problems.append((where, f"protocol does not fit ipVersion {ip_version}"))
    if doc.type is None:
        if doc.code is not None:
            problems.append((f"{where}.code", "needs a type"))
        return None
    if not 0 <= doc.type <= 254:
        problems.append((f"{where}.type", "must be between 0 and 254"))
    if doc.code is not None and not 0 <= doc.code <= 255:
        problems.append((f"{where}.code", "must be between 0 and 255"))
    return IcmpMatch(doc.type, doc.code)


def _entity(
    doc: EntityRuleDoc,
    path: str,
    namespace: str | None,
    protocol: int | None,
    ip_version: int | None,
    problems: Problems,
) -> EntityMatch:
    if doc.services is not None:
        problems.append((f"{path}.services", "Kubernetes service matches are not supported by netpol-lab"))
    nets = _nets(doc.nets, f"{path}.nets", ip_version, problems)
    not_nets = _nets(doc.notNets, f"{path}.notNets", ip_version, problems)
    for i, net in enumerate(not_nets):
        if net.prefixlen == 0:
            problems.append((f"{path}.notNets[{i}]", f"{net} excludes every address: the rule could never match"))
    ports = _ports(doc.ports, f"{path}.ports", problems)
    not_ports = _ports(doc.notPorts, f"{path}.notPorts", problems)
    if (ports or not_ports) and protocol not in PORT_PROTOCOLS:
        problems.append((path, "ports need protocol TCP, UDP, SCTP or UDPLite"))

    # Calico's folding: as soon as any selector field is used (notSelector included), the selector is
    # limited to the namespaceSelector's namespaces, or in a namespaced policy to the policy's own
    # namespace, and ANDed with serviceAccounts; notSelector itself stays as written.
    parts: list[Selector] = []
    scoped = bool(doc.selector or doc.namespaceSelector or doc.serviceAccounts or doc.notSelector)
    if doc.namespaceSelector:
        ns = parse_selector(doc.namespaceSelector, f"{path}.namespaceSelector", problems)
        if ns is not None:
            parts.append(_namespace_scope(ns))
    elif namespace is not None and scoped:
        parts.append(eq(NAMESPACE_LABEL, namespace))
    if doc.selector:
        sel = _selector(doc.selector, f"{path}.selector", problems)
        if sel is not None:
            parts.append(sel)
    if doc.serviceAccounts is not None:
        sa = doc.serviceAccounts
        for i, n in enumerate(sa.names or []):
            check_dns_subdomain(n, f"{path}.serviceAccounts.names[{i}]", problems)
        if sa.names:
            parts.append(in_(SERVICE_ACCOUNT_LABEL, set(sa.names)))
        if sa.selector:
            sas = _selector(sa.selector, f"{path}.serviceAccounts.selector", problems)
            if sas is not None:
                parts.append(prefixed(sas, SERVICE_ACCOUNT_LABEL_PREFIX))
    selector = Selector(and_(*(p.expr for p in parts))) if scoped and parts else None
    not_selector = _selector(doc.notSelector, f"{path}.notSelector", problems) if doc.notSelector else None
    return EntityMatch(nets, not_nets, selector, not_selector, ports, not_ports)


def _nets(texts: list[str] | None, path: str, ip_version: int | None, problems: Problems) -> tuple[IPNetwork, ...]:
    nets: list[IPNetwork] = []
    for i, text in enumerate(texts or []):
        net = parse_cidr(text, f"{path}[{i}]", problems)
        if net is None:
            continue
        if ip_version is not None and net.version != ip_version:
            problems.append((f"{path}[{i}]", f"{text} is not an IPv{ip_version} network (ipVersion)"))
        nets.append(net)
    return tuple(nets)


def _ports(values: list[int | str] | None, path: str, problems: Problems) -> tuple[PortMatch, ...]:
    out: list[PortMatch] = []
    for i, value in enumerate(values or []):
        where = f"{path}[{i}]"
        text = str(value)
        if isinstance(value, int) or text.isdigit():
            first = last = int(text)
        elif ":" in text:
            a, _, b = text.partition(":")
            if not (a.isdigit() and b.isdigit()):
                problems.append((where, f"{text!r} must be a port, a range 'first:last' or a port name"))
                continue
            first, last = int(a), int(b)
        else:
            check_port_name(text, where, problems)
            out.append(NamedPort(text))
            continue
        if not (0 <= first <= last <= 65535):
            problems.append((where, f"{text!r}: ports are 0-65535 and a range's first port is not above its last"))
            continue
        out.append(PortRange(first, last))
    return tuple(out)


# --- network sets and tiers ----------------------------------------------------------------------------


def network_set_from_doc(doc: dict[str, Any], *, global_: bool) -> NetworkSet:
    d: NetworkSetDoc = validate_model(NetworkSetDoc, doc)
    problems: Problems = []
    name = _name(d.metadata, problems)
    labels = check_labels(d.metadata.labels, "metadata.labels", problems)
    namespace: str | None = None
    if global_:
        if d.metadata.namespace:
            problems.append(("metadata.namespace", "a GlobalNetworkSet has no namespace"))
    else:
        namespace = d.metadata.namespace or "default"
        check_dns_label(namespace, "metadata.namespace", problems)
    if d.spec.allowedEgressDomains:
        problems.append(("spec.allowedEgressDomains", "domain-based sets are not supported by netpol-lab"))
    nets = _nets(d.spec.nets, "spec.nets", None, problems)
    if problems:
        raise Invalid(problems)
    return NetworkSet(namespace, name, labels, nets)


def tier_from_doc(doc: dict[str, Any]) -> Tier:
    d: TierDoc = validate_model(TierDoc, doc)
    problems: Problems = []
    name = _name(d.metadata, problems)
    if name:
        check_dns_label(name, "metadata.name", problems)
    if d.metadata.namespace:
        problems.append(("metadata.namespace", "a Tier has no namespace"))
    if name == DEFAULT_TIER and d.spec.order is not None and d.spec.order != DEFAULT_TIER_ORDER:
        problems.append(("spec.order", f"the default tier's order is fixed at {DEFAULT_TIER_ORDER:g}"))
    if problems:
        raise Invalid(problems)
    order = d.spec.order
    if order is None and name == DEFAULT_TIER:
        order = DEFAULT_TIER_ORDER
    return Tier(name, order, Action(d.spec.defaultAction or "Deny"))


# --- host endpoints and Felix configuration ------------------------------------------------------------


def host_endpoint_from_doc(doc: dict[str, Any]) -> HostEndpoint:
    d: HostEndpointDoc = validate_model(HostEndpointDoc, doc)
    problems: Problems = []
    name = _name(d.metadata, problems)
    labels = check_labels(d.metadata.labels, "metadata.labels", problems)
    if d.metadata.namespace:
        problems.append(("metadata.namespace", "a HostEndpoint has no namespace"))
    spec = d.spec
    if not spec.node:
        problems.append(("spec.node", "is required (the host or external server the interface belongs to)"))
    else:
        check_dns_subdomain(spec.node, "spec.node", problems)
    interface = spec.interfaceName or None
    if interface is not None and interface != "*" and not _IFNAME.match(interface):
        problems.append(("spec.interfaceName", f"{interface!r} is not an interface name (1-15 letters, digits, _ . -) "
                                               "nor '*'"))
    ips = []
    for i, text in enumerate(spec.expectedIPs or []):
        ip = parse_ip(text, f"spec.expectedIPs[{i}]", problems)
        if ip is not None:
            ips.append(ip)
    if interface is None and not ips:
        problems.append(("spec.interfaceName", "give an interfaceName or at least one of expectedIPs"))
    for i, profile in enumerate(spec.profiles or []):
        if profile != DEFAULT_ALLOW_PROFILE:
            problems.append((f"spec.profiles[{i}]", f"{profile!r}: netpol-lab knows the built-in profile "
                                                    f"{DEFAULT_ALLOW_PROFILE!r} only"))
    if spec.ports:
        problems.append(("spec.ports", "named host ports are not supported by netpol-lab"))
    if problems:
        raise Invalid(problems)
    return HostEndpoint(name, spec.node or "", interface, tuple(ips), labels, tuple(spec.profiles or ()))


def felix_configuration_from_doc(doc: dict[str, Any]) -> FelixConfig:
    d: FelixConfigurationDoc = validate_model(FelixConfigurationDoc, doc)
    problems: Problems = []
    name = _name(d.metadata, problems)
    if name and name != "default":
        problems.append(("metadata.name", "netpol-lab reads the cluster-wide FelixConfiguration 'default' only"))
    if d.metadata.namespace:
        problems.append(("metadata.namespace", "a FelixConfiguration has no namespace"))
    spec, defaults = d.spec, FelixConfig()
    inbound = _failsafe(spec.failsafeInboundHostPorts, "spec.failsafeInboundHostPorts", problems)
    outbound = _failsafe(spec.failsafeOutboundHostPorts, "spec.failsafeOutboundHostPorts", problems)
    if problems:
        raise Invalid(problems)
    return FelixConfig(
        defaults.failsafe_inbound if inbound is None else inbound,
        defaults.failsafe_outbound if outbound is None else outbound,
        spec.defaultEndpointToHostAction or defaults.endpoint_to_host_action,
    )


def _failsafe(docs: list[ProtoPortDoc] | None, path: str, problems: Problems) -> tuple[FailsafePort, ...] | None:
    if docs is None:
        return None
    out = []
    for i, p in enumerate(docs):
        if not 1 <= p.port <= 65535:
            problems.append((f"{path}[{i}].port", "must be between 1 and 65535"))
            continue
        net = parse_cidr(p.net, f"{path}[{i}].net", problems) if p.net else None
        out.append(FailsafePort(protocol_number(p.protocol), p.port, net))
    return tuple(out)


__all__ = ["policy_from_doc", "network_set_from_doc", "tier_from_doc", "host_endpoint_from_doc",
           "felix_configuration_from_doc"]
