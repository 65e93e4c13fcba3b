"""Service (v1) and ExternalService (egress.monzo.com/v1) documents into validated, frozen objects.

Every problem of a document is collected as (field path, message), like the policy converters do, so an
apply reports them all at once and creates nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any, Literal

from pydantic import Field

from policy_dataplane.policy.validation import (
    Document,
    Invalid,
    Problems,
    Strict,
    check_dns_label,
    check_dns_subdomain,
    check_labels,
    check_port_name,
    validate_model,
)

EGRESS_API = "egress.monzo.com/v1"
SERVICE_KIND = "Service"
EXTERNAL_SERVICE_KIND = "ExternalService"


@dataclass(frozen=True)
class ServicePort:
    name: str | None
    protocol: str  # "TCP" | "UDP"
    port: int
    target: int | str  # a number, or a container port's name


@dataclass(frozen=True)
class Service:
    namespace: str
    name: str
    selector: tuple[tuple[str, str], ...]  # sorted (key, value); empty: no endpoints are managed
    ports: tuple[ServicePort, ...]
    cluster_ip: IPv4Address | None  # None until the lab allocates one

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def port(self, number: int, protocol: str) -> ServicePort | None:
        return next((p for p in self.ports if p.port == number and p.protocol == protocol.upper()), None)


@dataclass(frozen=True)
class ExternalService:
    name: str
    dns_name: str
    hijack_dns: bool
    ports: tuple[tuple[int, str], ...]  # (port, protocol)


class ServicePortDoc(Strict):
    name: str | None = None
    protocol: Literal["TCP", "UDP"] = "TCP"
    port: int
    targetPort: int | str | None = None
    appProtocol: str | None = None


class ServiceSpecDoc(Strict):
    type: Literal["ClusterIP"] = "ClusterIP"
    selector: dict[str, str] | None = None
    ports: list[ServicePortDoc] = Field(default_factory=list)
    clusterIP: str | None = None
    clusterIPs: list[str] | None = None
    sessionAffinity: Literal["None"] | None = None


class ServiceDoc(Document):
    spec: ServiceSpecDoc = Field(default_factory=ServiceSpecDoc)
    status: dict[str, Any] | None = None


class ExternalPortDoc(Strict):
    port: int
    protocol: Literal["TCP"] = "TCP"  # the lab's gateway is a TCP proxy


class ExternalServiceSpecDoc(Strict):
    dnsName: str
    hijackDns: bool = False
    ports: list[ExternalPortDoc] = Field(default_factory=lambda: [ExternalPortDoc(port=443)])
    replicas: int | None = None
    resources: dict[str, Any] | None = None
    minReplicas: int | None = None
    maxReplicas: int | None = None
    targetCPUUtilizationPercentage: int | None = None
    ipOverride: list[str] | None = None


class ExternalServiceDoc(Document):
    spec: ExternalServiceSpecDoc
    status: dict[str, Any] | None = None


def _port_in_range(value: int, path: str, problems: Problems) -> None:
    if not 1 <= value <= 65535:
        problems.append((path, f"{value} must be between 1 and 65535"))


def service_from_doc(doc: dict[str, Any]) -> Service:
    d: ServiceDoc = validate_model(ServiceDoc, doc)
    problems: Problems = []
    name, namespace = d.metadata.name or "", d.metadata.namespace or "default"
    if not name:
        problems.append(("metadata.name", "a Service needs a name"))
    else:
        check_dns_label(name, "metadata.name", problems)  # it becomes a DNS label: <name>.<ns>.svc
    check_dns_label(namespace, "metadata.namespace", problems)
    check_labels(d.metadata.labels, "metadata.labels", problems)
    check_labels(d.spec.selector, "spec.selector", problems)
    if not d.spec.ports:
        problems.append(("spec.ports", "a ClusterIP Service needs at least one port"))
    ports = _service_ports(d.spec.ports, problems)
    cluster_ip = _cluster_ip(d.spec.clusterIP, problems)
    if problems:
        raise Invalid(problems)
    selector = tuple(sorted((d.spec.selector or {}).items()))
    return Service(namespace, name, selector, ports, cluster_ip)


def _service_ports(docs: list[ServicePortDoc], problems: Problems) -> tuple[ServicePort, ...]:
    ports, names, seen = [], set(), set()
    for i, p in enumerate(docs):
        where = f"spec.ports[{i}]"
        _port_in_range(p.port, f"{where}.port", problems)
        if p.name is None and len(docs) > 1:
            problems.append((f"{where}.name", "every port of a multi-port Service needs a name"))
        if p.name is not None:
            check_dns_label(p.name, f"{where}.name", problems)
            if p.name in names:
                problems.append((f"{where}.name", f"duplicate port name {p.name!r}"))
            names.add(p.name)
        if (p.port, p.protocol) in seen:
            problems.append((f"{where}.port", f"duplicate port {p.port}/{p.protocol}"))
        seen.add((p.port, p.protocol))
        target: int | str = p.port if p.targetPort is None else p.targetPort
        if isinstance(target, int):
            _port_in_range(target, f"{where}.targetPort", problems)
        elif target.isdigit():
            target = int(target)
            _port_in_range(target, f"{where}.targetPort", problems)
        else:
            check_port_name(target, f"{where}.targetPort", problems)
        ports.append(ServicePort(p.name, p.protocol, p.port, target))
    return tuple(ports)


def _cluster_ip(text: str | None, problems: Problems) -> IPv4Address | None:
    if text in (None, ""):
        return None
    if text == "None":
        problems.append(("spec.clusterIP", "headless Services are not supported by the lab"))
        return None
    try:
        return IPv4Address(text)
    except ValueError:
        problems.append(("spec.clusterIP", f"{text!r} is not an IPv4 address"))
        return None


def external_service_from_doc(doc: dict[str, Any]) -> ExternalService:
    d: ExternalServiceDoc = validate_model(ExternalServiceDoc, doc)
    problems: Problems = []
    name = d.metadata.name or ""
    if not name:
        problems.append(("metadata.name", "an ExternalService needs a name"))
    else:
        check_dns_label(name, "metadata.name", problems)  # it names the gateway's pod and Service
        if len(name) > 55:
            problems.append(("metadata.name", "at most 55 characters (it ends the label egress.monzo.com/allowed-<name>)"))
    if d.metadata.namespace:
        problems.append(("metadata.namespace", "ExternalService is cluster-scoped: leave namespace out"))
    dns_name = d.spec.dnsName.rstrip(".")
    check_dns_subdomain(dns_name, "spec.dnsName", problems)
    if "." not in dns_name:
        problems.append(("spec.dnsName", f"{dns_name!r} must be a fully qualified name such as api.github.com"))
    if not d.spec.ports:
        problems.append(("spec.ports", "an ExternalService needs at least one port"))
    seen = set()
    for i, p in enumerate(d.spec.ports):
        _port_in_range(p.port, f"spec.ports[{i}].port", problems)
        if p.port in seen:
            problems.append((f"spec.ports[{i}].port", f"duplicate port {p.port}"))
        seen.add(p.port)
    if problems:
        raise Invalid(problems)
    return ExternalService(name, dns_name, d.spec.hijackDns, tuple((p.port, p.protocol) for p in d.spec.ports))


def validate_service(doc: dict[str, Any]) -> None:
    service_from_doc(doc)


def validate_external_service(doc: dict[str, Any]) -> None:
    external_service_from_doc(doc)


# (apiVersion, kind) -> validator: documents the policy model accepts but leaves to this package
VALIDATORS: dict[tuple[str, str], Callable[[dict[str, Any]], None]] = {
    ("v1", SERVICE_KIND): validate_service,
    (EGRESS_API, EXTERNAL_SERVICE_KIND): validate_external_service,
}
