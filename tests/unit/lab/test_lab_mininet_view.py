"""The lab as Mininet sees it in `lab cli`: names users type, interfaces with addresses, every veth a link."""

from __future__ import annotations

from ipaddress import IPv4Interface

from lab.mininet_view import FABRIC_NODE, lab_view
from topology.model import TopologyPlan, plan_fabric, plan_node, plan_pod


def test_nodes_pods_and_fabric_with_their_links() -> None:
    plan = TopologyPlan("tt1", plan_fabric("tt1", "10.99.0.0/24"),
                        (plan_node("tt1", "node1", "host", "10.99.0.1/24"),
                         plan_node("tt1", "tasks", "external", "10.99.0.9/24")),
                        (plan_pod("tt1", "dev", "web", "node1", "192.168.0.1"),))  # fmt: skip
    nodes, links = lab_view(plan)
    by_name = {n.name: n for n in nodes}
    assert sorted(by_name) == ["dev/web", FABRIC_NODE, "node1", "tasks"]
    web, node1 = by_name["dev/web"], by_name["node1"]
    assert web.netns == "npl-tt1-p-dev.web" or web.netns.endswith("-p-dev.web")
    assert web.addresses == (("eth0", IPv4Interface("192.168.0.1/32")),)
    assert node1.addresses[0] == ("eth0", IPv4Interface("10.99.0.1/24"))
    assert node1.addresses[1] == (plan.pods[0].host_ifname, None)
    assert by_name[FABRIC_NODE].addresses[0] == ("npl-fabric", IPv4Interface("10.99.0.254/24")) or \
        by_name[FABRIC_NODE].addresses[0][1] == IPv4Interface("10.99.0.254/24")
    ends = {(ln.node1, ln.intf1, ln.node2, ln.intf2) for ln in links}
    assert ("dev/web", "eth0", "node1", plan.pods[0].host_ifname) in ends
    assert ("tasks", "eth0", FABRIC_NODE, plan.nodes[1].fabric_port) in ends
    assert len(links) == 3
