"""Pure: the netlink requests and settings that plumb each namespace, the way Calico does it.

Pod:   lo up, eth0 up, ip/32 on eth0, `169.254.1.1 dev eth0 scope link`, `default via 169.254.1.1`.
Host:  per pod, the `cali…` end up (MAC ee:ee:… set at creation), proxy ARP, `ip/32 dev cali… scope link`.
Node:  lo up, eth0 up with its fabric address, default via the fabric gateway.
Fabric: the bridge up with the gateway address, every node port enslaved and up.

Static neighbours (on by default): the pod holds a permanent ARP entry for 169.254.1.1 (ee:ee:…) and the
host one for the pod's address. The kernel's ARP table is shared by every namespace and, past
gc_thresh3 (1024, settable only in the root namespace, which the lab never touches), refuses new dynamic
entries: measured with 1500 pods, connections then time out ("neighbor table overflow"). Permanent
entries are exempt from that limit. Proxy ARP stays configured exactly as Calico does it; with
`static_neighbours=False` it is what answers the pod's ARP for 169.254.1.1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from ipaddress import IPv4Interface, IPv4Network

from topology import rtnl, sysctl
from topology.batch import BRIDGE_INDEX, ETH0_INDEX
from topology.model import HOST_VETH_MAC, NODE_IFNAME, POD_GATEWAY, POD_IFNAME, FabricPlan, NodePlan, PodPlan
from topology.rtnl import Request

DEFAULT_ROUTE = IPv4Network("0.0.0.0/0")


def loopback_up() -> Request:
    return rtnl.link_set("lo")


def pod_requests(pod: PodPlan, static_neighbours: bool = True) -> list[Request]:
    requests = [
        loopback_up(),
        rtnl.link_configure(POD_IFNAME, {}),
        rtnl.link_set(POD_IFNAME),
        rtnl.addr_add(ETH0_INDEX, IPv4Interface(f"{pod.ip}/32")),
        rtnl.route_add(IPv4Network(f"{POD_GATEWAY}/32"), oif=ETH0_INDEX, scope=rtnl.RT_SCOPE_LINK),
        rtnl.route_add(DEFAULT_ROUTE, gateway=POD_GATEWAY, oif=ETH0_INDEX),
    ]
    if static_neighbours:
        requests.append(rtnl.neigh_add_permanent(ETH0_INDEX, POD_GATEWAY, HOST_VETH_MAC))
    return requests


def host_pod_requests(
    pods: Iterable[PodPlan], indexes: Mapping[str, int], static_neighbours: bool = True
) -> list[Request]:
    """Requests in the host namespace; `indexes` maps the host's interface names to ifindexes."""
    requests = []
    for pod in pods:
        index = indexes[pod.host_ifname]
        requests += [
            rtnl.link_configure(pod.host_ifname, sysctl.WORKLOAD_DEVCONF),
            rtnl.arp_proxy_delay(index, sysctl.WORKLOAD_PROXY_DELAY_MS),
            rtnl.link_set(pod.host_ifname),
            rtnl.route_add(IPv4Network(f"{pod.ip}/32"), oif=index),
        ]
        if static_neighbours:
            requests.append(rtnl.neigh_add_permanent(index, pod.ip, pod.mac))
    return requests


def node_settings(node: NodePlan) -> list[sysctl.Setting]:
    return list(sysctl.node_settings(node.kind))


def node_requests(node: NodePlan, fabric: FabricPlan) -> list[Request]:
    devconf = sysctl.UPLINK_DEVCONF if node.kind == "host" else {}
    return [
        loopback_up(),
        rtnl.link_configure(NODE_IFNAME, devconf),
        rtnl.link_set(NODE_IFNAME),
        rtnl.addr_add(ETH0_INDEX, node.fabric_ip),
        rtnl.route_add(DEFAULT_ROUTE, gateway=fabric.gateway.ip, oif=ETH0_INDEX),
    ]


def fabric_settings() -> list[sysctl.Setting]:
    return list(sysctl.COMMON + sysctl.FABRIC)


def fabric_requests(fabric: FabricPlan, nodes: Iterable[NodePlan]) -> list[Request]:
    requests = [loopback_up(), rtnl.link_configure(fabric.bridge, {}), rtnl.link_set(fabric.bridge)]
    if fabric.holds_gateway:
        requests.append(rtnl.addr_add(BRIDGE_INDEX, fabric.gateway))
    return requests + fabric_port_requests(nodes)


def fabric_port_requests(nodes: Iterable[NodePlan]) -> list[Request]:
    """Each node's fabric-side veth end up and enslaved to the bridge (at build, or for a node added later)."""
    requests = []
    for node in nodes:
        requests += [rtnl.link_configure(node.fabric_port, {}), rtnl.link_set(node.fabric_port, master=BRIDGE_INDEX)]
    return requests
