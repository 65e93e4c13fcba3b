"""Lab files: YAML describing a lab, read into a validated `LabSpec`.

Every mistake is collected before anything is created, and each one names the file, the object and the
field, so users see all of them at once (like netlab's error pile-up).
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lab.limits import LIMITS_ENV, Limits, LimitsError, default_limits
from lab.placement import choose_hosts
from lab.store import parse_endpoint
from lab.stores import store_names
from policy_dataplane.dataplane.backends import backend_names
from policy_dataplane.policy.safeyaml import InputError, load_all, read_text
from policy_dataplane.policy.validation import Problems, check_dns_label, check_dns_subdomain, check_labels
from topology.engines import DEFAULT_ENGINE, engine_names
from topology.names import LAB_NAME_RE, MAX_LAB_NAME

DNS_LABEL_MAX = 63
Runtime = Literal["netns", "docker"]
_DNS_NAME_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+$")
MAX_SHOWN = 50  # problems listed in a message; the rest are counted


class LabFileError(ValueError):
    """One or more problems in a lab file; `problems` lists each as 'object: field: message'."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        shown = problems[:MAX_SHOWN] + ([f"... and {len(problems) - MAX_SHOWN} more"] if len(problems) > MAX_SHOWN else [])
        super().__init__(f"{source}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in shown))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class PortSpec(_Strict):
    name: str | None = None
    containerPort: int = Field(ge=1, le=65535)
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"


class ShapeSpec(_Strict):
    """A link's shape, as Mininet's TCLink takes it: each applies in both directions."""

    delay: str | float | None = Field(default=None, description="one-way delay: 20ms, 500us, 0.1s")
    jitter: str | float | None = Field(default=None, description="± this much around delay (uniform)")
    loss: float = Field(default=0, ge=0, le=100, description="percent of packets dropped, each way")
    bandwidth: float | None = Field(default=None, gt=0, le=100_000, description="Mbit/s, each way")

    @field_validator("delay", "jitter")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        from topology.shaping import duration_ms

        if value is not None:
            duration_ms(value)  # its ValueError names the value and what is expected
        return value

    def shape(self):  # type: ignore[no-untyped-def]
        from topology.shaping import LinkShape, duration_ms

        return LinkShape(delay_ms=duration_ms(self.delay) if self.delay is not None else 0.0,
                         jitter_ms=duration_ms(self.jitter) if self.jitter is not None else 0.0,
                         loss_pct=self.loss, bandwidth_mbit=self.bandwidth)


class LinkSpec(ShapeSpec):
    """The fabric link of one node (host, external or reflector `rrN`)."""

    node: str


class HostSpec(_Strict):
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    machine: str | None = None  # one of `machines` (the first when left out)


DEFAULT_MACHINE = "local"


class MachineSpec(_Strict):
    """A machine running part of the lab: its controller programs the hosts placed on it. `underlay` is the
    address its fabric's VXLAN tunnels start from (on one box: inside the machine's own namespace)."""

    name: str
    underlay: IPv4Interface | None = None  # e.g. 10.250.0.1/24
    # On real machines, the interface the tunnels leave by (a macvlan on it is made inside the machine
    # namespace); none: machines simulated on one box, joined by the lab's own underlay wire.
    underlayDevice: str | None = None

    @field_validator("underlayDevice")
    @classmethod
    def _interface_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}", value):
            raise ValueError(f"{value!r} is not an interface name (1-15 letters, digits, '_', '.', '-')")
        return value


class StoreSpec(_Strict):
    """Where the desired state lives: `sqlite` (embedded, one machine) or `etcd` (shared by machines)."""

    backend: str = "sqlite"
    endpoints: list[str] = Field(default_factory=list)

    @field_validator("backend")
    @classmethod
    def _known_store(cls, value: str) -> str:
        if value not in store_names():
            raise ValueError(f"unknown store backend {value!r} (one of: {', '.join(store_names())})")
        return value


class NamespaceSpec(_Strict):
    name: str
    labels: dict[str, str] = Field(default_factory=dict)


