"""Pure rendering of the `ip -batch` lines that create namespaces and veths.

Every link is created directly inside its target namespace (`netns A ... peer ... netns B`): nothing ever
appears in the root namespace, not even for a moment. The in-namespace end of every node and pod veth is
`eth0` with ifindex 2 (lo is always 1), so in-process configuration never has to look an index up.
"""

from __future__ import annotations

from collections.abc import Iterable

from topology.kernel_text import token
from topology.model import HOST_VETH_MAC, NODE_IFNAME, POD_IFNAME, FabricPlan, NodePlan, PodPlan

ETH0_INDEX = 2
BRIDGE_INDEX = 2


def netns_add(names: Iterable[str]) -> list[str]:
    return [f"netns add {token(name, 'namespace')}" for name in names]


def netns_delete(names: Iterable[str]) -> list[str]:
    return [f"netns del {token(name, 'namespace')}" for name in names]


def fabric_bridge(fabric: FabricPlan) -> str:
    # No STP and no forwarding delay: ports forward the moment they come up.
    return (
        f"link add {token(fabric.bridge)} index {BRIDGE_INDEX} netns {token(fabric.netns)} "
        "type bridge stp_state 0 forward_delay 0"
    )


def node_veth(fabric: FabricPlan, node: NodePlan) -> str:
    return (
        f"link add {token(node.fabric_port)} netns {token(fabric.netns)} "
        f"type veth peer name {NODE_IFNAME} index {ETH0_INDEX} netns {token(node.netns)}"
    )


def pod_veth(pod: PodPlan) -> str:
    return (
        f"link add {token(pod.host_ifname)} address {HOST_VETH_MAC} netns {token(pod.host_netns)} "
        f"type veth peer name {POD_IFNAME} address {token(pod.mac)} index {ETH0_INDEX} netns {token(pod.netns)}"
    )


def netns_attach(name: str, pid: int) -> str:
    """Name the network namespace of a running process (a Mininet node's shell, a container)."""
    return f"netns attach {token(name, 'namespace')} {int(pid)}"


def fabric_lines(fabric: FabricPlan, nodes: Iterable[NodePlan]) -> list[str]:
    """Namespaces of the fabric and the nodes, the bridge, and one veth per node."""
    nodes = list(nodes)
    lines = netns_add([fabric.netns] + [n.netns for n in nodes]) + [fabric_bridge(fabric)]
    return lines + node_veths(fabric, nodes)


def node_veths(fabric: FabricPlan, nodes: Iterable[NodePlan]) -> list[str]:
    return [node_veth(fabric, n) for n in nodes]


def node_lines(fabric: FabricPlan, nodes: Iterable[NodePlan]) -> list[str]:
    """Nodes added to a running fabric: their namespaces and veths to the existing bridge's namespace."""
    nodes = list(nodes)
    return netns_add(n.netns for n in nodes) + node_veths(fabric, nodes)


def pod_lines(pods: Iterable[PodPlan], new_namespaces: bool = True) -> list[str]:
    """Namespaces first, then veths (a veth line needs both of its namespaces). A container pod's
    namespace is the container's, already named by the Docker side: it only gets its veth; so do all
    pods when another engine made their namespaces (`new_namespaces` False)."""
    pods = list(pods)
    made = netns_add(p.netns for p in pods if p.container is None) if new_namespaces else []
    return made + [pod_veth(p) for p in pods]
