"""The scratch lab's plan: a topology-engine plan (Calico plumbing by the engine) plus static block routes."""

from __future__ import annotations

from topology import names
from topology.validation import check_plan
from traffic.scratch_lab import ScratchLab


def test_plan_is_a_valid_topology_with_every_name_from_the_lab() -> None:
    lab = ScratchLab("tr9", pods_per_host=(3, 2), namespaces=2)
    plan = lab.plan()
    check_plan(plan)
    prefix = names.lab_netns_prefix("tr9")
    assert all(n.netns.startswith(prefix) for n in plan.nodes) and all(p.netns.startswith(prefix) for p in plan.pods)
    assert [n.name for n in plan.nodes] == ["h1", "h2"] and len(plan.pods) == 5
    assert {p.host for p in plan.pods} == {"h1", "h2"}


def test_each_host_routes_every_other_hosts_block_via_its_fabric_address() -> None:
    lab = ScratchLab("tr9", pods_per_host=(1, 1, 1))
    routes = lab.static_routes()
    assert routes[0] == [(lab.block(1), lab.host_ip(1)), (lab.block(2), lab.host_ip(2))]
    assert all(len(r) == 2 for r in routes.values())
    assert len({lab.host_ip(i) for i in range(3)}) == 3


def test_endpoints_are_unique_and_pods_sit_in_their_hosts_block() -> None:
    lab = ScratchLab("tr9", pods_per_host=(750, 750), namespaces=3)
    endpoints = lab.probe_endpoints()
    assert len({e.ip for e in endpoints}) == len(endpoints) == 1502
    for host, _, _, ip in lab.pods():
        assert ip in lab.block(host)
    assert {e.group for e in endpoints if e.kind == "pod"} == {"ns0", "ns1", "ns2"}