class PodSpec(_Strict):
    name: str
    namespace: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    host: str | None = None
    replicas: int = Field(default=1, ge=1, le=10000)
    ports: list[PortSpec] = Field(default_factory=list)
    ip: IPv4Address | None = None
    serviceAccountName: str = "default"
    runtime: Runtime | None = Field(default=None, description="netns or docker; the lab's runtime when left out")
    image: str | None = Field(default=None, description="a local Docker image (docker runtime); never pulled")
    command: list[str] | None = Field(default=None, description="the container's argv; the image's when left out")
    link: ShapeSpec | None = Field(default=None, description="shape of the pod's veth")


class ExternalSpec(_Strict):
    name: str
    dnsNames: list[str] = Field(default_factory=list)  # names the cluster DNS answers too (api.github.com)
    ip: IPv4Address | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    ports: list[PortSpec] = Field(default_factory=list)


class BgpSpec(_Strict):
    layout: Literal["mesh", "route-reflector"] = "mesh"
    asn: int = Field(default=64512, ge=1, le=4294967295)
    holdTime: int = Field(default=9, ge=3, le=65535)
    reflectors: int = Field(default=1, ge=1, le=4)


class IpamSpec(_Strict):
    pool: IPv4Network = IPv4Network("192.168.0.0/16")
    blockSize: int = Field(default=26, ge=20, le=32)
    maxBlocksPerHost: int = Field(default=20, ge=1)
    strictAffinity: bool = False

    @field_validator("pool", mode="before")
    @classmethod
    def _strict_network(cls, value: Any) -> Any:
        return _parse_network(value)


def _parse_network(value: Any) -> Any:
    if isinstance(value, bool):  # `fabric: yes` is not the network 0.0.0.1/32
        raise ValueError(f"{value!r} is not an IPv4 network in CIDR form")
    if isinstance(value, str):
        try:
            return ipaddress.IPv4Network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IPv4 network in CIDR form with host bits zero ({exc})") from exc
    return value


class ClusterDnsSpec(_Strict):
    replicas: int = Field(default=1, ge=1, le=8)
    host: str | None = None


class LimitsSpec(_Strict):
    """Raises (or lowers) the limits of lab.limits for this lab."""

    hosts: int | None = Field(default=None, ge=1)
    pods: int | None = Field(default=None, ge=1)
    externals: int | None = Field(default=None, ge=1)
    policies: int | None = Field(default=None, ge=1)
    rules: int | None = Field(default=None, ge=1)
    fileBytes: int | None = Field(default=None, ge=1)
    yamlNodes: int | None = Field(default=None, ge=1)


class LabSpecModel(_Strict):
    name: str = "demo"
    hosts: int | list[HostSpec] = 3
    fabric: IPv4Network = IPv4Network("10.99.0.0/24")
    ipam: IpamSpec = Field(default_factory=IpamSpec)
    bgp: BgpSpec = Field(default_factory=BgpSpec)
    dataplane: str = "nftables"  # a registered backend (policy_dataplane.dataplane.backends)
    engine: str = DEFAULT_ENGINE  # a registered topology engine (topology.engines)
    runtime: Runtime = Field(default="netns", description="how pods run: bare namespaces, or Docker containers")
    image: str | None = Field(default=None, description="the image of docker pods that name none")
    namespaces: list[NamespaceSpec] = Field(default_factory=list)
    pods: list[PodSpec] = Field(default_factory=list)
    externals: list[ExternalSpec] = Field(default_factory=list)
    links: list[LinkSpec] = Field(default_factory=list, description="shapes of nodes' fabric links")
    serviceCIDR: IPv4Network = IPv4Network("10.96.0.0/12")
    clusterDNS: ClusterDnsSpec | None = None  # DNS pods `coredns` in kube-system and the kube-dns Service
    hostPorts: list[PortSpec] = Field(default_factory=list, description="ports every host's own daemons answer")
    apply: list[str] = Field(default_factory=list, description="policy YAML files, relative to the lab file")
    limits: LimitsSpec = Field(default_factory=LimitsSpec)
    store: StoreSpec = Field(default_factory=StoreSpec)
    machines: list[MachineSpec] = Field(default_factory=list)

    def effective_limits(self) -> Limits:
        return default_limits().raised(self.limits.model_dump(exclude_none=True))

    @field_validator("fabric", "serviceCIDR", mode="before")
    @classmethod
    def _strict_fabric(cls, value: Any) -> Any:
        return _parse_network(value)

    def host_names(self) -> list[str]:
        hosts = self.hosts
        return [f"node{i}" for i in range(1, hosts + 1)] if isinstance(hosts, int) else [h.name for h in hosts]

    def machine_names(self) -> list[str]:
        return [m.name for m in self.machines] or [DEFAULT_MACHINE]

    def machine_of(self) -> dict[str, str]:
        """host -> the machine it is placed on (the first machine unless the host names one)."""
        first = self.machine_names()[0]
        if isinstance(self.hosts, int):
            return {h: first for h in self.host_names()}
        return {h.name: h.machine or first for h in self.hosts}

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        if value not in engine_names():
            raise ValueError(f"unknown topology engine {value!r} (one of: {', '.join(engine_names())})")
        return value

    @field_validator("dataplane")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        known = backend_names(for_labs=True)
        if value not in known:
            raise ValueError(f"unknown dataplane backend {value!r} (one of: {', '.join(known)})")
        return value


