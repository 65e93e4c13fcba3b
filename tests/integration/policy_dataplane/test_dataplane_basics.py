"""Real packets through the compiled nftables program: no policy, fail closed, Kubernetes isolation."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataplane_lab import HOSTS, LAB, DataplaneLab

from policy_dataplane.dataplane.conntrack import SYN_SENT_TIMEOUT_S
from topology import names, netns
from traffic.model import Protocol

pytestmark = pytest.mark.root
TCP, UDP, SCTP, ICMP = Protocol.TCP, Protocol.UDP, Protocol.SCTP, Protocol.ICMP


@pytest.mark.on_every_engine
def test_no_policy_allows_everything_same_host_cross_host_and_outside(lab: DataplaneLab) -> None:
    lab.sync()
    lab.expect([
        ("ns0/p0", "ns1/p1", TCP, 8080, True), ("ns0/p0", "ns1/p3", UDP, 53, True),
        ("ns1/p3", "ns0/p2", SCTP, 3868, True), ("ns0/p4", "ns0/p0", ICMP, 0, True),
        ("ns0/p0", "h2", TCP, 22, True), ("h2", "ns1/p1", TCP, 80, True), ("h1", "ns0/p2", ICMP, 0, True),
    ])


def test_fail_closed_until_the_endpoint_is_programmed(lab: DataplaneLab) -> None:
    # The base program knows no interface yet: every cali* interface is dropped, both ways.
    lab.expect([
        ("ns0/p0", "ns1/p1", TCP, 8080, False), ("ns1/p3", "ns0/p2", UDP, 53, False),
        ("h2", "ns1/p1", ICMP, 0, False), ("h1", "ns0/p2", ICMP, 0, False), ("ns0/p4", "h2", TCP, 22, False),
    ])
    lab.sync()
    lab.expect([("ns0/p0", "ns1/p1", TCP, 8080, True), ("h2", "ns1/p1", ICMP, 0, True)])


def test_pod_unknown_to_the_world_stays_cut_off(lab: DataplaneLab) -> None:
    lab.world.delete([("Pod", ("ns0", "p2"))])
    lab.sync()
    lab.expect([("ns0/p0", "ns0/p2", TCP, 8080, False), ("ns0/p2", "ns0/p0", TCP, 8080, False),
                ("ns0/p0", "ns1/p1", TCP, 8080, True)])


K8S_DENY_INGRESS_NS1 = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: ns1}
spec: {podSelector: {}}
"""

K8S_ALLOW_TEAM_A_HTTP = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-a, namespace: ns1}
spec:
  podSelector: {matchLabels: {app: p1}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: a}}}]
    ports: [{port: http}]
"""


@pytest.mark.on_every_engine
def test_kubernetes_default_deny_ingress_isolates_only_selected_direction(lab: DataplaneLab) -> None:
    lab.apply(K8S_DENY_INGRESS_NS1)
    lab.expect([
        ("ns0/p0", "ns1/p1", TCP, 8080, False), ("ns0/p4", "ns1/p3", UDP, 53, False),
        ("ns0/p0", "ns1/p3", ICMP, 0, False), ("h2", "ns1/p1", TCP, 80, False),
        ("ns1/p1", "ns0/p0", TCP, 8080, True),  # egress not isolated, and replies pass
        ("ns1/p3", "h2", UDP, 53, True), ("ns0/p0", "ns0/p2", TCP, 8080, True),
    ])


def test_allow_from_namespace_on_named_port(lab: DataplaneLab) -> None:
    lab.apply(K8S_DENY_INGRESS_NS1 + "---" + K8S_ALLOW_TEAM_A_HTTP)
    lab.expect([
        ("ns0/p0", "ns1/p1", TCP, 8080, True), ("ns0/p4", "ns1/p1", TCP, 8080, True),  # same host, cross host
        ("ns0/p0", "ns1/p1", TCP, 8081, False), ("ns0/p0", "ns1/p1", UDP, 8080, False),
        ("ns1/p3", "ns1/p1", TCP, 8080, False), ("h2", "ns1/p1", TCP, 8080, False),
        ("ns0/p0", "ns1/p3", TCP, 8080, False),
    ])



def test_hosts_keep_half_open_flows_briefly_and_the_root_namespace_is_untouched(lab: DataplaneLab) -> None:
    """Denied SYNs leave half-open conntrack entries on the source's host: kept SYN_SENT_TIMEOUT_S there
    (policy_dataplane/dataplane/conntrack.py), while the machine's own namespace keeps its setting."""
    assert_half_open_timeout()


def test_iptables_hosts_keep_half_open_flows_briefly_too(iptables_lab: DataplaneLab) -> None:
    assert_half_open_timeout()


def assert_half_open_timeout() -> None:
    key = "net/netfilter/nf_conntrack_tcp_timeout_syn_sent"
    for host in HOSTS:
        assert netns.run_in(names.host_netns(LAB, host), ["cat", f"/proc/sys/{key}"]).strip() == str(SYN_SENT_TIMEOUT_S)
    assert (Path("/proc/sys") / key).read_text().strip() != str(SYN_SENT_TIMEOUT_S)
