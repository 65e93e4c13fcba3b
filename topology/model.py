"""What the topology engine builds: pure, frozen plans of the fabric, the nodes and the pods.

The lead's pipeline builds these from the lab file and IPAM; the `plan_*` helpers derive every kernel name
from `topology.names` so callers never spell one by hand. Cross-object checks live in `validation.py`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Literal

from topology import names

NodeKind = Literal["host", "external", "reflector"]
Protocol = Literal["TCP", "UDP", "SCTP"]

NODE_KINDS: tuple[str, ...] = ("host", "external", "reflector")
PROTOCOLS: tuple[str, ...] = ("TCP", "UDP", "SCTP")

# Calico's pod plumbing: a link-local gateway every pod routes to, answered by proxy ARP on the host side,
# whose veth end always carries this MAC.
POD_GATEWAY = IPv4Address("169.254.1.1")
HOST_VETH_MAC = "ee:ee:ee:ee:ee:ee"
POD_IFNAME = "eth0"
NODE_IFNAME = "eth0"


@dataclass(frozen=True)
class PortPlan:
    port: int
    protocol: Protocol = "TCP"
    name: str | None = None


@dataclass(frozen=True)
class FabricPlan:
    """One namespace holding a bridge; `gateway` sits on the bridge and is every node's default route."""

    lab: str
    subnet: IPv4Network
    gateway: IPv4Interface
    machine: str | None = None  # set when the lab spans machines: each has its own fabric
    holds_gateway: bool = True  # one fabric only carries the gateway address when fabrics are bridged together

    @property
    def netns(self) -> str:
        return names.fabric_netns(self.lab, self.machine)

    @property
    def bridge(self) -> str:
        return names.fabric_bridge_ifname()


@dataclass(frozen=True)
class NodePlan:
    """A host, external server or route reflector: a namespace with `eth0` plugged into the fabric bridge."""

    name: str
    kind: NodeKind
    netns: str
    fabric_ip: IPv4Interface
    fabric_port: str


@dataclass(frozen=True)
class ServerPlan:
    """An external server's declared ports, answered by the responder like a pod's."""

    key: str
    netns: str
    ports: tuple[PortPlan, ...] = ()


@dataclass(frozen=True)
class ContainerPlan:
    """A pod that runs as a Docker container: its network namespace is the container's, named like any
    pod namespace. `command` None runs the image's own command. The lab's responder answers the declared
    ports only when `responder` is set (the default image, idle); otherwise the container serves them."""

    image: str
    command: tuple[str, ...] | None = None
    responder: bool = False


@dataclass(frozen=True)
class PodPlan:
    namespace: str
    name: str
    host: str
    host_netns: str
    netns: str
    host_ifname: str
    ip: IPv4Address
    ports: tuple[PortPlan, ...] = ()
    container: ContainerPlan | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def mac(self) -> str:
        return pod_mac(self.ip)


def pod_mac(ip: IPv4Address) -> str:
    """The pod's eth0 MAC: `0a:58:` + its IPv4 address (locally administered, as Kubernetes' CNIs do).

    Known in advance, so the host can hold a permanent neighbour entry for the pod (see plumbing.py).
    """
    return "0a:58:" + ":".join(f"{b:02x}" for b in ip.packed)


@dataclass(frozen=True)
class TopologyPlan:
    lab: str
    fabric: FabricPlan
    nodes: tuple[NodePlan, ...]
    pods: tuple[PodPlan, ...] = ()

    def node(self, name: str) -> NodePlan:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def hosts(self) -> tuple[NodePlan, ...]:
        return tuple(n for n in self.nodes if n.kind == "host")


def plan_fabric(lab: str, subnet: IPv4Network | str, gateway: IPv4Address | str | None = None) -> FabricPlan:
    """The gateway defaults to the subnet's last usable address."""
    net = IPv4Network(subnet)
    gw = IPv4Address(gateway) if gateway is not None else net.broadcast_address - 1
    return FabricPlan(lab=lab, subnet=net, gateway=IPv4Interface(f"{gw}/{net.prefixlen}"))


def node_netns(lab: str, name: str, kind: NodeKind) -> str:
    if kind == "host":
        return names.host_netns(lab, name)
    if kind == "external":
        return names.external_netns(lab, name)
    if kind == "reflector":
        # Reflectors are called `rr<N>` by the lab; other names keep a readable namespace of their own.
        suffix = name[2:]
        if name.startswith("rr") and suffix.isdigit():
            return names.route_reflector_netns(lab, int(suffix))
        return f"{names.lab_netns_prefix(lab)}rr-{name}"
    raise ValueError(f"unknown node kind {kind!r}")


def plan_node(lab: str, name: str, kind: NodeKind, fabric_ip: IPv4Interface | str) -> NodePlan:
    return NodePlan(
        name=name,
        kind=kind,
        netns=node_netns(lab, name, kind),
        fabric_ip=IPv4Interface(fabric_ip),
        fabric_port=names.fabric_port_ifname(kind, name),
    )


def plan_ports(ports: Iterable[tuple[int, str] | tuple[int, str, str | None] | PortPlan]) -> tuple[PortPlan, ...]:
    out = []
    for p in ports:
        out.append(p if isinstance(p, PortPlan) else PortPlan(*p))
    return tuple(out)


def plan_pod(
    lab: str,
    namespace: str,
    name: str,
    host: str,
    ip: IPv4Address | str,
    ports: Iterable[tuple[int, str] | tuple[int, str, str | None] | PortPlan] = (),
    container: ContainerPlan | None = None,
) -> PodPlan:
    return PodPlan(
        namespace=namespace,
        name=name,
        host=host,
        host_netns=names.host_netns(lab, host),
        netns=names.pod_netns(lab, namespace, name),
        host_ifname=names.pod_host_ifname(namespace, name),
        ip=IPv4Address(ip),
        ports=plan_ports(ports),
        container=container,
    )
