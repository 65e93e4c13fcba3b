"""A running lab as Mininet nodes and links, for `lab cli`: names as users type them (node1, tasks, rr1,
dev/web, fabric), each with its interfaces and addresses, and every veth as a link. Pure: read from plans."""

from __future__ import annotations

from collections import defaultdict
from ipaddress import IPv4Interface

from lab.runtime import LabRuntime
from topology.mininet_cli import CliLink, CliNode
from topology.model import NODE_IFNAME, POD_IFNAME, NodePlan, PodPlan, TopologyPlan

FABRIC_NODE = "fabric"


def lab_view(plan: TopologyPlan) -> tuple[list[CliNode], list[CliLink]]:
    pods_of: dict[str, list[PodPlan]] = defaultdict(list)
    for pod in plan.pods:
        pods_of[pod.host].append(pod)

    def node(n: NodePlan) -> CliNode:
        cali = tuple((p.host_ifname, None) for p in pods_of.get(n.name, []))
        return CliNode(n.name, n.netns, n.kind, ((NODE_IFNAME, n.fabric_ip), *cali))

    nodes = [node(n) for n in plan.nodes]
    nodes += [CliNode(p.key, p.netns, "pod", ((POD_IFNAME, IPv4Interface(f"{p.ip}/32")),)) for p in plan.pods]
    fabric = plan.fabric
    nodes.append(CliNode(FABRIC_NODE, fabric.netns, "fabric",
                         ((fabric.bridge, fabric.gateway), *((n.fabric_port, None) for n in plan.nodes))))
    links = [CliLink(n.name, NODE_IFNAME, FABRIC_NODE, n.fabric_port) for n in plan.nodes]
    links += [CliLink(p.key, POD_IFNAME, p.host, p.host_ifname) for p in plan.pods]
    return nodes, links


def runtime_view(runtime: LabRuntime) -> tuple[list[CliNode], list[CliLink]]:
    from lab.fabric import Fabric
    from lab.pod_plans import pod_plans

    return lab_view(Fabric(runtime).topology_plan(pod_plans(runtime)))