@dataclass(frozen=True)
class LabSpec:
    """A validated lab: the model plus where it came from (for messages and relative paths)."""

    model: LabSpecModel
    source: str
    base_dir: Path

    @property
    def name(self) -> str:
        return self.model.name

    def host_names(self) -> list[str]:
        return self.model.host_names()

    def pod_instances(self) -> list[tuple[PodSpec, str]]:
        return pod_instances(self.model)

    def pod_runtime(self, pod: PodSpec) -> Runtime:
        return pod.runtime or self.model.runtime

    def pod_image(self, pod: PodSpec) -> str | None:
        """The image of a docker pod (None: the lab's default image); None for a netns pod."""
        return pod.image or self.model.image if self.pod_runtime(pod) == "docker" else None

    def policy_files(self) -> list[Path]:
        return [(self.base_dir / p).resolve() for p in self.model.apply]


def pod_instances(model: LabSpecModel) -> list[tuple[PodSpec, str]]:
    """Every pod the lab runs, with its instance name (`web`, or `web-0`.. with replicas)."""
    out: list[tuple[PodSpec, str]] = []
    for pod in [*model.pods, *cluster_dns_pods(model)]:
        if pod.replicas == 1:
            out.append((pod, pod.name))
        else:
            out.extend((pod, f"{pod.name}-{i}") for i in range(pod.replicas))
    return out


def cluster_dns_pods(model: LabSpecModel) -> list[PodSpec]:
    """The DNS pods `clusterDNS` asks for: `coredns` (or coredns-0..) in kube-system, labelled like kube-dns."""
    from services.dns import DNS_LABELS, DNS_NAMESPACE, DNS_PORT

    if model.clusterDNS is None:
        return []
    ports = [PortSpec(name="dns", containerPort=DNS_PORT, protocol="UDP"),
             PortSpec(name="dns-tcp", containerPort=DNS_PORT, protocol="TCP")]
    return [PodSpec(name="coredns", namespace=DNS_NAMESPACE, labels=DNS_LABELS, host=model.clusterDNS.host,
                    replicas=model.clusterDNS.replicas, ports=ports)]


def _loc_to_object(data: dict[str, Any], loc: tuple[Any, ...]) -> tuple[str, str]:
    """Turns a pydantic location into ('pod dev/web', 'ports[0].containerPort')."""
    kinds = {"pods": "pod", "namespaces": "namespace", "externals": "external", "hosts": "host", "links": "link"}
    if len(loc) >= 2 and loc[0] in kinds and isinstance(loc[1], int):
        kind = kinds[loc[0]]
        items = data.get(loc[0]) or []
        item = items[loc[1]] if isinstance(items, list) and loc[1] < len(items) else {}
        key = "node" if kind == "link" else "name"
        name = item.get(key, f"#{loc[1]}") if isinstance(item, dict) else f"#{loc[1]}"
        if kind == "pod" and isinstance(item, dict):
            name = f"{item.get('namespace', 'default')}/{name}"
        field = _format_loc(loc[2:]) or "(itself)"
        return f"{kind} {name}", field
    return "lab", _format_loc(loc)


