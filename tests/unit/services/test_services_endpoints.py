"""Endpoints of Services (selectors, named target ports per pod) and ClusterIP allocation."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.endpoints import Backend, ClusterIPAllocator, ClusterIPError, resolve
from services.nat import render
from services.objects import Service, ServicePort


def svc(name: str = "web", selector: dict[str, str] | None = None, target: int | str = "http",
        ip: str | None = "10.96.0.20") -> Service:
    return Service("dev", name, tuple(sorted((selector or {"app": "web"}).items())),
                   (ServicePort("http", "TCP", 80, target),), IPv4Address(ip) if ip else None)


def pod(name: str, ip: str, labels: dict[str, str], http: int | None = 8080, namespace: str = "dev") -> Backend:
    return Backend(namespace, name, IPv4Address(ip), labels, {("http", "TCP"): http} if http else {})


def test_named_target_port_maps_per_pod_and_pods_without_it_are_no_endpoints() -> None:
    pods = [pod("a", "10.0.0.1", {"app": "web"}, 8080), pod("b", "10.0.0.2", {"app": "web"}, 9000),
            pod("c", "10.0.0.3", {"app": "web"}, None), pod("d", "10.0.0.4", {"app": "db"}),
            pod("e", "10.0.0.5", {"app": "web"}, namespace="prod")]
    (found,) = resolve([svc()], pods)
    assert [(e.backend.name, e.port) for e in found.endpoints(found.service.ports[0])] == [("a", 8080), ("b", 9000)]


def test_numeric_target_port_needs_no_declared_port_and_selectors_and_all_labels() -> None:
    pods = [pod("a", "10.0.0.1", {"app": "web", "tier": "x"}, None), pod("b", "10.0.0.2", {"app": "web"}, None)]
    (found,) = resolve([svc(selector={"app": "web", "tier": "x"}, target=8080)], pods)
    assert [(e.backend.name, e.port) for _, eps in found.by_port for e in eps] == [("a", 8080)]


def test_services_without_cluster_ip_or_selector() -> None:
    assert resolve([svc(ip=None)], [pod("a", "10.0.0.1", {"app": "web"})]) == []
    empty = Service("dev", "manual", (), (ServicePort(None, "TCP", 80, 80),), IPv4Address("10.96.0.30"))
    (found,) = resolve([empty], [pod("a", "10.0.0.1", {"app": "web"})])
    assert found.by_port[0][1] == ()


def test_rendered_table_dnats_to_each_endpoint_and_rejects_the_rest() -> None:
    pods = [pod("a", "10.0.0.1", {"app": "web"}), pod("b", "10.0.0.2", {"app": "web"})]
    text = render(resolve([svc(), svc("idle", {"app": "none"}, ip="10.96.0.21")], pods))
    assert "10.96.0.20 . tcp . 80 : goto svc-" in text
    assert "numgen random mod 2 vmap" in text
    assert "dnat to 10.0.0.1:8080" in text and "dnat to 10.0.0.2:8080" in text
    assert "10.96.0.21 . tcp" not in text  # no endpoint: not translated...
    assert "elements = { 10.96.0.20, 10.96.0.21 }" in text  # ...but rejected as a ClusterIP
    assert text.startswith("table ip services\ndelete table ip services\n")  # one atomic replacement


def test_allocator_keeps_reserved_and_fabric_addresses_and_refuses_clashes() -> None:
    alloc = ClusterIPAllocator(IPv4Network("10.96.0.0/12"), excluded=(IPv4Network("10.96.0.0/28"),))
    first = alloc.allocate("dev/a")
    assert first == IPv4Address("10.96.0.16")
    assert alloc.check(first, "dev/b") == "10.96.0.16 is already the ClusterIP of Service dev/a"
    assert alloc.check(first, "dev/a") is None
    assert "fabric" in (alloc.check(IPv4Address("10.96.0.10"), "x/y") or "")
    assert "not a usable address" in (alloc.check(IPv4Address("10.200.0.1"), "x/y") or "")
    with pytest.raises(ClusterIPError):
        alloc.claim(first, "dev/b")
    full = ClusterIPAllocator(IPv4Network("10.96.0.0/28"))
    with pytest.raises(ClusterIPError, match="full"):
        full.allocate("x/y")


@given(st.lists(st.text("abc", min_size=1, max_size=3), min_size=1, max_size=60, unique=True))
def test_allocations_are_unique_in_range_and_outside_exclusions(owners: list[str]) -> None:
    cidr, fabric = IPv4Network("10.96.0.0/24"), IPv4Network("10.96.0.32/27")
    alloc = ClusterIPAllocator(cidr, excluded=(fabric,))
    ips = [alloc.allocate(o) for o in owners]
    assert len(set(ips)) == len(ips)
    assert all(ip in cidr and ip not in fabric and int(ip) - int(cidr.network_address) >= 16 for ip in ips)
