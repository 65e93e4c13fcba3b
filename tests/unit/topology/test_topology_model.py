"""Plans derive every kernel name from topology.names and validate all mistakes at once."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface

import pytest

from topology import names
from topology.model import PortPlan, plan_fabric, plan_node, plan_pod
from topology.names import PREFIX
from topology.validation import PlanError, check_new_pods, check_plan, plan_errors


def test_plan_helpers_use_the_lab_names() -> None:
    pod = plan_pod("tt1", "dev", "web", "h1", "10.200.0.1", [(80, "TCP", "http"), (53, "UDP")])
    assert pod.netns == f"{PREFIX}-tt1-p-dev.web"
    assert pod.host_netns == f"{PREFIX}-tt1-h-h1"
    assert pod.host_ifname.startswith("cali") and len(pod.host_ifname) == 15
    assert pod.ports == (PortPlan(80, "TCP", "http"), PortPlan(53, "UDP"))
    assert pod.mac == "0a:58:0a:c8:00:01"  # locally administered unicast, from the address
    assert plan_node("tt1", "srv", "external", "10.99.0.10/24").netns == f"{PREFIX}-tt1-x-srv"
    assert plan_node("tt1", "rr1", "reflector", "10.99.0.20/24").netns == f"{PREFIX}-tt1-rr1"
    fabric = plan_fabric("tt1", "10.99.0.0/24")
    assert fabric.gateway == IPv4Interface("10.99.0.254/24")
    assert fabric.netns == names.fabric_netns("tt1")


def test_a_good_plan_passes(plan) -> None:  # type: ignore[no-untyped-def]
    assert plan_errors(plan) == []
    check_plan(plan)


def test_every_mistake_is_reported_at_once(plan) -> None:  # type: ignore[no-untyped-def]
    h1, h2, srv, rr = plan.nodes
    web, api, db = plan.pods
    bad = replace(
        plan,
        nodes=(
            h1,
            replace(h2, fabric_ip=IPv4Interface("10.98.0.2/24")),  # outside the fabric
            replace(srv, fabric_ip=IPv4Interface("10.99.0.254/24")),  # the gateway
            replace(rr, fabric_port=h1.fabric_port),  # port clash
        ),
        pods=(
            web,
            replace(api, ip=web.ip),  # duplicate address
            replace(db, host="nope", ports=(PortPlan(0, "TCP"), PortPlan(5, "ICMP"))),  # type: ignore[arg-type]
        ),
    )
    with pytest.raises(PlanError) as caught:
        check_plan(bad)
    text = "\n".join(caught.value.errors)
    assert "node h2: fabric address 10.98.0.2/24 is not in the fabric" in text
    assert "node srv: fabric address 10.99.0.254 is the fabric gateway" in text
    assert f"fabric port {h1.fabric_port}: used by two nodes" in text
    assert "address 10.200.0.1: given to two pods" in text
    assert "pod prod/db: host 'nope' is not a host of the lab" in text
    assert "pod prod/db: port 0 is outside 1-65535" in text
    assert "pod prod/db: protocol 'ICMP'" in text
    assert len(caught.value.errors) == 7


def test_names_outside_the_lab_and_long_ifnames_are_refused(plan) -> None:  # type: ignore[no-untyped-def]
    web = plan.pods[0]
    bad = replace(plan, pods=(replace(web, netns="other-ns", host_ifname="x" * 16),))
    errors = plan_errors(bad)
    assert any(f"must start with the lab prefix '{PREFIX}-tt1-'" in e for e in errors)
    assert any("interface name" in e and "1-15" in e for e in errors)


def test_pods_cannot_take_the_pod_gateway_or_a_fabric_address(plan) -> None:  # type: ignore[no-untyped-def]
    web = plan.pods[0]
    bad = replace(plan, pods=(replace(web, ip=IPv4Address("169.254.1.1")), replace(plan.pods[1], ip=IPv4Address("10.99.0.1"))))
    errors = plan_errors(bad)
    assert "pod dev/web: address 169.254.1.1 cannot be a pod address" in errors
    assert "pod dev/api: address 10.99.0.1 is a fabric address" in errors


def test_duplicate_ports_and_pod_host_mismatch(plan) -> None:  # type: ignore[no-untyped-def]
    web = plan.pods[0]
    bad = replace(
        plan, pods=(replace(web, host_netns=f"{PREFIX}-tt1-h-h2", ports=(PortPlan(80), PortPlan(80), PortPlan(80, "UDP"))),)
    )
    errors = plan_errors(bad)
    assert "pod dev/web: port 80/TCP declared twice" in errors
    assert any(f"host namespace '{PREFIX}-tt1-h-h2' is not host h1's" in e for e in errors)
    assert not any("80/UDP" in e for e in errors)


def test_new_pods_must_not_exist_and_need_their_host() -> None:
    new = plan_pod("tt1", "dev", "extra", "h1", "10.200.0.9")
    check_new_pods("tt1", [new], [f"{PREFIX}-tt1-h-h1"])
    with pytest.raises(PlanError, match="already exists"):
        check_new_pods("tt1", [new], [f"{PREFIX}-tt1-h-h1", new.netns])
    with pytest.raises(PlanError, match=f"host namespace '{PREFIX}-tt1-h-h1' does not exist"):
        check_new_pods("tt1", [new], [])
    with pytest.raises(PlanError, match="declared twice"):
        check_new_pods("tt1", [new, new], [f"{PREFIX}-tt1-h-h1"])
