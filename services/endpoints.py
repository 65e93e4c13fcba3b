"""Which pods back which Service port (the EndpointSlices kube-proxy reads), and ClusterIP allocation. Pure.

A pod is a ready endpoint of a Service when it runs (has an address), lives in the Service's namespace and
carries every label of its selector. A named targetPort maps, per pod, to the container port of that name
and protocol; a pod without one is no endpoint of that Service port (as in Kubernetes).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from services.objects import Service, ServicePort


@dataclass(frozen=True)
class Backend:
    """A running pod as Services see it."""

    namespace: str
    name: str
    ip: IPv4Address
    labels: Mapping[str, str]
    named_ports: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (name, protocol) -> port

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def target(self, port: ServicePort) -> int | None:
        if isinstance(port.target, int):
            return port.target
        return self.named_ports.get((port.target, port.protocol))


@dataclass(frozen=True)
class Endpoint:
    backend: Backend
    port: int  # the backend's port this Service port goes to


@dataclass(frozen=True)
class ServiceEndpoints:
    service: Service
    cluster_ip: IPv4Address
    by_port: tuple[tuple[ServicePort, tuple[Endpoint, ...]], ...]

    def endpoints(self, port: ServicePort) -> tuple[Endpoint, ...]:
        return next((eps for p, eps in self.by_port if p == port), ())


class BackendIndex:
    """Running pods indexed by (namespace, label key, value): a selector looks at candidates only."""

    def __init__(self, backends: Iterable[Backend]) -> None:
        self.by_namespace: dict[str, list[Backend]] = defaultdict(list)
        self.by_label: dict[tuple[str, str, str], list[Backend]] = defaultdict(list)
        for b in backends:
            self.by_namespace[b.namespace].append(b)
            for k, v in b.labels.items():
                self.by_label[(b.namespace, k, v)].append(b)

    def selected(self, service: Service) -> list[Backend]:
        if not service.selector:
            return []  # a Service without a selector has no managed endpoints
        (k0, v0), rest = service.selector[0], service.selector[1:]
        candidates = self.by_label.get((service.namespace, k0, v0), [])
        return sorted((b for b in candidates if all(b.labels.get(k) == v for k, v in rest)), key=lambda b: b.key)


def resolve(services: Iterable[Service], backends: Iterable[Backend]) -> list[ServiceEndpoints]:
    """Endpoints of every Service that has a ClusterIP, each port's in pod order."""
    index = BackendIndex(backends)
    out = []
    for svc in services:
        if svc.cluster_ip is None:
            continue
        selected = index.selected(svc)
        by_port = []
        for port in svc.ports:
            eps = tuple(Endpoint(b, t) for b in selected if (t := b.target(port)) is not None)
            by_port.append((port, eps))
        out.append(ServiceEndpoints(svc, svc.cluster_ip, tuple(by_port)))
    return sorted(out, key=lambda s: s.service.key)


class ClusterIPError(ValueError):
    pass


@dataclass
class ClusterIPAllocator:
    """Hands out ClusterIPs from the lab's service range; the first addresses are kept for the lab's own
    Services (kube-dns takes .10, as kubeadm gives it)."""

    cidr: IPv4Network
    taken: dict[IPv4Address, str] = field(default_factory=dict)  # address -> "ns/name"
    reserved_below: int = 16
    excluded: tuple[IPv4Network, ...] = ()  # e.g. the fabric, which the default range contains

    def check(self, ip: IPv4Address, owner: str) -> str | None:
        """A problem with `owner` asking for `ip`, or None."""
        if ip not in self.cidr or ip in (self.cidr.network_address, self.cidr.broadcast_address):
            return f"{ip} is not a usable address of the service range {self.cidr}"
        if any(ip in net for net in self.excluded):
            return f"{ip} belongs to the lab's fabric, not to Services"
        holder = self.taken.get(ip)
        if holder is not None and holder != owner:
            return f"{ip} is already the ClusterIP of Service {holder}"
        return None

    def claim(self, ip: IPv4Address, owner: str) -> None:
        problem = self.check(ip, owner)
        if problem:
            raise ClusterIPError(problem)
        self.taken[ip] = owner

    def allocate(self, owner: str) -> IPv4Address:
        """The lowest free address above the reserved ones."""
        for offset in range(self.reserved_below, self.cidr.num_addresses - 1):
            ip = self.cidr.network_address + offset
            if ip not in self.taken and not any(ip in net for net in self.excluded):
                self.taken[ip] = owner
                return ip
        raise ClusterIPError(f"the service range {self.cidr} is full")

    def release(self, owner: str) -> None:
        for ip in [ip for ip, o in self.taken.items() if o == owner]:
            del self.taken[ip]


def dns_service_ip(cidr: IPv4Network) -> IPv4Address:
    return cidr.network_address + 10
