"""Pure planning of a lab: fabric addresses of every node and where each pod runs.

No I/O: the pipeline turns these plans into namespaces, speakers and filters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface

from lab.labfile import LabSpecModel, PodSpec, reflector_names
from lab.placement import choose_hosts
from topology.model import plan_fabric


@dataclass(frozen=True)
class NodeAddress:
    name: str
    kind: str  # "host" | "external" | "reflector"
    ip: IPv4Interface


@dataclass(frozen=True)
class PodPlacement:
    namespace: str
    name: str
    host: str
    spec: PodSpec

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def plan_node_addresses_from_model(lab: str, model: LabSpecModel) -> list[NodeAddress]:
    """Hosts first, then route reflectors, then externals; fixed external addresses are honoured."""
    fabric = model.fabric
    taken: set[IPv4Address] = {plan_fabric(lab, fabric).gateway.ip}
    taken.update(e.ip for e in model.externals if e.ip is not None)
    free = (ip for ip in fabric.hosts() if ip not in taken)

    def iface(ip: IPv4Address) -> IPv4Interface:
        return IPv4Interface(f"{ip}/{fabric.prefixlen}")

    nodes = [NodeAddress(h, "host", iface(next(free))) for h in model.host_names()]
    nodes += [NodeAddress(r, "reflector", iface(next(free))) for r in reflector_names(model)]
    for ext in model.externals:
        nodes.append(NodeAddress(ext.name, "external", iface(ext.ip if ext.ip is not None else next(free))))
    return nodes


def place_pods(
    hosts: list[str], pods: Iterable[tuple[PodSpec, str]], load: Counter[str] | None = None
) -> list[PodPlacement]:
    """Pinned pods go to their host; the others to the least-loaded host (ties: host order)."""
    pods = list(pods)
    chosen = choose_hosts(hosts, (spec.host for spec, _name in pods), load)
    return [PodPlacement(spec.namespace, name, host, spec) for (spec, name), host in zip(pods, chosen, strict=True)]
