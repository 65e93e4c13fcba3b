"""Counters per policy / rule / endpoint and the drop log (NFLOG), driven by real packets."""

from __future__ import annotations

import pytest
from dataplane_lab import HOSTS, QUARANTINE, DataplaneLab

from policy_dataplane.dataplane.drops import DropEvent
from traffic.model import Protocol

pytestmark = pytest.mark.root
TCP, UDP, ICMP = Protocol.TCP, Protocol.UDP, Protocol.ICMP

POLICIES = QUARANTINE + """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p1-http, namespace: ns1}
spec:
  podSelector: {matchLabels: {app: p1}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: a}}}]
    ports: [{port: 8080}]
"""


def test_counters_per_policy_rule_and_endpoint(lab: DataplaneLab) -> None:
    counters_move_with_real_packets(lab)


def test_iptables_counters_per_policy_rule_and_endpoint(iptables_lab: DataplaneLab) -> None:
    """The same packets move the same counters in the iptables baseline (read back with `iptables-save -c`)."""
    counters_move_with_real_packets(iptables_lab)


def counters_move_with_real_packets(lab: DataplaneLab) -> None:
    before = lab.dp.counters(HOSTS)
    assert not any(r.packets for r in before.rules) and not any(e.packets for e in before.endpoints)
    lab.apply(POLICIES)
    lab.label("ns0/p2", quarantine="true")
    lab.expect([
        ("ns0/p0", "ns1/p1", TCP, 8080, True), ("ns0/p4", "ns1/p1", TCP, 8080, True),
        ("ns1/p3", "ns1/p1", TCP, 8080, False), ("ns0/p0", "ns1/p1", UDP, 53, False),
        ("ns0/p2", "ns0/p0", TCP, 8080, False), ("ns0/p2", "ns1/p3", ICMP, 0, False),
    ])
    counters = lab.dp.counters(HOSTS)
    by_policy = counters.by_policy()
    assert by_policy["ns1/knp.default.p1-http"]["allowed"] == 2
    assert by_policy["ns1/knp.default.p1-http"]["evaluated"] == 4
    assert by_policy["quarantine"]["denied"] == 2 and by_policy["quarantine"]["logged"] == 2
    rules = {(r.policy, r.direction, r.rule): r for r in counters.rules}
    assert rules[("quarantine", "egress", 0)].action == "log"
    assert rules[("quarantine", "egress", 1)].action == "deny" and rules[("quarantine", "egress", 1)].packets == 2
    assert rules[("quarantine", "ingress", 1)].packets == 0
    endpoints = {(e.endpoint, e.direction): e for e in counters.endpoints}
    assert endpoints[("ns1/p1", "ingress")].packets == 4
    assert endpoints[("ns1/p1", "ingress")].default_deny_packets == 2  # p3's TCP and p0's UDP
    assert endpoints[("ns0/p2", "egress")].default_deny_packets == 0  # the quarantine's Deny, not the default
    assert counters.to_json()["by_policy"]["quarantine"]["denied"] == 2


def _find(events: list[DropEvent], **want: object) -> DropEvent:
    for e in events:
        if all(getattr(e, k) == v for k, v in want.items()):
            return e
    raise AssertionError(f"no event with {want} among:\n" + "\n".join(e.describe() for e in events))


def test_drops_name_the_policy_or_the_default_deny(lab: DataplaneLab) -> None:
    lab.apply(POLICIES)
    lab.label("ns0/p2", quarantine="true")
    with lab.dp.drops(HOSTS, lab.world) as watcher:
        lab.probe([("ns1/p3", "ns1/p1", TCP, 8080), ("ns0/p2", "ns0/p4", TCP, 8080), ("ns0/p0", "ns1/p1", TCP, 8080)])
        events = watcher.poll(2.0)
        more = events
        while more:  # collect stragglers
            more = watcher.poll(0.3)
            events += more
    default = _find(events, kind="default-deny", src_name="ns1/p3", dst_name="ns1/p1")
    assert default.isolating_policies == ("ns1/knp.default.p1-http",)
    assert default.endpoint == "ns1/p1" and default.direction == "ingress" and default.tier == "default"
    assert default.packet.dst_port == 8080 and default.host == "h1"
    denied = _find(events, kind="deny", src_name="ns0/p2", dst_name="ns0/p4")
    assert (denied.policy, denied.rule, denied.direction) == ("quarantine", 1, "egress")
    logged = _find(events, kind="log", src_name="ns0/p2")
    assert (logged.policy, logged.rule) == ("quarantine", 0)
    assert not [e for e in events if e.src_name == "ns0/p0"]  # allowed traffic is not reported
    assert "quarantine rule 1" in denied.describe()
    assert denied.to_json()["packet"]["src"] == str(lab.endpoints["ns0/p2"].ip)


def test_unknown_interface_drop_is_reported(lab: DataplaneLab) -> None:
    with lab.dp.drops(HOSTS, lab.world) as watcher:
        lab.probe([("ns0/p0", "ns1/p1", TCP, 8080)])
        events = watcher.poll(2.0)
    assert _find(events, kind="unknown-interface", src_name="ns0/p0", dst_name="ns1/p1")
