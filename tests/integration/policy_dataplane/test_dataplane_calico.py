"""Calico semantics through real packets: tiers, order, Pass, Log, Deny, nets/notNets, ipBlock except,
ports, ranges, notPorts, protocols, ICMP type/code, network sets. Every pair of endpoints is probed and
compared with the oracle; a few verdicts are also spelled out so that a wrong oracle cannot hide a bug."""

from __future__ import annotations

import pytest
from dataplane_lab import DataplaneLab, assert_matches_oracle

from traffic.model import Protocol

pytestmark = pytest.mark.root
TCP, UDP, SCTP, ICMP = Protocol.TCP, Protocol.UDP, Protocol.SCTP, Protocol.ICMP
SERVICES = [(TCP, 8080), (TCP, 9005), (UDP, 53), (UDP, 5353), (SCTP, 3868), (ICMP, 0)]

TIERS = """
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.quarantine}
spec:
  tier: security
  order: 10
  selector: quarantine == "true"
  types: [Ingress, Egress]
  ingress: [{action: Log}, {action: Deny}]
  egress: [{action: Log}, {action: Deny}]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.block-sctp-then-pass}
spec:
  tier: security
  order: 20
  selector: all()
  types: [Ingress]
  ingress:
  - {action: Deny, protocol: SCTP, destination: {selector: app == "p1"}}
  - {action: Pass}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p1-server, namespace: ns1}
spec:
  selector: app == "p1"
  order: 5
  types: [Ingress]
  ingress:
  - {action: Allow, protocol: TCP, source: {selector: app == "p0", namespaceSelector: all()},
     destination: {ports: [8080, "9000:9010"]}}
  - {action: Allow, protocol: UDP, destination: {notPorts: [53]}}
  - {action: Allow, protocol: ICMP, icmp: {type: 8, code: 0}, source: {namespaceSelector: team == "a"}}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p3-lower-order-denies-first, namespace: ns1}
spec:
  selector: app == "p3"
  order: 1
  types: [Ingress]
  ingress:
  - {action: Deny, protocol: TCP, destination: {ports: [9005]}}
  - {action: Allow, notProtocol: TCP}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p3-later, namespace: ns1}
spec:
  selector: app == "p3"
  order: 2
  types: [Ingress]
  ingress: [{action: Allow, protocol: TCP}]
"""


@pytest.mark.on_every_engine
def test_tiers_pass_order_deny_log_ports_icmp(lab: DataplaneLab) -> None:
    lab.apply(TIERS)
    lab.world.label_pod("ns0", "p2", quarantine="true")
    lab.sync()
    assert_matches_oracle(lab, SERVICES)
    lab.expect([
        ("ns0/p0", "ns1/p1", TCP, 9005, True), ("ns0/p4", "ns1/p1", TCP, 9005, False),  # source selector
        ("ns0/p0", "ns1/p1", TCP, 9011, False), ("ns0/p4", "ns1/p1", UDP, 5353, True),  # range end, notPorts
        ("ns0/p4", "ns1/p1", UDP, 53, False), ("ns0/p0", "ns1/p1", SCTP, 3868, False),  # security tier Deny
        ("ns0/p4", "ns1/p1", ICMP, 0, True), ("ns1/p3", "ns1/p1", ICMP, 0, False),  # icmp from team a only
        ("ns0/p0", "ns1/p3", TCP, 9005, False), ("ns0/p0", "ns1/p3", TCP, 8080, True),  # order
        ("ns0/p0", "ns1/p3", SCTP, 3868, True),  # passed by security, allowed by notProtocol
        ("ns0/p2", "ns0/p0", TCP, 8080, False), ("ns0/p0", "ns0/p2", TCP, 8080, False),  # quarantine
        ("h2", "ns0/p2", ICMP, 0, False), ("ns0/p0", "ns0/p4", TCP, 8080, True),
    ])


NETS = """  # a template: lab.fill() puts in the lab's addresses
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: uplinks, labels: {kind: uplink}}
spec: {nets: [$uplinks]}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: egress-uplinks-only, namespace: ns0}
spec:
  selector: app == "p0"
  types: [Egress]
  egress:
  - {action: Allow, destination: {selector: kind == "uplink", namespaceSelector: global(), notNets: [$h2/32]}}
  - {action: Allow, protocol: UDP, destination: {nets: [$pool], notNets: [$h2_block]}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-ipblock, namespace: ns0}
spec:
  podSelector: {matchLabels: {app: p4}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: $h1_block, except: [$ns0_p0/32]}}]
    ports: [{protocol: TCP, port: 8080, endPort: 8090}, {protocol: SCTP, port: 3868}]
"""


def test_network_sets_nets_not_nets_ip_block_except(lab: DataplaneLab) -> None:
    lab.apply(lab.fill(NETS))
    assert_matches_oracle(lab, SERVICES)
    lab.expect([
        ("ns0/p0", "h1", TCP, 22, True), ("ns0/p0", "h2", TCP, 22, False),  # network set minus notNets
        ("ns0/p0", "ns1/p1", UDP, 53, True), ("ns0/p0", "ns1/p3", UDP, 53, False),  # nets minus notNets
        ("ns0/p0", "ns1/p1", TCP, 8080, False),
        ("ns0/p4", "ns1/p1", TCP, 8090, True), ("ns0/p4", "ns0/p0", TCP, 8080, False),  # except
        ("ns0/p4", "ns1/p1", TCP, 8091, False), ("ns0/p4", "ns0/p2", SCTP, 3868, True),
        ("ns0/p4", "h2", TCP, 8080, False), ("ns1/p3", "ns0/p4", TCP, 8080, True),  # ingress not isolated
    ])


@pytest.mark.on_every_engine
def test_pod_to_pod_on_one_host_needs_both_egress_and_ingress(lab: DataplaneLab) -> None:
    lab.apply("""
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p0-egress-to-p1, namespace: ns0}
spec:
  selector: app == "p0"
  types: [Egress]
  egress: [{action: Allow, destination: {selector: app == "p1", namespaceSelector: all()}}]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p1-ingress-from-p2, namespace: ns1}
spec:
  selector: app == "p1"
  types: [Ingress]
  ingress: [{action: Allow, source: {selector: app == "p2", namespaceSelector: all()}}]
""")
    assert_matches_oracle(lab, [(TCP, 8080), (ICMP, 0)])
    lab.expect([("ns0/p0", "ns1/p1", TCP, 8080, False), ("ns0/p2", "ns1/p1", TCP, 8080, True),
                ("ns0/p0", "ns0/p2", TCP, 8080, False)])
