"""The scratch lab's plan: Calico-style plumbing, names from topology.names, nothing outside its namespaces."""

from __future__ import annotations

from topology import names
from traffic.scratch_lab import CALICO_MAC, GATEWAY, ScratchLab


def test_every_command_targets_one_of_the_labs_namespaces() -> None:
    lab = ScratchLab("tr9", pods_per_host=(3, 2, 1))
    owned = set(lab.all_netns())
    assert all(ns.startswith(names.lab_netns_prefix("tr9")) for ns in owned)
    assert {ns for ns, _ in lab.plan_links()} <= owned
    assert {ns for ns, _ in lab.plan_sysctls()} <= owned


def test_pods_are_plumbed_like_calico() -> None:
    lab = ScratchLab("tr9", pods_per_host=(1,))
    (host, ns, pod, ip), = lab.pods()
    cali = names.pod_host_ifname(ns, pod)
    plan = lab.plan_links()
    pod_ns = names.pod_netns("tr9", ns, pod)
    assert (pod_ns, f"addr add {ip}/32 dev eth0") in plan
    assert (pod_ns, f"route add default via {GATEWAY} dev eth0") in plan
    assert (lab.host_netns(0), f"link set {cali} address {CALICO_MAC} up") in plan
    assert (lab.host_netns(0), f"route add {ip}/32 dev {cali} scope link") in plan
    sysctls = dict(lab.plan_sysctls()[-1:])[lab.host_netns(0)]
    assert (f"net.ipv4.conf.{cali}.proxy_arp", "1") in sysctls


def test_endpoints_are_unique_and_pods_sit_in_their_hosts_block() -> None:
    lab = ScratchLab("tr9", pods_per_host=(750, 750), namespaces=3)
    endpoints = lab.probe_endpoints()
    assert len({e.ip for e in endpoints}) == len(endpoints) == 1502
    for host, _, _, ip in lab.pods():
        assert ip in lab.block(host)
    assert {e.group for e in endpoints if e.kind == "pod"} == {"ns0", "ns1", "ns2"}