def _format_loc(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def parse_lab(data: Any, source: str, base_dir: Path) -> LabSpec:
    """Validates lab file data; raises LabFileError with every problem found."""
    if data is None or data == {}:
        raise LabFileError(source, ["lab: the file is empty (a lab needs at least a name or hosts)"])
    if not isinstance(data, dict):
        raise LabFileError(source, ["lab: the file must hold a mapping (name, hosts, pods, ...)"])
    try:
        model = LabSpecModel.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            obj, field = _loc_to_object(data, tuple(err["loc"]))
            problems.append(f"{obj}: field {field}: {err['msg']}")
        raise LabFileError(source, problems) from None
    spec = LabSpec(model=model, source=source, base_dir=base_dir)
    problems = size_problems(model)
    if problems:  # before anything counts, lists or places a hundred million hosts
        raise LabFileError(source, problems)
    problems = check_semantics(spec)
    if problems:
        raise LabFileError(source, problems)
    return spec


def with_overrides(spec: LabSpec, dataplane: str | None = None, layout: str | None = None,
                   name: str | None = None, engine: str | None = None) -> LabSpec:
    """The lab with command-line choices in place of the file's, validated again as a whole."""
    data = spec.model.model_dump(mode="json")
    if engine:
        data["engine"] = engine
    if dataplane:
        data["dataplane"] = dataplane
    if layout:
        data["bgp"]["layout"] = layout
    if name:
        data["name"] = name
    return parse_lab(data, f"{spec.source} (with command-line options)", spec.base_dir)


def load_lab_file(path: str | Path) -> LabSpec:
    """Reads (a regular UTF-8 file within the size limit, bounded YAML, one document) and validates."""
    path = Path(path)
    try:
        limits = default_limits()
        docs = load_all(read_text(path, limits.fileBytes), limits.yamlNodes)
    except (InputError, LimitsError) as exc:
        raise LabFileError(str(path), [f"lab: {exc}"]) from None
    except yaml.YAMLError as exc:
        raise LabFileError(str(path), [f"lab: not valid YAML: {exc}"]) from None
    if len(docs) > 1:
        raise LabFileError(str(path), [f"lab: the file holds {len(docs)} YAML documents; a lab file is one"])
    return parse_lab(docs[0] if docs else None, str(path), path.parent.resolve())


def size_problems(m: LabSpecModel) -> list[str]:
    """Counts against the lab's limits (lab.limits), each with the way to raise it."""
    try:
        limits = m.effective_limits()
    except LimitsError as exc:
        return [f"lab: {exc}"]
    counts = {
        "hosts": m.hosts if isinstance(m.hosts, int) else len(m.hosts),
        "pods": sum(p.replicas for p in m.pods),
        "externals": len(m.externals),
    }
    return [
        f"lab: field {what}: {count} {what} is more than the limit of {getattr(limits, what)} "
        f"(raise it with `limits: {{{what}: N}}` in the lab file or {LIMITS_ENV}={what}=N)"
        for what, count in counts.items() if count > getattr(limits, what)
    ]


def capacity_problems(spec: LabSpec, hosts: list[str]) -> list[str]:
    """Whether the pool can address every pod, as the IPAM will hand addresses out: each host claims at most
    maxBlocksPerHost blocks, and borrowing (without strictAffinity) only reaches blocks already claimed."""
    ipam, pods = spec.model.ipam, spec.pod_instances()
    if ipam.blockSize < ipam.pool.prefixlen or not hosts:
        return []
    per_block = 2 ** (32 - ipam.blockSize)
    pool_blocks = 2 ** (ipam.blockSize - ipam.pool.prefixlen)
    claimable = min(pool_blocks, len(hosts) * ipam.maxBlocksPerHost)
    if len(pods) > claimable * per_block:
        return [f"lab: field ipam: {len(pods)} pods do not fit: {len(hosts)} hosts can claim {claimable} blocks of "
                f"/{ipam.blockSize} ({per_block} addresses each) from {ipam.pool} with maxBlocksPerHost "
                f"{ipam.maxBlocksPerHost}"]
    if not ipam.strictAffinity:
        return []
    per_host = Counter(choose_hosts(hosts, (spec.host for spec, _name in pods)))
    return [f"host {host}: field ipam.maxBlocksPerHost: {count} pods on this host need more than "
            f"{ipam.maxBlocksPerHost} blocks of /{ipam.blockSize}, and strictAffinity forbids borrowing"
            for host, count in per_host.items() if count > ipam.maxBlocksPerHost * per_block]


def _duplicates(names: list[str]) -> list[str]:
    return sorted(n for n, c in Counter(names).items() if c > 1)


def _dns_label_problem(name: str) -> str | None:
    if len(name) > DNS_LABEL_MAX or not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", name):
        return "must be a DNS label: lower-case letters, digits and '-', at most 63 characters"
    return None


def kubernetes_name_problems(m: LabSpecModel) -> list[str]:
    """Names and labels against the Kubernetes rules, before anything else looks at them: every one of them
    ends up in a kernel name, a script or a configuration file (namespace: DNS label; pod and service
    account: DNS subdomain; label keys: qualified names; label values: at most 63 safe characters)."""
    out: Problems = []
    for i, ns in enumerate(m.namespaces):
        check_dns_label(ns.name, f"namespace {ns.name!r}: field name", out)
        check_labels(ns.labels, f"namespace {ns.name!r}: field labels", out)
    for i, pod in enumerate(m.pods):
        obj = f"pod {pod.namespace}/{pod.name}"
        check_dns_label(pod.namespace, f"{obj!r}: field namespace", out)
        check_dns_subdomain(pod.serviceAccountName, f"{obj}: field serviceAccountName", out)
        check_labels(pod.labels, f"{obj}: field labels", out)
    for what, items in (("host", m.hosts if isinstance(m.hosts, list) else []), ("external", m.externals)):
        for item in items:
            check_labels(item.labels, f"{what} {item.name!r}: field labels", out)
    return [f"{path}: {message}" for path, message in out]


def store_problems(m: LabSpecModel) -> list[str]:
    problems = []
    if m.store.backend == "etcd" and not m.store.endpoints:
        problems.append("lab: field store.endpoints: the etcd store needs at least one endpoint (http://HOST:PORT)")
    if m.store.backend == "sqlite" and m.store.endpoints:
        problems.append("lab: field store.endpoints: the sqlite store is a local file and takes no endpoints")
    for i, endpoint in enumerate(m.store.endpoints):
        try:
            parse_endpoint(endpoint)
        except ValueError as exc:
            problems.append(f"lab: field store.endpoints.{i}: {exc}")
    return problems


def machine_problems(m: LabSpecModel) -> list[str]:
    problems = []
    names_ = [x.name for x in m.machines]
    for dup in _duplicates(names_):
        problems.append(f"machine {dup}: field name: duplicate machine name")
    for x in m.machines:
        if not re.fullmatch(r"[a-z][a-z0-9]{0,5}", x.name):
            problems.append(f"machine {x.name}: field name: must be 1-6 lower-case letters or digits, starting "
                            "with a letter (it is part of namespace and interface names)")
    for dup in _duplicates([str(x.underlay) for x in m.machines if x.underlay is not None]):
        problems.append(f"machine {dup}: field underlay: two machines share underlay address {dup}")
    if len(m.machines) > 1:
        for x in m.machines:
            if x.underlay is None:
                problems.append(f"machine {x.name}: field underlay: a lab on several machines needs each one's "
                                "underlay address (the VXLAN tunnels between fabrics start there)")
        if m.store.backend == "sqlite":
            problems.append("lab: field store: a lab on several machines needs a shared store (backend: etcd)")
        if len({x.underlay.network for x in m.machines if x.underlay is not None}) > 1:
            problems.append("lab: field machines: the machines' underlay addresses must share one network "
                            "(the tunnels between fabrics run over it)")
    known = set(m.machine_names())
    if not isinstance(m.hosts, int):
        for h in m.hosts:
            if h.machine is not None and h.machine not in known:
                problems.append(f"host {h.name}: field machine: unknown machine {h.machine!r} "
                                f"(machines: {', '.join(sorted(known))})")
    return problems


def check_semantics(spec: LabSpec) -> list[str]:
    """Cross-field checks pydantic cannot do alone. Returns every problem found."""
    from topology.docker_images import container_problems

    m = spec.model
    problems: list[str] = kubernetes_name_problems(m)
    if not LAB_NAME_RE.match(m.name):
        problems.append(
            f"lab: field name: {m.name!r} must be 1-{MAX_LAB_NAME} lower-case letters or digits, starting with a letter"
        )
    hosts = spec.host_names()
    if not hosts:
        problems.append("lab: field hosts: a lab needs at least one host")
    for dup in _duplicates(hosts):
        problems.append(f"host {dup}: field name: duplicate host name")
    for h in hosts:
        if (p := _dns_label_problem(h)) is not None:
            problems.append(f"host {h}: field name: {p}")

    problems += store_problems(m) + machine_problems(m)

    ns_names = [n.name for n in m.namespaces]
    for dup in _duplicates(ns_names):
        problems.append(f"namespace {dup}: field name: duplicate namespace name")
    declared_ns = set(ns_names) | {"default"} | ({"kube-system"} if m.clusterDNS else set())
    pool = m.ipam.pool
    if m.serviceCIDR.overlaps(pool):  # the fabric may sit inside it (the defaults do): ClusterIPs skip it
        problems.append(f"lab: field serviceCIDR: {m.serviceCIDR} overlaps the pod pool {pool}")
    if m.clusterDNS and m.clusterDNS.host is not None and m.clusterDNS.host not in hosts:
        problems.append(f"lab: field clusterDNS.host: no host named {m.clusterDNS.host!r}")
    if m.ipam.blockSize < pool.prefixlen:
        problems.append(f"lab: field ipam.blockSize: /{m.ipam.blockSize} blocks do not fit in the pool {pool}")
    if pool.overlaps(m.fabric):
        problems.append(f"lab: field fabric: {m.fabric} overlaps the pod pool {pool}")
    instances = spec.pod_instances()
    if len(instances) > pool.num_addresses:
        problems.append(f"lab: field ipam.pool: {pool} holds {pool.num_addresses} addresses, the lab has {len(instances)} pods")

    keys = [f"{pod.namespace}/{name}" for pod, name in instances]
    for dup in _duplicates(keys):
        problems.append(f"pod {dup}: field name: duplicate pod name in its namespace")
    fixed_seen: dict[IPv4Address, str] = {}
    for pod in m.pods:
        obj = f"pod {pod.namespace}/{pod.name}"
        if (p := _dns_label_problem(pod.name)) is not None:
            problems.append(f"{obj}: field name: {p}")
        if pod.namespace not in declared_ns:
            problems.append(f"{obj}: field namespace: namespace {pod.namespace!r} is not declared under namespaces")
        if pod.host is not None and pod.host not in hosts:
            problems.append(f"{obj}: field host: no host named {pod.host!r} (hosts: {', '.join(hosts)})")
        problems.extend(_port_problems(obj, pod.ports))
        problems.extend(_runtime_problems(spec, obj, pod))
        if pod.ip is not None:
            if pod.replicas != 1:
                problems.append(f"{obj}: field ip: a fixed IP needs replicas: 1")
            if pod.ip not in pool:
                problems.append(f"{obj}: field ip: {pod.ip} is outside the pod pool {pool}")
            elif pod.ip in fixed_seen:
                problems.append(f"{obj}: field ip: {pod.ip} is already taken by {fixed_seen[pod.ip]}")
            else:
                fixed_seen[pod.ip] = obj

    if m.image is not None:
        problems.extend(f"lab: {p}" for p in container_problems(m.image, None))
    ext_names = [e.name for e in m.externals]
    for dup in _duplicates(ext_names):
        problems.append(f"external {dup}: field name: duplicate external host name")
    for dup in sorted(set(ext_names) & set(hosts)):
        problems.append(f"external {dup}: field name: the name is also a host's")
    node_count = len(hosts) + len(m.externals) + (m.bgp.reflectors if m.bgp.layout == "route-reflector" else 0)
    if node_count > m.fabric.num_addresses - 3:
        problems.append(f"lab: field fabric: {m.fabric} is too small for {node_count} nodes")
    ext_ips: dict[IPv4Address, str] = {}
    for ext in m.externals:
        obj = f"external {ext.name}"
        if (p := _dns_label_problem(ext.name)) is not None:
            problems.append(f"{obj}: field name: {p}")
        problems.extend(_port_problems(obj, ext.ports))
        for i, dns_name in enumerate(ext.dnsNames):
            if not _DNS_NAME_RE.match(dns_name):
                problems.append(f"{obj}: field dnsNames[{i}]: {dns_name!r} must be a DNS name such as api.github.com")
        if ext.ip is None:
            continue
        if ext.ip in pool:
            problems.append(f"{obj}: field ip: {ext.ip} is inside the pod pool {pool}; externals live outside it")
        elif ext.ip not in m.fabric or ext.ip in (m.fabric.network_address, m.fabric.broadcast_address):
            problems.append(f"{obj}: field ip: {ext.ip} is not a usable address of the fabric {m.fabric}")
        elif ext.ip in ext_ips:
            problems.append(f"{obj}: field ip: {ext.ip} is already taken by {ext_ips[ext.ip]}")
        else:
            ext_ips[ext.ip] = obj
    problems.extend(_link_problems(spec, hosts, ext_names))
    problems.extend(_port_problems("lab", m.hostPorts))
    problems += capacity_problems(spec, hosts)
    for i, rel in enumerate(m.apply):
        if (p := apply_path_problem(spec.base_dir, rel)) is not None:
            problems.append(f"lab: field apply[{i}]: {p}")
    return problems


def _shape_problems(obj: str, shape: ShapeSpec) -> list[str]:
    link = shape.shape()
    if link.jitter_ms > link.delay_ms:
        return [f"{obj}: field jitter: {shape.jitter!r} is more than the delay ({shape.delay!r}); "
                "a packet cannot leave before it was sent"]
    return []


def reflector_names(model: LabSpecModel) -> list[str]:
    """The route reflectors' node names (rr1, rr2, ...) of a route-reflector layout; none for a mesh."""
    if model.bgp.layout != "route-reflector":
        return []
    return [f"rr{i}" for i in range(1, model.bgp.reflectors + 1)]


def _link_problems(spec: LabSpec, hosts: list[str], externals: list[str]) -> list[str]:
    m = spec.model
    nodes = hosts + externals + reflector_names(m)
    problems = [f"link {dup}: field node: the node's link is shaped twice" for dup in _duplicates([ln.node for ln in m.links])]
    for link in m.links:
        if link.node not in nodes:
            problems.append(f"link {link.node}: field node: no node named {link.node!r} (nodes: {', '.join(nodes)})")
        problems.extend(_shape_problems(f"link {link.node}", link))
    for pod in m.pods:
        if pod.link is not None:
            problems.extend(_shape_problems(f"pod {pod.namespace}/{pod.name}", pod.link))
    return problems


def _runtime_problems(spec: LabSpec, obj: str, pod: PodSpec) -> list[str]:
    from topology.docker_images import container_problems

    if spec.pod_runtime(pod) != "docker":
        return [f"{obj}: field {f}: only a pod with runtime: docker has one"
                for f in ("image", "command") if getattr(pod, f) is not None]
    return [f"{obj}: {p}" for p in container_problems(pod.image, pod.command)]
def apply_path_problem(base_dir: Path, rel: str) -> str | None:
    """A policy file named by a lab file must be a regular file inside the lab file's folder: a lab file
    cannot make the lab (running as root) read `/etc/shadow` or `../../etc/passwd`."""
    folder = base_dir.resolve()
    if "\0" in rel:
        return f"{rel!r} holds a NUL byte: it cannot name a file"
    path = (folder / rel).resolve()
    if not path.is_relative_to(folder):
        return f"{rel!r} is outside the lab file's folder {folder}: only files inside it are read"
    try:
        regular = path.is_file()
    except OSError as exc:  # a name too long for the file system, say
        return f"{rel!r} cannot name a file in the lab file's folder {folder}: {exc.strerror}"
    if not regular:
        return f"no regular file {rel!r} in the lab file's folder {folder}"
    return None


def _port_problems(obj: str, ports: list[PortSpec]) -> list[str]:
    problems = []
    names = [p.name for p in ports if p.name]
    for dup in _duplicates(names):
        problems.append(f"{obj}: field ports: duplicate port name {dup!r}")
    for i, port in enumerate(ports):
        if port.name is not None and (len(port.name) > 15 or not port.name.replace("-", "").isalnum()
                                      or not any(c.isalpha() for c in port.name)):
            problems.append(
                f"{obj}: field ports[{i}].name: {port.name!r} must be an IANA service name "
                "(at most 15 letters, digits and '-', with a letter)"
            )
    return problems
